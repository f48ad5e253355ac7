"""Specification of ``CognitoSettings`` (DESIGN.md §3).

Proves that the settings of one user pool can be built in code and from the
``COGNITO_*`` environment; that the region comes from the pool id unless set;
that ``client_ids`` and ``additional_regions`` accept ``a,b``, a JSON list or a
Python list; that every field of the §3 table has its documented default; that
``issuers``, ``jwks_url_for``, ``provider_name`` and ``identity_url`` derive
the Cognito names a verifier and an identity pool need; and that every invalid
value fails at construction with a ``pydantic.ValidationError`` naming the field
and its environment variable (``user_pool_id (COGNITO_USER_POOL_ID)``), without the
value; and that a ``COGNITO_*`` variable no setting reads is logged once, by name,
with the closest setting's variable when one is close.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest
from pydantic import SecretStr, ValidationError

from fastapi_cognito_guard import CognitoSettings

POOL = "eu-central-1_AbC123xyz"
REGION = "eu-central-1"
ISS = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
ISS_NEW_FORM = f"https://issuer-cognito-idp.{REGION}.amazonaws.com/{POOL}"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``COGNITO_*`` variable of the surrounding shell leaks into a test."""
    for name in list(os.environ):
        if name.upper().startswith("COGNITO_"):
            monkeypatch.delenv(name)


def make(**values: Any) -> CognitoSettings:
    """Settings from code, with a valid pool id and client id unless given."""
    values.setdefault("user_pool_id", POOL)
    values.setdefault("client_ids", ["web"])
    return CognitoSettings(**values)


def rejected(field: str, **values: Any) -> ValidationError:
    """Building with ``values`` fails, and the error names ``field``."""
    with pytest.raises(ValidationError) as caught:
        make(**values)
    assert field in str(caught.value)
    assert field in {str(error["loc"][0]) for error in caught.value.errors() if error["loc"]}
    return caught.value


# -- required fields ---------------------------------------------------------------


def test_settings_built_in_code_keep_the_pool_and_clients() -> None:
    settings = CognitoSettings(user_pool_id=POOL, client_ids=["web", "mobile"])

    assert settings.user_pool_id == POOL
    assert settings.client_ids == ["web", "mobile"]


def test_settings_built_from_the_environment_read_cognito_variables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_TOKEN_USE", "id")
    monkeypatch.setenv("COGNITO_LEEWAY_SECONDS", "5")

    settings = CognitoSettings()

    assert settings.user_pool_id == POOL
    assert settings.client_ids == ["web"]
    assert settings.token_use == "id"
    assert settings.leeway_seconds == 5


def test_user_pool_id_is_required() -> None:
    with pytest.raises(ValidationError, match="user_pool_id"):
        CognitoSettings(client_ids=["web"])


def test_client_ids_are_required() -> None:
    with pytest.raises(ValidationError, match="client_ids"):
        CognitoSettings(user_pool_id=POOL)


def test_empty_environment_fails_naming_both_required_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        CognitoSettings()

    assert {str(e["loc"][0]) for e in caught.value.errors()} == {"user_pool_id", "client_ids"}


# -- region ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool", "region"),
    [
        ("eu-central-1_AbC123xyz", "eu-central-1"),
        ("us-east-1_X", "us-east-1"),
        ("ap-southeast-2_Zz9", "ap-southeast-2"),
        ("us-gov-west-1_Abc", "us-gov-west-1"),
    ],
)
def test_region_is_derived_from_the_pool_id_prefix(pool: str, region: str) -> None:
    assert make(user_pool_id=pool).region == region


def test_region_can_be_overridden_in_code() -> None:
    settings = make(region="us-west-2")

    assert settings.region == "us-west-2"
    assert settings.issuers[0] == f"https://cognito-idp.us-west-2.amazonaws.com/{POOL}"


def test_region_can_be_overridden_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_REGION", "us-west-2")

    assert CognitoSettings().region == "us-west-2"


# -- list fields -------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["a,b", "a, b", " a ,b, ", '["a", "b"]', ' ["a","b"] '], ids=repr)
def test_client_ids_from_the_environment_accept_comma_separated_or_a_json_list(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", raw)

    assert CognitoSettings().client_ids == ["a", "b"]


def test_single_client_id_from_the_environment_is_a_one_element_list(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "4k3j2h1g0f")

    assert CognitoSettings().client_ids == ["4k3j2h1g0f"]


@pytest.mark.parametrize("value", [["a", "b"], "a,b", '["a","b"]'], ids=repr)
def test_client_ids_in_code_accept_a_python_list_or_the_environment_forms(value: Any) -> None:
    assert make(client_ids=value).client_ids == ["a", "b"]


def test_additional_regions_default_to_none() -> None:
    assert make().additional_regions == []


@pytest.mark.parametrize(
    "raw", ["us-east-1,eu-west-1", "us-east-1, eu-west-1", '["us-east-1","eu-west-1"]']
)
def test_additional_regions_from_the_environment_accept_both_list_forms(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_ADDITIONAL_REGIONS", raw)

    assert CognitoSettings().additional_regions == ["us-east-1", "eu-west-1"]


def test_additional_regions_in_code_accept_a_python_list() -> None:
    assert make(additional_regions=["us-east-1"]).additional_regions == ["us-east-1"]


# -- token_use ---------------------------------------------------------------------


@pytest.mark.parametrize("token_use", ["access", "id", "any"])
def test_token_use_accepts_access_id_and_any(token_use: str) -> None:
    assert make(token_use=token_use).token_use == token_use


@pytest.mark.parametrize("token_use", ["both", "ACCESS", "refresh", ""])
def test_token_use_other_than_access_id_or_any_is_rejected(token_use: str) -> None:
    rejected("token_use", token_use=token_use)


# -- defaults ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "default"),
    [
        ("region", REGION),
        ("token_use", "access"),
        ("issuer", None),
        ("additional_regions", []),
        ("jwks_url", None),
        ("leeway_seconds", 30),
        ("jwks_ttl_seconds", 3600),
        ("jwks_cooldown_seconds", 10),
        ("jwks_timeout_seconds", 3),
        ("jwks_max_stale_seconds", 86400),
        ("result_cache_size", 10000),
        ("identity_pool_id", None),
        ("identity_endpoint", None),
        ("domain", None),
        ("audiences", []),
    ],
)
def test_every_optional_field_has_its_documented_default(field: str, default: Any) -> None:
    assert getattr(make(), field) == default


def test_environment_defaults_match_code_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")

    assert CognitoSettings().model_dump() == make().model_dump()


# -- issuers and derived URLs ------------------------------------------------------


def test_issuers_default_to_both_cognito_issuer_forms_of_the_pool() -> None:
    assert make().issuers == (ISS, ISS_NEW_FORM)


def test_issuers_add_the_original_form_for_each_replica_region() -> None:
    settings = make(additional_regions=["us-east-1", "ap-northeast-1"])

    assert settings.issuers == (
        ISS,
        ISS_NEW_FORM,
        f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}",
        f"https://cognito-idp.ap-northeast-1.amazonaws.com/{POOL}",
    )


def test_replica_region_equal_to_the_home_region_is_listed_once() -> None:
    assert make(additional_regions=[REGION]).issuers == (ISS, ISS_NEW_FORM)


def test_issuer_setting_replaces_every_default_issuer() -> None:
    settings = make(issuer="https://idp.example.com/pool", additional_regions=["us-east-1"])

    assert settings.issuers == ("https://idp.example.com/pool",)


def test_issuer_setting_drops_a_trailing_slash() -> None:
    assert make(issuer="https://idp.example.com/pool/").issuers == ("https://idp.example.com/pool",)


def test_issuer_from_the_environment_replaces_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_ISSUER", "http://127.0.0.1:9229/local_pool")

    assert CognitoSettings().issuers == ("http://127.0.0.1:9229/local_pool",)


def test_jwks_url_for_an_issuer_is_its_well_known_path_by_default() -> None:
    settings = make()

    assert settings.jwks_url_for(ISS) == f"{ISS}/.well-known/jwks.json"
    assert settings.jwks_url_for(ISS_NEW_FORM) == f"{ISS_NEW_FORM}/.well-known/jwks.json"


def test_jwks_url_setting_is_used_for_every_issuer() -> None:
    url = "https://keys.example.com/jwks.json"
    settings = make(jwks_url=url, additional_regions=["us-east-1"])

    assert {settings.jwks_url_for(issuer) for issuer in settings.issuers} == {url}


def test_provider_name_is_the_identity_pool_logins_key() -> None:
    assert make().provider_name == f"cognito-idp.{REGION}.amazonaws.com/{POOL}"


def test_provider_name_follows_a_region_override() -> None:
    assert make(region="us-west-2").provider_name == f"cognito-idp.us-west-2.amazonaws.com/{POOL}"


def test_identity_url_defaults_to_the_regional_cognito_identity_endpoint() -> None:
    assert make().identity_url == f"https://cognito-identity.{REGION}.amazonaws.com/"


def test_identity_endpoint_setting_overrides_the_identity_url() -> None:
    settings = make(identity_endpoint="http://127.0.0.1:5000/")

    assert settings.identity_url == "http://127.0.0.1:5000/"


# -- invalid values ----------------------------------------------------------------


@pytest.mark.parametrize(
    "pool",
    [
        "",
        "AbC123xyz",
        "eu-central-1",
        "eu-central-1_",
        "eu-central_Abc",
        "EU-CENTRAL-1_Abc",
        "eu-central-1_Ab-c",
        "eu-central-1_Abc ",
        "eu-central-1_Abc/x",
        "eu-central-1_Abc\n",
    ],
    ids=repr,
)
def test_malformed_user_pool_id_is_rejected(pool: str) -> None:
    rejected("user_pool_id", user_pool_id=pool)


@pytest.mark.parametrize("client_ids", ["", " , ", "[]", '[""]', [], [""], ["web", ""]], ids=repr)
def test_empty_client_ids_are_rejected(client_ids: Any) -> None:
    rejected("client_ids", client_ids=client_ids)


def test_empty_client_ids_from_the_environment_are_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "")

    with pytest.raises(ValidationError, match="client_ids"):
        CognitoSettings()


def test_client_ids_that_are_malformed_json_are_rejected() -> None:
    rejected("client_ids", client_ids='["a",')


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com/.well-known/jwks.json",
        "http://10.0.0.1/jwks.json",
        "http://localhost.example.com/jwks.json",
        "ftp://example.com/jwks.json",
        "https:///jwks.json",
        "example.com/jwks.json",
    ],
)
def test_jwks_url_must_be_https_for_a_non_loopback_host(url: str) -> None:
    rejected("jwks_url", jwks_url=url)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/.well-known/jwks.json",
        "http://127.9.9.9/jwks.json",
        "http://localhost:8080/.well-known/jwks.json",
        "http://[::1]:8080/.well-known/jwks.json",
    ],
)
def test_jwks_url_may_be_plain_http_for_a_loopback_host(url: str) -> None:
    assert make(jwks_url=url).jwks_url == url


def test_jwks_url_may_be_https_for_any_host() -> None:
    url = "https://keys.example.com/.well-known/jwks.json"

    assert make(jwks_url=url).jwks_url == url


def test_issuer_must_be_https_for_a_non_loopback_host() -> None:
    rejected("issuer", issuer="http://idp.example.com/pool")


def test_identity_endpoint_must_be_https_for_a_non_loopback_host() -> None:
    rejected("identity_endpoint", identity_endpoint="http://example.com/")


def test_negative_leeway_is_rejected() -> None:
    rejected("leeway_seconds", leeway_seconds=-1)


@pytest.mark.parametrize("field", ["jwks_ttl_seconds", "jwks_timeout_seconds"])
def test_zero_ttl_or_timeout_is_rejected(field: str) -> None:
    rejected(field, **{field: 0})


@pytest.mark.parametrize(
    "field", ["jwks_cooldown_seconds", "jwks_max_stale_seconds", "result_cache_size"]
)
def test_negative_cooldown_max_stale_or_cache_size_is_rejected(field: str) -> None:
    rejected(field, **{field: -1})


def test_zero_result_cache_size_is_allowed_and_turns_the_cache_off() -> None:
    assert make(result_cache_size=0).result_cache_size == 0


@pytest.mark.parametrize("region", ["", "eu", "EU-CENTRAL-1", "eu-central", "eu_central_1"])
def test_bad_region_is_rejected(region: str) -> None:
    rejected("region", region=region)


def test_bad_additional_region_is_rejected() -> None:
    rejected("additional_regions", additional_regions=["us-east-1", "nowhere"])


def test_bad_value_from_the_environment_fails_naming_the_field(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_JWKS_TTL_SECONDS", "0")

    with pytest.raises(ValidationError, match="jwks_ttl_seconds"):
        CognitoSettings()


# -- domain ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "domain",
    [
        "auth.example.com",
        "auth.example.com/",
        "https://auth.example.com",
        "https://auth.example.com/",
    ],
)
def test_domain_accepts_a_host_or_its_https_url_and_keeps_the_bare_host(domain: str) -> None:
    assert make(domain=domain).domain == "auth.example.com"


@pytest.mark.parametrize(
    "domain",
    [
        "auth.example.com/login",
        "https://auth.example.com/oauth2/authorize",
        "http://auth.example.com",
        "",
        "https://",
    ],
)
def test_domain_with_a_path_or_another_scheme_is_rejected(domain: str) -> None:
    rejected("domain", domain=domain)


@pytest.mark.parametrize(
    "domain",
    [
        "auth.example.com?x=1",
        "auth.example.com#top",
        "user@auth.example.com",
        "auth example.com",
        "auth.example.com\n",
    ],
)
def test_domain_that_is_not_a_bare_host_name_is_rejected(domain: str) -> None:
    rejected("domain", domain=domain)


# -- errors name the environment variable ------------------------------------------


def test_missing_required_settings_name_their_environment_variables() -> None:
    with pytest.raises(ValidationError) as caught:
        CognitoSettings()

    assert "user_pool_id (COGNITO_USER_POOL_ID)" in str(caught.value)
    assert "client_ids (COGNITO_CLIENT_IDS)" in str(caught.value)


def test_constraint_error_names_the_field_and_its_variable() -> None:
    error = rejected("leeway_seconds", leeway_seconds=-1)

    assert "leeway_seconds (COGNITO_LEEWAY_SECONDS)" in str(error)


def test_validator_message_names_the_variable_exactly_once() -> None:
    error = rejected("user_pool_id", user_pool_id="not-a-pool")

    assert "user_pool_id (COGNITO_USER_POOL_ID) must look like" in str(error)
    assert str(error).count("COGNITO_USER_POOL_ID") == 1


def test_error_locations_stay_the_field_names() -> None:
    error = rejected("client_ids", client_ids=[""])

    assert [e["loc"] for e in error.errors()] == [("client_ids",)]


def test_error_from_the_environment_never_shows_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_SESSION_SECRET", "too-short-but-secret")

    with pytest.raises(ValidationError) as caught:
        CognitoSettings()

    assert "session_secret (COGNITO_SESSION_SECRET)" in str(caught.value)
    assert "too-short-but-secret" not in str(caught.value)


# -- unknown COGNITO_* variables ---------------------------------------------------


def warnings_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_misspelled_variable_logs_one_warning_naming_it_and_the_closest_setting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COGNITO_CLIENT_ID", "web")

    make()

    (warning,) = warnings_logged(caplog)
    assert "COGNITO_CLIENT_ID " in warning
    assert "did you mean COGNITO_CLIENT_IDS?" in warning


def test_unknown_variable_far_from_every_setting_is_named_without_a_guess(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COGNITO_SOMETHING_ELSE", "x")

    make()

    (warning,) = warnings_logged(caplog)
    assert "COGNITO_SOMETHING_ELSE" in warning
    assert "did you mean" not in warning


def test_unknown_variable_value_is_never_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COGNITO_CLIENT_SECRETS", "very-secret-value")

    make()

    assert "very-secret-value" not in caplog.text


def test_known_variables_and_other_prefixes_log_nothing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("cognito_client_ids", "web")  # read case-insensitively, so known
    monkeypatch.setenv("AWS_COGNITO_POOL", "x")

    CognitoSettings()

    assert warnings_logged(caplog) == []


def test_each_unknown_variable_gets_its_own_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("COGNITO_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_TOKENUSE", "id")

    make()

    assert len(warnings_logged(caplog)) == 2


# -- partitions and emulators (DESIGN §3) ------------------------------------------


@pytest.mark.parametrize(
    ("pool", "host"),
    [
        ("us-east-1_AbC123xyz", "cognito-idp.us-east-1.amazonaws.com"),
        ("us-gov-west-1_AbC123xyz", "cognito-idp.us-gov-west-1.amazonaws.com"),
        ("cn-north-1_AbC123xyz", "cognito-idp.cn-north-1.amazonaws.com.cn"),
        ("cn-northwest-1_AbC123xyz", "cognito-idp.cn-northwest-1.amazonaws.com.cn"),
        ("eusc-de-east-1_AbC123xyz", "cognito-idp.eusc-de-east-1.amazonaws.eu"),
    ],
)
def test_pool_ids_of_each_partition_get_both_issuer_forms_on_its_host(pool: str, host: str) -> None:
    settings = make(user_pool_id=pool)

    assert settings.issuers == (f"https://{host}/{pool}", f"https://issuer-{host}/{pool}")
    assert (
        settings.jwks_url_for(settings.issuers[0]) == f"https://{host}/{pool}/.well-known/jwks.json"
    )
    assert settings.idp_url == f"https://{host}/"
    assert settings.provider_name == f"{host}/{pool}"


@pytest.mark.parametrize(
    ("pool", "suffix"),
    [
        ("cn-north-1_AbC123xyz", "cn-north-1.amazonaws.com.cn"),
        ("eusc-de-east-1_AbC123xyz", "eusc-de-east-1.amazonaws.eu"),
        ("us-gov-east-1_AbC123xyz", "us-gov-east-1.amazonaws.com"),
    ],
)
def test_identity_and_sts_endpoints_follow_the_partition(pool: str, suffix: str) -> None:
    settings = make(user_pool_id=pool)

    assert settings.identity_url == f"https://cognito-identity.{suffix}/"
    assert settings.sts_url == f"https://sts.{suffix}/"


def test_replica_regions_take_the_partition_host() -> None:
    settings = make(user_pool_id="cn-north-1_AbC123xyz", additional_regions=["cn-northwest-1"])

    assert (
        "https://cognito-idp.cn-northwest-1.amazonaws.com.cn/cn-north-1_AbC123xyz"
        in settings.issuers
    )


def test_replica_region_in_another_partition_is_rejected() -> None:
    error = rejected(
        "additional_regions", user_pool_id="cn-north-1_AbC123xyz", additional_regions=["eu-west-1"]
    )

    assert "COGNITO_ADDITIONAL_REGIONS" in str(error)


@pytest.mark.parametrize("pool", ["us-iso-east-1_AbC123xyz", "zz-mars-1_AbC123xyz"])
def test_pool_id_of_an_unknown_partition_names_the_way_out(pool: str) -> None:
    error = rejected("user_pool_id", user_pool_id=pool)

    assert "COGNITO_USER_POOL_ID" in str(error)
    assert "COGNITO_ISSUER" in str(error)
    assert "COGNITO_JWKS_URL" in str(error)


def test_explicit_region_of_an_unknown_partition_is_rejected_naming_it() -> None:
    error = rejected("region", region="us-isob-east-1")

    assert "region (COGNITO_REGION)" in str(error)


def test_unknown_partition_is_accepted_with_an_explicit_issuer() -> None:
    iss = "https://cognito-idp.us-iso-east-1.c2s.ic.gov/us-iso-east-1_AbC123xyz"

    settings = make(user_pool_id="us-iso-east-1_AbC123xyz", issuer=iss)

    assert settings.issuers == (iss,)
    assert settings.idp_url == "https://cognito-idp.us-iso-east-1.c2s.ic.gov/"


EMULATOR_POOL = "local_6xX5b2Qh"
EMULATOR_ISS = f"http://localhost:9229/{EMULATOR_POOL}"


def test_emulator_pool_id_is_a_label_with_explicit_issuer_and_jwks_url() -> None:
    settings = make(
        user_pool_id=EMULATOR_POOL,
        issuer=EMULATOR_ISS,
        jwks_url=f"{EMULATOR_ISS}/.well-known/jwks.json",
    )

    assert settings.issuers == (EMULATOR_ISS,)
    assert settings.region is None
    assert settings.idp_url == "http://localhost:9229/"  # emulators serve the API there


def test_emulator_pool_id_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", EMULATOR_POOL)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "web")
    monkeypatch.setenv("COGNITO_ISSUER", EMULATOR_ISS)
    monkeypatch.setenv("COGNITO_JWKS_URL", f"{EMULATOR_ISS}/.well-known/jwks.json")

    assert CognitoSettings().user_pool_id == EMULATOR_POOL


@pytest.mark.parametrize("missing", ["issuer", "jwks_url"])
def test_emulator_pool_id_without_issuer_and_jwks_url_is_rejected(missing: str) -> None:
    values = {"issuer": EMULATOR_ISS, "jwks_url": f"{EMULATOR_ISS}/.well-known/jwks.json"}
    del values[missing]

    error = rejected("user_pool_id", user_pool_id=EMULATOR_POOL, **values)

    assert "COGNITO_ISSUER" in str(error)


# -- login_resource --------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource", ["https://api.example.com", "https://api.example.com/v1", "urn:example:api"]
)
def test_login_resource_takes_an_absolute_uri(resource: str) -> None:
    assert make(login_resource=resource).login_resource == resource


@pytest.mark.parametrize(
    "resource", ["api.example.com", "/v1", "https://api.example.com/#x", "https://", "a b:c", ""]
)
def test_login_resource_that_is_not_an_absolute_uri_is_rejected(resource: str) -> None:
    error = rejected("login_resource", login_resource=resource)

    assert "login_resource (COGNITO_LOGIN_RESOURCE)" in str(error)


def test_login_resource_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_LOGIN_RESOURCE", "https://api.example.com")

    assert make().login_resource == "https://api.example.com"


# -- audiences (resource binding) ----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://api.example.com", ["https://api.example.com"]),
        ("https://a.example.com, urn:example:b", ["https://a.example.com", "urn:example:b"]),
        ('["https://a.example.com","urn:example:b"]', ["https://a.example.com", "urn:example:b"]),
        ("", []),
    ],
    ids=["one", "comma_separated", "json_list", "blank_means_none"],
)
def test_audiences_from_the_environment_accept_both_list_forms(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    monkeypatch.setenv("COGNITO_AUDIENCES", value)

    assert make().audiences == expected


def test_audiences_in_code_take_a_python_list() -> None:
    assert make(audiences=["https://api.example.com"]).audiences == ["https://api.example.com"]


@pytest.mark.parametrize(
    "value",
    [
        "https://a.example.com,,urn:b",
        ["https://a.example.com", ""],
        ["api.example.com"],
        ["https://api.example.com/#section"],
        ["https://"],
        ["a b:c"],
    ],
    ids=["empty_entry_in_env_form", "empty_entry", "no_scheme", "fragment", "no_host", "space"],
)
def test_audiences_that_are_not_absolute_uris_are_rejected_naming_the_variable(
    value: Any,
) -> None:
    error = rejected("audiences", audiences=value)

    assert "audiences (COGNITO_AUDIENCES)" in str(error)


# -- client secrets ----------------------------------------------------------------


def secret_values(settings: CognitoSettings) -> list[str]:
    return [secret.get_secret_value() for secret in settings.client_secrets]


def test_one_client_secret_stays_a_secret_str() -> None:
    settings = make(client_secret="s3cr+t/=")

    assert isinstance(settings.client_secret, SecretStr)
    assert secret_values(settings) == ["s3cr+t/="]


@pytest.mark.parametrize("value", ["old,new", '["old", "new"]'])
def test_two_client_secrets_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("COGNITO_CLIENT_SECRET", value)

    assert secret_values(make()) == ["old", "new"]


def test_two_client_secrets_in_code() -> None:
    assert secret_values(make(client_secret=["old", SecretStr("new")])) == ["old", "new"]


def test_more_than_two_client_secrets_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_CLIENT_SECRET", "a,b,c")

    error = rejected("client_secret")

    assert "client_secret (COGNITO_CLIENT_SECRET)" in str(error)


def test_client_secrets_never_appear_in_reprs_or_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = make(client_secret=["first-secret-value", "second-secret-value"])
    monkeypatch.setenv("COGNITO_CLIENT_SECRET", "one-secret,two-secret,three-secret")

    with pytest.raises(ValidationError) as caught:
        make()

    for text in (repr(settings), str(settings), str(caught.value)):
        assert "secret-value" not in text
        assert "two-secret" not in text


def test_no_client_secret_means_none() -> None:
    assert make().client_secrets == ()


# -- values of another pool (DESIGN §3) --------------------------------------------

OTHER_POOL = "eu-west-1_Other123"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("COGNITO_ISSUER", ISS),
        ("COGNITO_JWKS_URL", f"{ISS}/.well-known/jwks.json"),
        ("COGNITO_DOMAIN", "auth.example.com"),
        ("COGNITO_OAUTH_URL", "https://auth.example.com"),
        ("COGNITO_CLIENT_IDS", "web"),
        ("COGNITO_CLIENT_SECRET", "secret"),
    ],
)
def test_another_pools_value_from_the_environment_is_refused(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv(variable, value)
    values: dict[str, Any] = {"user_pool_id": OTHER_POOL}
    if variable != "COGNITO_CLIENT_IDS":
        values["client_ids"] = ["admin"]

    with pytest.raises(ValidationError) as caught:
        CognitoSettings(**values)

    assert variable in str(caught.value)


def test_the_environment_pools_own_values_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_JWKS_URL", f"{ISS}/.well-known/jwks.json")

    settings = CognitoSettings(user_pool_id=POOL, client_ids=["web"])

    assert settings.jwks_url == f"{ISS}/.well-known/jwks.json"


def test_another_pool_still_reads_settings_that_are_not_pool_specific(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", POOL)
    monkeypatch.setenv("COGNITO_LEEWAY_SECONDS", "5")

    assert CognitoSettings(user_pool_id=OTHER_POOL, client_ids=["admin"]).leeway_seconds == 5


def test_domain_prefix_alone_is_rejected_saying_what_a_domain_looks_like(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COGNITO_DOMAIN", "myapp")

    error = rejected("domain")

    assert "amazoncognito.com" in str(error)


def test_an_empty_client_secret_variable_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COGNITO_CLIENT_SECRET", "")

    assert make().client_secret is None
