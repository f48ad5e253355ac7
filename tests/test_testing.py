"""Specification of ``fastapi_cognito_guard.testing`` as its users meet it (DESIGN.md §10).

Proves that ``LocalIssuer`` mints tokens that carry Cognito's real issuer form
and that its ``settings()`` trust; that ``access_token``, ``id_token`` and
``client_credentials_token`` have Cognito's claim shapes (and take extra or
overriding claims); that ``sign()`` honours a custom header; that
``rotate_keys()`` switches the signing key and drops the old one from the JWKS
unless told to keep it; that ``serve()`` publishes the JWKS over real HTTP on
127.0.0.1, counts requests and is what ``settings()`` points at while it runs;
that ``transport`` answers only JWKS GETs; and, through ``pytester``, that the
``cognito_issuer`` fixture of the installed pytest plugin works in a user's
test suite; and that ``sign_in`` signs a ``TestClient`` in through the local
hosted UI's sign-in form in one call (or names the step that failed).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_cognito_guard import CognitoAuth, CognitoUser, CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer, sign_in

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
POOL = "eu-central-1_Test"
CONSUMER = """
from fastapi_cognito_guard.testing import LocalIssuer

issuer = LocalIssuer()
plain: str = issuer.access_token(**{"custom:tier": "gold", "cognito:roles": ["r"]})
mixed: str = issuer.access_token("bob", groups=["premium"], **{"custom:seats": 5})
id_token: str = issuer.id_token(username="bob", **{"custom:seats": 5})
"""
COGNITO_ISS = f"https://cognito-idp.eu-central-1.amazonaws.com/{POOL}"
JWKS_SUFFIX = "/.well-known/jwks.json"


def part(token: str, index: int) -> dict[str, Any]:
    segment = token.split(".")[index]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def claims_of(token: str) -> dict[str, Any]:
    return part(token, 1)


def header_of(token: str) -> dict[str, Any]:
    return part(token, 0)


def kids(issuer: LocalIssuer) -> list[str]:
    return [jwk["kid"] for jwk in issuer.jwks()["keys"]]


async def verify(issuer: LocalIssuer, token: str, **overrides: Any) -> Any:
    """Verify ``token`` with ``issuer.settings(**overrides)``, keys from ``issuer.transport``."""
    async with httpx.AsyncClient(transport=issuer.transport) as client:
        verifier = CognitoVerifier(issuer.settings(**overrides), http_client=client)
        try:
            return await verifier.verify(token)
        finally:
            await verifier.aclose()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalIssuer, str]]:
    """A fresh issuer (so the session one is untouched) serving its JWKS, and the URL."""
    issuer = LocalIssuer()
    with issuer.serve() as url:
        yield issuer, url


# -- issuer form and settings ----------------------------------------------------------


def test_tokens_carry_cognitos_real_issuer_form(issuer: LocalIssuer) -> None:
    assert issuer.issuer == COGNITO_ISS
    for token in (
        issuer.access_token(),
        issuer.id_token(),
        issuer.client_credentials_token(),
    ):
        assert claims_of(token)["iss"] == COGNITO_ISS


def test_issuer_form_follows_the_pool_id(other_issuer: LocalIssuer) -> None:
    assert claims_of(other_issuer.access_token())["iss"] == (
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Other"
    )


def test_settings_name_the_pool_and_the_client(issuer: LocalIssuer) -> None:
    settings = issuer.settings()

    assert settings.user_pool_id == POOL
    assert settings.client_ids == [issuer.client_id]
    assert settings.issuer is None  # the Cognito default issuers apply
    assert COGNITO_ISS in settings.issuers


def test_settings_outside_serve_point_at_a_name_only_the_transport_answers(
    issuer: LocalIssuer,
) -> None:
    settings = issuer.settings()

    assert settings.jwks_url == f"https://local-issuer.invalid/{POOL}{JWKS_SUFFIX}"
    assert settings.oauth_url is None


def test_settings_overrides_win(issuer: LocalIssuer) -> None:
    settings = issuer.settings(token_use="id", client_ids=["a", "b"], leeway_seconds=0)

    assert (settings.token_use, settings.client_ids, settings.leeway_seconds) == (
        "id",
        ["a", "b"],
        0,
    )


async def test_settings_trust_access_tokens(issuer: LocalIssuer) -> None:
    claims = await verify(issuer, issuer.access_token("alice", groups=["premium"]))

    assert (claims.username, claims.groups, claims.user_pool_id) == ("alice", ["premium"], POOL)


async def test_settings_trust_id_tokens(issuer: LocalIssuer) -> None:
    claims = await verify(issuer, issuer.id_token("alice", email="a@example.com"), token_use="id")

    assert (claims.username, claims.email) == ("alice", "a@example.com")


async def test_settings_trust_client_credentials_tokens(issuer: LocalIssuer) -> None:
    claims = await verify(issuer, issuer.client_credentials_token(["orders/read"]))

    assert claims.is_machine
    assert claims.scopes == ["orders/read"]


# -- access tokens ---------------------------------------------------------------------


def test_access_token_has_cognitos_access_token_claims(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token("alice"))

    assert claims["token_use"] == "access"
    assert claims["username"] == "alice"
    assert claims["client_id"] == issuer.client_id
    assert claims["version"] == 2
    for name in ("sub", "origin_jti", "event_id", "jti", "auth_time", "iat", "exp"):
        assert name in claims
    assert "aud" not in claims
    assert "cognito:username" not in claims


def test_access_token_lists_groups_as_cognito_groups(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token(groups=["premium", "admin"]))

    assert claims["cognito:groups"] == ["premium", "admin"]


def test_access_token_without_groups_has_no_groups_claim(issuer: LocalIssuer) -> None:
    assert "cognito:groups" not in claims_of(issuer.access_token())


def test_access_token_joins_scopes_into_one_scope_string(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token(scopes=["orders/read", "orders/write"]))

    assert claims["scope"] == "orders/read orders/write"


def test_access_token_default_scope_is_cognitos_user_admin_scope(issuer: LocalIssuer) -> None:
    assert claims_of(issuer.access_token())["scope"] == "aws.cognito.signin.user.admin"


def test_access_token_expiry_follows_expires_in(issuer: LocalIssuer) -> None:
    before = int(time.time())
    claims = claims_of(issuer.access_token(expires_in=120))

    assert claims["exp"] - claims["iat"] == 120
    assert before <= claims["iat"] <= int(time.time())


def test_access_token_with_negative_expires_in_is_already_expired(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token(expires_in=-60))

    assert claims["exp"] < time.time()


def test_extra_keyword_claims_are_added_or_override(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token("alice", tenant="acme", client_id="other", exp=123))

    assert claims["tenant"] == "acme"
    assert claims["client_id"] == "other"
    assert claims["exp"] == 123


def test_claims_with_colons_can_be_passed_as_a_mapping(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token(**{"cognito:roles": ["arn:aws:iam::1:role/r"]}))

    assert claims["cognito:roles"] == ["arn:aws:iam::1:role/r"]


def test_access_token_carries_no_custom_attributes_like_cognitos_default(
    issuer: LocalIssuer,
) -> None:
    claims = claims_of(issuer.access_token("alice"))

    assert not [name for name in claims if name.startswith("custom:")]


def test_access_token_custom_adds_custom_attributes_on_purpose(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.access_token(custom={"tier": "gold"}))

    assert claims["custom:tier"] == "gold"


def test_claims_with_colons_type_check_in_a_strict_consumer(tmp_path: Path) -> None:
    consumer = tmp_path / "consumer.py"
    consumer.write_text(CONSUMER)

    # A process of its own: mypy raises the interpreter's recursion limit. Run from
    # the repository, where mypy finds the package's sources.
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", str(consumer)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_sub_is_stable_per_username_and_overridable(issuer: LocalIssuer) -> None:
    alice = claims_of(issuer.access_token("alice"))["sub"]

    assert claims_of(issuer.id_token("alice"))["sub"] == alice
    assert claims_of(issuer.access_token("bob"))["sub"] != alice
    assert str(uuid.UUID(alice)) == alice
    assert claims_of(issuer.access_token("alice", sub="fixed"))["sub"] == "fixed"


def test_every_token_has_its_own_jti(issuer: LocalIssuer) -> None:
    assert claims_of(issuer.access_token())["jti"] != claims_of(issuer.access_token())["jti"]


# -- ID tokens -------------------------------------------------------------------------


def test_id_token_has_cognitos_id_token_claims(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.id_token("alice"))

    assert claims["token_use"] == "id"
    assert claims["cognito:username"] == "alice"
    assert claims["aud"] == issuer.client_id
    assert "client_id" not in claims
    assert "username" not in claims
    assert "scope" not in claims


def test_id_token_with_email_carries_a_verified_email(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.id_token(email="alice@example.com"))

    assert claims["email"] == "alice@example.com"
    assert claims["email_verified"] is True


def test_id_token_without_email_has_no_email_claims(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.id_token())

    assert "email" not in claims
    assert "email_verified" not in claims


def test_id_token_custom_attributes_get_the_custom_prefix(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.id_token(custom={"tier": "gold", "seats": "5"}))

    assert claims["custom:tier"] == "gold"
    assert claims["custom:seats"] == "5"


def test_id_token_lists_groups(issuer: LocalIssuer) -> None:
    assert claims_of(issuer.id_token(groups=["premium"]))["cognito:groups"] == ["premium"]


def test_id_token_expiry_and_overrides(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.id_token(expires_in=60, email_verified=False, email="a@x.io"))

    assert claims["exp"] - claims["iat"] == 60
    assert claims["email_verified"] is False


# -- client-credentials tokens ---------------------------------------------------------


def test_client_credentials_token_names_no_user(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.client_credentials_token(["orders/read", "orders/write"]))

    assert claims["token_use"] == "access"
    assert claims["sub"] == claims["client_id"] == issuer.client_id
    assert claims["scope"] == "orders/read orders/write"
    assert "username" not in claims
    assert "cognito:groups" not in claims


def test_client_credentials_token_for_another_client(issuer: LocalIssuer) -> None:
    claims = claims_of(issuer.client_credentials_token(client_id="machine", expires_in=30))

    assert claims["sub"] == claims["client_id"] == "machine"
    assert claims["exp"] - claims["iat"] == 30


# -- sign ------------------------------------------------------------------------------


def test_sign_uses_cognitos_header_by_default(issuer: LocalIssuer) -> None:
    token = issuer.sign({"sub": "x"})

    assert header_of(token) == {"kid": issuer.kid, "alg": "RS256"}
    assert claims_of(token) == {"sub": "x"}


def test_sign_uses_a_custom_header_exactly(issuer: LocalIssuer) -> None:
    header = {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}

    assert header_of(issuer.sign({"sub": "x"}, header=header)) == header


async def test_token_signed_with_a_custom_header_still_verifies(issuer: LocalIssuer) -> None:
    payload = claims_of(issuer.access_token("carol"))
    token = issuer.sign(payload, header={"typ": "JWT", "kid": issuer.kid, "alg": "RS256"})

    assert (await verify(issuer, token)).username == "carol"


# -- key rotation ----------------------------------------------------------------------
# Rotation is about kids and the JWKS, so short (fast to generate) keys do here.


def test_rotate_keys_signs_with_a_new_kid_and_drops_the_old_key() -> None:
    issuer = LocalIssuer(key_bits=1024)
    old_kid = issuer.kid

    new_kid = issuer.rotate_keys()

    assert new_kid == issuer.kid != old_kid
    assert kids(issuer) == [new_kid]
    assert header_of(issuer.access_token())["kid"] == new_kid


def test_rotate_keys_keeping_the_old_key_publishes_both() -> None:
    issuer = LocalIssuer(key_bits=1024)
    old_kid = issuer.kid

    new_kid = issuer.rotate_keys(keep_old=True)

    assert kids(issuer) == [old_kid, new_kid]
    assert header_of(issuer.access_token())["kid"] == new_kid


def test_rotated_keys_are_new_rsa_keys() -> None:
    issuer = LocalIssuer(key_bits=1024)
    old_n = issuer.jwks()["keys"][0]["n"]

    issuer.rotate_keys(keep_old=True)

    old, new = issuer.jwks()["keys"]
    assert old["n"] == old_n
    assert new["n"] != old_n


# -- transport -------------------------------------------------------------------------


def test_transport_answers_a_jwks_get_with_the_jwks(issuer: LocalIssuer) -> None:
    before = issuer.jwks_requests
    with httpx.Client(transport=issuer.transport) as client:
        response = client.get(f"{COGNITO_ISS}{JWKS_SUFFIX}")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == issuer.jwks()
    assert issuer.jwks_requests == before + 1


def test_transport_answers_any_host_and_path_ending_in_the_jwks_suffix(
    issuer: LocalIssuer,
) -> None:
    with httpx.Client(transport=issuer.transport) as client:
        response = client.get(f"https://anything.example/a/b{JWKS_SUFFIX}")

    assert response.json() == issuer.jwks()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", f"/{POOL}"),
        ("GET", f"/{POOL}/.well-known/openid-configuration"),
        ("GET", f"{JWKS_SUFFIX}/extra"),
        ("POST", JWKS_SUFFIX),
        ("PUT", JWKS_SUFFIX),
        ("DELETE", JWKS_SUFFIX),
    ],
)
def test_transport_answers_404_to_anything_but_a_jwks_get(
    issuer: LocalIssuer, method: str, path: str
) -> None:
    before = issuer.jwks_requests
    with httpx.Client(transport=issuer.transport) as client:
        response = client.request(method, f"https://cognito-idp.example{path}")

    assert response.status_code == 404
    assert issuer.jwks_requests == before


# -- serve -----------------------------------------------------------------------------


def test_serve_publishes_on_loopback_under_the_pools_jwks_path(
    served: tuple[LocalIssuer, str],
) -> None:
    _, url = served

    assert url.startswith("http://127.0.0.1:")
    assert url.endswith(f"/{POOL}{JWKS_SUFFIX}")


def test_serve_answers_a_jwks_get_and_counts_it(served: tuple[LocalIssuer, str]) -> None:
    issuer, url = served
    before = issuer.jwks_requests

    response = httpx.get(url)

    assert response.status_code == 200
    assert response.json() == issuer.jwks()
    assert issuer.jwks_requests == before + 1


def test_serve_answers_404_elsewhere(served: tuple[LocalIssuer, str]) -> None:
    issuer, url = served
    before = issuer.jwks_requests

    response = httpx.get(url.removesuffix(JWKS_SUFFIX))

    assert response.status_code == 404
    assert issuer.jwks_requests == before


def test_settings_point_at_the_server_while_serving(served: tuple[LocalIssuer, str]) -> None:
    issuer, url = served

    assert issuer.jwks_url == url
    assert issuer.settings().jwks_url == url


async def test_verifier_fetches_keys_from_the_server_over_http(
    served: tuple[LocalIssuer, str],
) -> None:
    issuer, _ = served
    before = issuer.jwks_requests
    verifier = CognitoVerifier(issuer.settings())  # its own client: real HTTP
    try:
        claims = await verifier.verify(issuer.access_token("dave"))
    finally:
        await verifier.aclose()

    assert claims.username == "dave"
    assert issuer.jwks_requests == before + 1


# -- the pytest plugin -----------------------------------------------------------------

USER_TEST = """
import asyncio

from fastapi_cognito_guard import CognitoVerifier


def test_guarded_code_accepts_a_cognito_issuer_token(cognito_issuer):
    async def check():
        verifier = CognitoVerifier(cognito_issuer.settings())
        try:
            return await verifier.verify(cognito_issuer.access_token("alice", groups=["premium"]))
        finally:
            await verifier.aclose()

    claims = asyncio.run(check())

    assert claims.username == "alice"
    assert claims.groups == ["premium"]
    assert cognito_issuer.settings().jwks_url.startswith("http://127.0.0.1:")
    assert cognito_issuer.jwks_requests == 1
"""


# Plugins the generated suite does not need; hypothesis's would re-import itself
# under pytester's module snapshot and cost a second per run.
INNER_ARGS = (
    "-p",
    "no:cacheprovider",
    "-p",
    "no:hypothesispytest",
    "-o",
    "asyncio_default_fixture_loop_scope=function",
)


def test_cognito_issuer_fixture_of_the_plugin_serves_a_trusted_issuer(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TEST)

    result = pytester.runpytest(*INNER_ARGS)

    result.assert_outcomes(passed=1)


SESSION_TEST = """
def test_first(cognito_issuer_session):
    cognito_issuer_session.login_as = "alice"
    cognito_issuer_session.count("token")
    test_first.kid = cognito_issuer_session.kid


def test_second_gets_the_same_issuer_reset(cognito_issuer_session):
    assert cognito_issuer_session.kid == test_first.kid
    assert cognito_issuer_session.login_as is None
    assert cognito_issuer_session.calls["token"] == 0
    assert cognito_issuer_session.settings().oauth_url.startswith("http://127.0.0.1:")
"""


def test_session_fixture_shares_one_served_issuer_reset_for_each_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=SESSION_TEST)

    result = pytester.runpytest(*INNER_ARGS)

    result.assert_outcomes(passed=2)


def test_cognito_issuer_fixture_comes_from_the_installed_plugin(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_user=USER_TEST)

    result = pytester.runpytest(*INNER_ARGS, "-p", "no:cognito_guard")

    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*fixture 'cognito_issuer' not found*"])


# -- sign_in: a test client through the local hosted UI --------------------------------


def signing_in_app(issuer: LocalIssuer) -> FastAPI:
    """An app with browser sign-in against ``issuer`` and one guarded route."""
    auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings(session_secret="s" * 40))
    app = FastAPI(lifespan=auth.lifespan)
    app.include_router(auth.login_router())

    @app.get("/me")
    async def me(user: CognitoUser = Depends(auth.current_user)) -> dict[str, Any]:
        return {"username": user.username, "groups": user.groups}

    return app


def test_sign_in_gives_the_test_client_a_session_as_the_user(
    served: tuple[LocalIssuer, str],
) -> None:
    issuer, _ = served
    with TestClient(signing_in_app(issuer)) as client:
        sign_in(client, issuer, "bob", groups=["admin", "premium"])
        me = client.get("/me")

    assert me.json() == {"username": "bob", "groups": ["admin", "premium"]}


def test_sign_in_returns_the_callbacks_redirect_to_next(served: tuple[LocalIssuer, str]) -> None:
    issuer, _ = served
    with TestClient(signing_in_app(issuer)) as client:
        answer = sign_in(client, issuer, next="/me")

    assert (answer.status_code, answer.headers["location"]) == (302, "/me")


def test_sign_in_goes_through_the_hosted_ui_sign_in_form(
    served: tuple[LocalIssuer, str],
) -> None:
    issuer, _ = served
    before = issuer.calls["login"]
    with TestClient(signing_in_app(issuer)) as client:
        sign_in(client, issuer)

    assert issuer.calls["login"] == before + 1


def test_sign_in_names_the_step_an_app_without_a_login_route_fails(
    served: tuple[LocalIssuer, str],
) -> None:
    issuer, _ = served
    with (
        TestClient(FastAPI()) as client,
        pytest.raises(AssertionError, match=r"GET /auth/login answered 404"),
    ):
        sign_in(client, issuer)


def test_sign_in_needs_a_serving_issuer() -> None:
    with TestClient(FastAPI()) as client, pytest.raises(RuntimeError, match="not serving"):
        sign_in(client, LocalIssuer(key_bits=1024))


# -- partitions and emulator pool ids -----------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "host"),
    [
        ("cn-north-1_Local", "cognito-idp.cn-north-1.amazonaws.com.cn"),
        ("eusc-de-east-1_Local", "cognito-idp.eusc-de-east-1.amazonaws.eu"),
        ("us-gov-west-1_Local", "cognito-idp.us-gov-west-1.amazonaws.com"),
    ],
)
async def test_tokens_of_every_partition_verify_with_the_default_issuers(
    pool: str, host: str
) -> None:
    issuer = LocalIssuer(user_pool_id=pool)
    settings = issuer.settings()
    verifier = CognitoVerifier(settings)
    verifier.cache_jwks(issuer.jwks())

    claims = await verifier.verify(issuer.access_token())

    assert settings.issuer is None  # Cognito's default issuers, on the partition's host
    assert claims.iss == f"https://{host}/{pool}"
    await verifier.aclose()


async def test_an_emulator_pool_id_verifies_with_an_explicit_issuer_and_jwks_url() -> None:
    issuer = LocalIssuer(user_pool_id="local_6xX5b2Qh")
    with issuer.serve():
        settings = issuer.settings()
        verifier = CognitoVerifier(settings)
        claims = await verifier.verify(issuer.access_token())
        await verifier.aclose()

    assert settings.issuer is not None
    assert settings.jwks_url is not None
    assert claims.iss == settings.issuer
