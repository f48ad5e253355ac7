"""Specification of the claim models and ``CognitoUser`` (DESIGN.md §6).

Proves that ``ClaimsParser`` turns a payload's bytes into ``AccessTokenClaims``
or ``IdTokenClaims`` with Cognito's names mapped to Python ones
(``cognito:groups`` -> ``groups``, ``cognito:username`` -> ``username`` on ID
tokens, ``cognito:roles`` -> ``roles``, ``cognito:preferred_role`` ->
``preferred_role``, ``scope`` -> ``scopes``, ``custom:*`` -> ``custom``), keeps
every other claim, accepts only booleans or ``"true"``/``"false"`` for the
``*_verified`` flags, and that ``to_dict()`` gives the claims back under
Cognito's names. Through a verifier, the claims carry the verifying pool's id.
``CognitoUser.from_claims`` builds the user of access, ID and machine tokens,
and subclasses lift any claim into a typed field or fail with ``missing_claims``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import Field

from fastapi_cognito_guard import (
    AccessTokenClaims,
    AuthorizationError,
    CognitoUser,
    CognitoVerifier,
    IdTokenClaims,
    InvalidTokenError,
)
from fastapi_cognito_guard.claims import ClaimsParser, bind_user_pool
from fastapi_cognito_guard.testing import LocalIssuer

POOL = "eu-central-1_Test"
ISS = f"https://cognito-idp.eu-central-1.amazonaws.com/{POOL}"
EXP = 1_900_000_000
ROLE = "arn:aws:iam::123456789012:role/premium"

ACCESS = ClaimsParser(frozenset({"access"}))
ID = ClaimsParser(frozenset({"id"}))
BOTH = ClaimsParser(frozenset({"access", "id"}))


def access_payload(**overrides: Any) -> dict[str, Any]:
    """A user's access token payload, as Cognito issues it."""
    payload: dict[str, Any] = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["premium", "admin"],
        "iss": ISS,
        "client_id": "web",
        "origin_jti": "11111111-0000-4000-8000-000000000000",
        "event_id": "22222222-0000-4000-8000-000000000000",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin orders/read",
        "auth_time": EXP - 3600,
        "exp": EXP,
        "iat": EXP - 3600,
        "jti": "33333333-0000-4000-8000-000000000000",
        "username": "alice",
        "version": 2,
    }
    payload.update(overrides)
    return payload


def id_payload(**overrides: Any) -> dict[str, Any]:
    """A user's ID token payload, as Cognito issues it."""
    payload: dict[str, Any] = {
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "cognito:groups": ["premium"],
        "email_verified": True,
        "iss": ISS,
        "cognito:username": "alice",
        "cognito:roles": [ROLE],
        "cognito:preferred_role": ROLE,
        "origin_jti": "11111111-0000-4000-8000-000000000000",
        "aud": "web",
        "event_id": "22222222-0000-4000-8000-000000000000",
        "token_use": "id",
        "auth_time": EXP - 3600,
        "exp": EXP,
        "iat": EXP - 3600,
        "jti": "33333333-0000-4000-8000-000000000000",
        "email": "alice@example.com",
        "custom:tier": "gold",
        "custom:seats": "5",
    }
    payload.update(overrides)
    return payload


def machine_payload(**overrides: Any) -> dict[str, Any]:
    """A client-credentials access token payload: no user, no username."""
    payload: dict[str, Any] = {
        "sub": "machine-client",
        "token_use": "access",
        "scope": "orders/read orders/write",
        "auth_time": EXP - 3600,
        "iss": ISS,
        "exp": EXP,
        "iat": EXP - 3600,
        "version": 2,
        "jti": "33333333-0000-4000-8000-000000000000",
        "client_id": "machine-client",
    }
    payload.update(overrides)
    return payload


def parse(parser: ClaimsParser, payload: dict[str, Any]) -> Any:
    return parser.parse(json.dumps(payload).encode())


def parse_error(parser: ClaimsParser, payload: dict[str, Any]) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as caught:
        parse(parser, payload)
    return caught.value


# -- the claim models --------------------------------------------------------------


def test_access_payload_parses_into_access_token_claims() -> None:
    claims = parse(ACCESS, access_payload())

    assert type(claims) is AccessTokenClaims
    assert (claims.sub, claims.iss, claims.client_id, claims.exp) == (
        "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        ISS,
        "web",
        EXP,
    )
    assert claims.username == "alice"
    assert claims.version == 2


def test_id_payload_parses_into_id_token_claims() -> None:
    claims = parse(ID, id_payload())

    assert type(claims) is IdTokenClaims
    assert (claims.aud, claims.email, claims.email_verified) == ("web", "alice@example.com", True)


def test_cognito_groups_become_groups() -> None:
    assert parse(ACCESS, access_payload()).groups == ["premium", "admin"]


def test_groups_default_to_an_empty_list() -> None:
    payload = access_payload()
    del payload["cognito:groups"]

    assert parse(ACCESS, payload).groups == []


def test_cognito_username_becomes_username_on_id_tokens() -> None:
    assert parse(ID, id_payload()).username == "alice"


def test_cognito_roles_become_roles() -> None:
    assert parse(ID, id_payload()).roles == [ROLE]


def test_cognito_preferred_role_becomes_preferred_role() -> None:
    assert parse(ID, id_payload()).preferred_role == ROLE


def test_scope_string_becomes_a_scopes_list() -> None:
    claims = parse(ACCESS, access_payload())

    assert claims.scopes == ["aws.cognito.signin.user.admin", "orders/read"]
    assert claims.scope == "aws.cognito.signin.user.admin orders/read"


@pytest.mark.parametrize("scope", [None, ""])
def test_missing_or_empty_scope_gives_no_scopes(scope: str | None) -> None:
    payload = access_payload(scope=scope)
    if scope is None:
        del payload["scope"]

    assert parse(ACCESS, payload).scopes == []


def test_custom_attributes_become_a_dict_without_their_prefix() -> None:
    assert parse(ID, id_payload()).custom == {"tier": "gold", "seats": "5"}


def test_no_custom_attributes_give_an_empty_custom_dict() -> None:
    assert parse(ACCESS, access_payload()).custom == {}


def test_extra_claims_are_kept() -> None:
    claims = parse(ACCESS, access_payload(tenant="acme", **{"https://example.com/x": [1]}))

    assert claims.extra["tenant"] == "acme"
    assert claims.extra["https://example.com/x"] == [1]


def test_extra_claims_appear_in_to_dict_under_their_original_names() -> None:
    data = parse(ID, id_payload(tenant="acme")).to_dict()

    assert data["tenant"] == "acme"
    assert data["custom:tier"] == "gold"


@pytest.mark.parametrize(
    ("parser", "payload"),
    [(ACCESS, access_payload()), (ID, id_payload()), (ACCESS, machine_payload())],
    ids=["access", "id", "machine"],
)
def test_to_dict_round_trips_the_cognito_claim_names(
    parser: ClaimsParser, payload: dict[str, Any]
) -> None:
    assert parse(parser, payload).to_dict() == payload


def test_to_dict_leaves_out_claims_the_token_did_not_carry() -> None:
    data = parse(ACCESS, machine_payload()).to_dict()

    assert "username" not in data
    assert "cognito:groups" not in data
    assert "nbf" not in data


@pytest.mark.parametrize("flag", ["email_verified", "phone_number_verified"])
@pytest.mark.parametrize(
    ("value", "expected"), [(True, True), (False, False), ("true", True), ("false", False)]
)
def test_verified_flags_accept_booleans_and_true_false_strings(
    flag: str, value: Any, expected: bool
) -> None:
    assert getattr(parse(ID, id_payload(**{flag: value})), flag) is expected


@pytest.mark.parametrize("flag", ["email_verified", "phone_number_verified"])
@pytest.mark.parametrize("value", ["yes", 1, 0, "True", "1", []], ids=repr)
def test_verified_flags_reject_other_values_as_malformed(flag: str, value: Any) -> None:
    assert parse_error(ID, id_payload(**{flag: value})).code == "malformed"


def test_machine_token_is_machine() -> None:
    assert parse(ACCESS, machine_payload()).is_machine is True


def test_user_access_token_is_not_machine() -> None:
    assert parse(ACCESS, access_payload()).is_machine is False


def test_id_token_is_never_machine() -> None:
    payload = id_payload()
    del payload["cognito:username"]

    assert parse(ID, payload).is_machine is False


def test_claims_parsed_outside_a_verifier_name_no_user_pool() -> None:
    assert parse(ACCESS, access_payload()).user_pool_id == ""


def test_claims_are_frozen() -> None:
    claims = parse(ACCESS, access_payload())

    with pytest.raises(AttributeError, match="immutable"):
        claims.sub = "someone-else"


# -- ClaimsParser: which token types ------------------------------------------------


def test_access_only_parser_rejects_an_id_payload_as_wrong_token_use() -> None:
    assert parse_error(ACCESS, id_payload()).code == "wrong_token_use"


def test_id_only_parser_rejects_an_access_payload_as_wrong_token_use() -> None:
    assert parse_error(ID, access_payload()).code == "wrong_token_use"


def test_parser_for_both_types_parses_each_into_its_own_model() -> None:
    assert type(parse(BOTH, access_payload())) is AccessTokenClaims
    assert type(parse(BOTH, id_payload())) is IdTokenClaims


def test_parser_for_both_types_rejects_another_token_use_as_wrong_token_use() -> None:
    assert parse_error(BOTH, access_payload(token_use="refresh")).code == "wrong_token_use"


def test_parser_rejects_a_missing_required_claim_as_malformed_naming_it() -> None:
    payload = access_payload()
    del payload["client_id"]

    err = parse_error(ACCESS, payload)

    assert err.code == "malformed"
    assert "client_id" in err.message


# -- through a verifier -------------------------------------------------------------


def test_verified_claims_carry_the_verifying_pools_id(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    claims = verifier.verify_sync(issuer.access_token())

    assert claims.user_pool_id == issuer.user_pool_id
    assert "user_pool_id" not in claims.to_dict()  # and not a claim


def test_verified_access_token_maps_names_like_the_parser(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    claims = verifier.verify_sync(
        issuer.access_token("bob", groups=["premium"], scopes=["orders/read"], tenant="acme")
    )

    assert isinstance(claims, AccessTokenClaims)
    assert (claims.username, claims.groups, claims.scopes) == ("bob", ["premium"], ["orders/read"])
    assert claims.to_dict()["tenant"] == "acme"


async def test_verified_id_token_maps_names_like_the_parser(issuer: LocalIssuer) -> None:
    verifier = CognitoVerifier(issuer.settings(token_use="id", result_cache_size=0))
    verifier.cache_jwks(issuer.jwks())
    try:
        claims = verifier.verify_sync(
            issuer.id_token(
                "bob",
                email="bob@example.com",
                custom={"tier": "gold"},
                email_verified="true",
                **{"cognito:roles": [ROLE], "cognito:preferred_role": ROLE},
            )
        )
    finally:
        await verifier.aclose()

    assert isinstance(claims, IdTokenClaims)
    assert (claims.username, claims.email, claims.email_verified) == (
        "bob",
        "bob@example.com",
        True,
    )
    assert (claims.roles, claims.preferred_role, claims.custom) == ([ROLE], ROLE, {"tier": "gold"})


# -- CognitoUser ---------------------------------------------------------------------


def claims_from(parser: ClaimsParser, payload: dict[str, Any], pool: str = POOL) -> Any:
    claims = parse(parser, payload)
    bind_user_pool(claims, pool)  # what the verifier does
    return claims


def test_user_from_access_claims() -> None:
    user = CognitoUser.from_claims(claims_from(ACCESS, access_payload()))

    assert user.sub == "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    assert user.username == "alice"
    assert user.groups == ("premium", "admin")
    assert user.scopes == ("aws.cognito.signin.user.admin", "orders/read")
    assert user.token_use == "access"
    assert user.client_id == "web"
    assert user.user_pool_id == POOL
    assert user.email is None
    assert user.custom == {}
    assert user.is_machine is False
    assert user.claims == access_payload()


def test_user_carries_the_sign_in_time_level_and_methods() -> None:
    payload = access_payload(acr="urn:example:mfa", amr=["pwd", "mfa"])
    user = CognitoUser.from_claims(claims_from(ACCESS, payload))

    assert (user.auth_time, user.acr, user.amr) == (EXP - 3600, "urn:example:mfa", ("pwd", "mfa"))


def test_user_without_sign_in_details_has_none_and_no_methods() -> None:
    payload = access_payload()
    del payload["auth_time"]
    user = CognitoUser.from_claims(claims_from(ACCESS, payload))

    assert (user.auth_time, user.acr, user.amr) == (None, None, ())


@pytest.mark.parametrize(
    ("aud", "audiences"),
    [("https://api.example.com", ("https://api.example.com",)), (["a:x", "b:y"], ("a:x", "b:y"))],
    ids=["string", "list"],
)
def test_user_audiences_are_the_access_tokens_aud_as_a_tuple(
    aud: Any, audiences: tuple[str, ...]
) -> None:
    user = CognitoUser.from_claims(claims_from(ACCESS, access_payload(aud=aud)))

    assert user.audiences == audiences


def test_user_of_an_access_token_without_aud_has_no_audiences() -> None:
    assert CognitoUser.from_claims(claims_from(ACCESS, access_payload())).audiences == ()


def test_user_of_an_id_token_has_no_audiences_its_aud_is_the_client_id() -> None:
    user = CognitoUser.from_claims(claims_from(ID, id_payload()))

    assert (user.audiences, user.client_id) == ((), "web")


def test_user_from_id_claims_takes_client_id_from_aud_and_has_no_scopes() -> None:
    user = CognitoUser.from_claims(claims_from(ID, id_payload()))

    assert user.client_id == "web"
    assert user.token_use == "id"
    assert user.scopes == ()
    assert user.groups == ("premium",)
    assert user.username == "alice"


def test_user_from_id_claims_takes_email_and_custom_attributes() -> None:
    user = CognitoUser.from_claims(claims_from(ID, id_payload()))

    assert user.email == "alice@example.com"
    assert user.custom == {"tier": "gold", "seats": "5"}


def test_user_email_comes_only_from_id_tokens() -> None:
    claims = claims_from(ACCESS, access_payload(email="spoof@example.com"))

    user = CognitoUser.from_claims(claims)

    assert user.email is None
    assert user.claims["email"] == "spoof@example.com"


def test_user_from_machine_claims_is_machine_without_username() -> None:
    user = CognitoUser.from_claims(claims_from(ACCESS, machine_payload()))

    assert user.is_machine is True
    assert user.username is None
    assert user.client_id == "machine-client"
    assert user.scopes == ("orders/read", "orders/write")
    assert user.groups == ()


def test_user_groups_and_scopes_are_tuples() -> None:
    user = CognitoUser.from_claims(claims_from(ACCESS, access_payload()))

    assert isinstance(user.groups, tuple)
    assert isinstance(user.scopes, tuple)


def test_user_claims_use_cognito_names() -> None:
    user = CognitoUser.from_claims(claims_from(ID, id_payload()))

    assert user.claims["cognito:username"] == "alice"
    assert user.claims["custom:tier"] == "gold"


def test_user_names_the_verifying_pool(issuer: LocalIssuer, verifier: CognitoVerifier) -> None:
    user = CognitoUser.from_claims(verifier.verify_sync(issuer.access_token()))

    assert user.user_pool_id == issuer.user_pool_id


class TieredUser(CognitoUser):
    tier: str = Field(alias="custom:tier")


class TenantUser(CognitoUser):
    tenant: str


def test_subclass_field_aliasing_a_custom_attribute_is_filled() -> None:
    user = TieredUser.from_claims(claims_from(ID, id_payload()))

    assert type(user) is TieredUser
    assert user.tier == "gold"
    assert user.custom["tier"] == "gold"


def test_subclass_field_named_like_an_extra_claim_is_filled() -> None:
    user = TenantUser.from_claims(claims_from(ACCESS, access_payload(tenant="acme")))

    assert user.tenant == "acme"


@pytest.mark.parametrize(
    ("model", "field"), [(TieredUser, "tier"), (TenantUser, "tenant")], ids=["alias", "plain"]
)
def test_subclass_field_the_token_lacks_is_missing_claims_naming_it(
    model: type[CognitoUser], field: str
) -> None:
    with pytest.raises(AuthorizationError) as caught:
        model.from_claims(claims_from(ACCESS, access_payload()))

    assert caught.value.code == "missing_claims"
    assert caught.value.status_code == 403
    assert field in caught.value.message


# -- claim types (DESIGN §4), whatever the token type ---------------------------------

WRONG_TYPES = [
    ("exp", None),
    ("exp", 10**400),
    ("exp", -1),
    ("exp", 1.7e9),
    ("exp", True),
    ("iat", None),
    ("nbf", None),
    ("auth_time", 253402300800),
    ("aud", 12345),
    ("aud", None),
    ("scope", 12345),
    ("scope", None),
    ("cognito:username", None),
    ("cognito:username", 7),
    ("username", None),
    ("cognito:groups", [1]),
    ("cognito:groups", None),
    ("jti", None),
]


@pytest.mark.parametrize(("claim", "value"), WRONG_TYPES, ids=repr)
@pytest.mark.parametrize("kind", ["access", "id"])
def test_named_claim_of_the_wrong_type_is_malformed_naming_the_claim(
    kind: str, claim: str, value: Any
) -> None:
    parser, payload = (ACCESS, access_payload) if kind == "access" else (ID, id_payload)

    err = parse_error(parser, payload(**{claim: value}))

    assert err.code == "malformed"
    assert claim in err.message
    assert repr(value) not in err.message or value is None


def test_malformed_message_never_quotes_the_claim_value() -> None:
    err = parse_error(ID, id_payload(email_verified="s3cr3t-value"))

    assert "s3cr3t-value" not in err.message


def test_id_token_aud_list_is_malformed_outside_a_verifier() -> None:
    err = parse_error(ID, id_payload(aud=["web", "mobile"]))

    assert err.code == "malformed"
    assert "aud" in err.message


def test_extra_claims_keep_values_the_named_claims_would_refuse() -> None:
    claims = parse(ACCESS, access_payload(big=10**400, nothing=None, ratio=1.5))

    assert claims.extra == {"big": 10**400, "nothing": None, "ratio": 1.5}
