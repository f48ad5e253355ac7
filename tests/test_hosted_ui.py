"""Specification of the local hosted UI (``LocalIssuer.serve()``, DESIGN.md §10), over real HTTP.

Proves that ``/oauth2/authorize`` shows a sign-in page whose plain form post
signs a user in (or cancels with ``access_denied``), that ``login_as`` skips
the page, and that unsafe ``client_id``/``redirect_uri`` get a 400 page instead
of a redirect; that ``/oauth2/token`` exchanges a code only once, before it
expires, for the client and ``redirect_uri`` it was issued to and with the
right PKCE S256 verifier; that confidential clients authenticate with HTTP
Basic (or the form) and public ones must not send a secret; that the tokens
carry the ``nonce``, share one ``origin_jti``/``event_id``/``auth_time`` across
refreshes (refreshed ID tokens without a nonce) and verify with the library's
verifier; that refresh rotates on request, revocation ends a session, and
``client_credentials`` needs a secret; that ``/logout``, ``/oauth2/userInfo``
and discovery answer as Cognito does; that errors have Cognito's shape and any
request (a hypothesis property) is answered below 500; and that ``calls``
counts and ``fail()`` injects faults.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastapi_cognito_guard import CognitoVerifier
from fastapi_cognito_guard.clientauth import basic_authorization
from fastapi_cognito_guard.testing import LocalIssuer, LocalUser
from tests.helpers import b64url, claims_of

CALLBACK = "http://127.0.0.1:9999/auth/callback"
OTHER_CALLBACK = "http://127.0.0.1:9999/other/callback"  # registered too
SIGNED_OUT = "http://127.0.0.1:9999/"
SECRET = "s3cret-of-the-confidential-client"
OTHER_APP = "other-app"


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    return verifier, b64url(hashlib.sha256(verifier.encode()).digest())


@pytest.fixture(scope="module")
def served_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer(callback_urls=[CALLBACK, OTHER_CALLBACK], logout_urls=[SIGNED_OUT])
    issuer.add_client(OTHER_APP)  # a second, public app client of the same pool
    with issuer.serve():
        yield issuer


@pytest.fixture
def issuer(served_issuer: LocalIssuer) -> Iterator[LocalIssuer]:
    """The module's served issuer, back to defaults (and a public client) for each test."""
    served_issuer.reset()
    served_issuer.client_secret = None
    served_issuer.code_ttl_seconds = 300
    yield served_issuer
    served_issuer.client_secret = None


@pytest.fixture
def http(issuer: LocalIssuer) -> Iterator[httpx.Client]:
    assert issuer.url is not None
    with httpx.Client(base_url=issuer.url, timeout=5) as client:
        yield client


def authorize_params(challenge: str | None = None, **params: str) -> dict[str, str]:
    query = {
        "response_type": "code",
        "client_id": "test-client",
        "redirect_uri": CALLBACK,
        "scope": "openid email profile",
        "state": "st-123",
        "nonce": "n-456",
    }
    if challenge is not None:
        query.update(code_challenge=challenge, code_challenge_method="S256")
    query.update(params)
    return query


def redirected_to(response: httpx.Response) -> tuple[str, dict[str, str]]:
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    query = {name: values[0] for name, values in parse_qs(location.query).items()}
    return f"{location.scheme}://{location.netloc}{location.path}", query


def sign_in(
    http: httpx.Client,
    issuer: LocalIssuer,
    user: str | LocalUser = "alice",
    challenge: str | None = None,
    **params: str,
) -> str:
    """Sign ``user`` in with ``login_as``; returns the code sent to the callback."""
    issuer.login_as = user
    target, query = redirected_to(
        http.get("/oauth2/authorize", params=authorize_params(challenge, **params))
    )
    assert target == CALLBACK
    assert query["state"] == "st-123"
    return query["code"]


def exchange(http: httpx.Client, code: str, **form: str) -> httpx.Response:
    body = {
        "grant_type": "authorization_code",
        "client_id": "test-client",
        "code": code,
        "redirect_uri": CALLBACK,
    }
    body.update(form)
    return http.post("/oauth2/token", data=body)


def signed_in_tokens(http: httpx.Client, issuer: LocalIssuer, **params: str) -> dict[str, Any]:
    verifier, challenge = pkce_pair()
    response = exchange(
        http, sign_in(http, issuer, challenge=challenge, **params), code_verifier=verifier
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(http: httpx.Client, refresh_token: str, **form: str) -> httpx.Response:
    body = {
        "grant_type": "refresh_token",
        "client_id": "test-client",
        "refresh_token": refresh_token,
    }
    body.update(form)
    return http.post("/oauth2/token", data=body)


def assert_oauth_error(response: httpx.Response, code: str, status: int = 400) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"error": code}


# -- the sign-in page ------------------------------------------------------------------


def test_authorize_without_login_as_shows_a_sign_in_form(http: httpx.Client) -> None:
    response = http.get("/oauth2/authorize", params=authorize_params())

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<form method='post'" in response.text
    assert "name='username'" in response.text
    assert "name='groups'" in response.text


def test_sign_in_form_posted_as_a_plain_form_redirects_with_a_code(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    query = httpx.QueryParams(authorize_params()).__str__()

    response = http.post(
        f"/login?{query}", data={"username": "bob", "groups": "premium, admin", "action": "sign_in"}
    )

    target, answer = redirected_to(response)
    assert target == CALLBACK
    assert answer["state"] == "st-123"
    tokens = exchange(http, answer["code"]).json()
    access = claims_of(tokens["access_token"])
    assert (access["username"], access["cognito:groups"]) == ("bob", ["premium", "admin"])
    assert issuer.calls["login"] == 1


def test_sign_in_form_cancel_returns_access_denied_with_the_state(http: httpx.Client) -> None:
    query = httpx.QueryParams(authorize_params()).__str__()

    _, answer = redirected_to(http.post(f"/login?{query}", data={"action": "cancel"}))

    assert answer == {"error": "access_denied", "state": "st-123"}


def test_sign_in_form_without_a_username_is_shown_again(http: httpx.Client) -> None:
    query = httpx.QueryParams(authorize_params()).__str__()

    response = http.post(f"/login?{query}", data={"username": " ", "action": "sign_in"})

    assert response.status_code == 400
    assert "Enter a username" in response.text


def test_sign_in_page_escapes_what_it_echoes(http: httpx.Client) -> None:
    response = http.get("/oauth2/authorize", params=authorize_params(state="<script>x</script>"))

    assert "<script>x" not in response.text


def test_login_as_skips_the_page(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.login_as = LocalUser("carol", groups=["premium"])

    _, answer = redirected_to(http.get("/oauth2/authorize", params=authorize_params()))

    access = claims_of(exchange(http, answer["code"]).json()["access_token"])
    assert (access["username"], access["cognito:groups"]) == ("carol", ["premium"])


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"client_id": "other-client"}, "invalid_client"),
        ({"client_id": ""}, "invalid_client"),
        ({"redirect_uri": "https://attacker.example/cb"}, "redirect_mismatch"),
        ({"redirect_uri": "javascript:alert(1)"}, "redirect_mismatch"),
    ],
)
def test_authorize_with_an_unsafe_client_or_redirect_shows_an_error_page_not_a_redirect(
    http: httpx.Client, issuer: LocalIssuer, params: dict[str, str], code: str
) -> None:
    issuer.login_as = "alice"

    response = http.get("/oauth2/authorize", params=authorize_params(**params))

    assert response.status_code == 400
    assert "location" not in response.headers
    assert code in response.text


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"code_challenge": "x" * 43, "code_challenge_method": "plain"}, "invalid_request"),
        ({"code_challenge": "x" * 43}, "invalid_request"),
        ({"code_challenge": "short", "code_challenge_method": "S256"}, "invalid_request"),
        ({"scope": "openid admin-everything"}, "invalid_scope"),
    ],
)
def test_bad_authorize_requests_return_the_error_to_the_callback(
    http: httpx.Client, issuer: LocalIssuer, params: dict[str, str], code: str
) -> None:
    issuer.login_as = "alice"

    target, answer = redirected_to(http.get("/oauth2/authorize", params=authorize_params(**params)))

    assert target == CALLBACK
    assert answer == {"error": code, "state": "st-123"}


# -- authorization_code ----------------------------------------------------------------


async def test_code_flow_tokens_verify_with_the_issuers_settings(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    tokens = signed_in_tokens(http, issuer)

    for token, token_use in ((tokens["access_token"], "access"), (tokens["id_token"], "id")):
        verifier = CognitoVerifier(issuer.settings(token_use=token_use))
        try:
            claims = await verifier.verify(token)
        finally:
            await verifier.aclose()
        assert claims.username == "alice"
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600


def test_code_flow_id_token_carries_the_nonce_and_the_access_tokens_hash(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    tokens = signed_in_tokens(http, issuer)
    id_claims = claims_of(tokens["id_token"])

    digest = hashlib.sha256(tokens["access_token"].encode()).digest()[:16]
    assert id_claims["nonce"] == "n-456"
    assert id_claims["at_hash"] == b64url(digest)
    assert id_claims["aud"] == "test-client"


def test_code_flow_tokens_share_the_sign_in_claims(http: httpx.Client, issuer: LocalIssuer) -> None:
    tokens = signed_in_tokens(http, issuer)
    access, id_claims = claims_of(tokens["access_token"]), claims_of(tokens["id_token"])

    for name in ("origin_jti", "event_id", "auth_time", "sub"):
        assert access[name] == id_claims[name]
    assert access["jti"] != id_claims["jti"]
    assert access["client_id"] == "test-client"
    assert access["scope"] == "openid email profile"


def test_without_openid_scope_there_is_no_id_token(http: httpx.Client, issuer: LocalIssuer) -> None:
    tokens = signed_in_tokens(http, issuer, scope="aws.cognito.signin.user.admin")

    assert "id_token" not in tokens
    assert claims_of(tokens["access_token"])["scope"] == "aws.cognito.signin.user.admin"


def test_custom_attributes_go_into_id_tokens_only_by_default(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    tokens = signed_in_tokens_as(http, issuer, LocalUser("dora", custom={"tier": "gold"}))

    assert claims_of(tokens["id_token"])["custom:tier"] == "gold"
    assert not [name for name in claims_of(tokens["access_token"]) if name.startswith("custom:")]


def test_custom_in_access_tokens_puts_them_in_access_tokens_too(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.custom_in_access_tokens = True

    tokens = signed_in_tokens_as(http, issuer, LocalUser("dora", custom={"tier": "gold"}))

    assert claims_of(tokens["access_token"])["custom:tier"] == "gold"


def signed_in_tokens_as(http: httpx.Client, issuer: LocalIssuer, user: LocalUser) -> dict[str, Any]:
    response = exchange(http, sign_in(http, issuer, user))
    assert response.status_code == 200
    return response.json()


def test_wrong_pkce_verifier_is_invalid_grant(http: httpx.Client, issuer: LocalIssuer) -> None:
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()

    response = exchange(
        http, sign_in(http, issuer, challenge=challenge), code_verifier=other_verifier
    )

    assert_oauth_error(response, "invalid_grant")


def test_missing_pkce_verifier_is_invalid_grant(http: httpx.Client, issuer: LocalIssuer) -> None:
    _, challenge = pkce_pair()

    assert_oauth_error(exchange(http, sign_in(http, issuer, challenge=challenge)), "invalid_grant")


def test_verifier_for_a_code_issued_without_challenge_is_invalid_grant(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    verifier, _ = pkce_pair()

    response = exchange(http, sign_in(http, issuer), code_verifier=verifier)

    assert_oauth_error(response, "invalid_grant")


def test_code_is_burnt_by_a_failed_exchange(http: httpx.Client, issuer: LocalIssuer) -> None:
    verifier, challenge = pkce_pair()
    code = sign_in(http, issuer, challenge=challenge)
    exchange(http, code, code_verifier="x" * 43)

    assert_oauth_error(exchange(http, code, code_verifier=verifier), "invalid_grant")


def test_another_redirect_uri_than_the_authorize_requests_is_invalid_grant(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    code = sign_in(http, issuer)

    response = exchange(http, code, redirect_uri=OTHER_CALLBACK)

    assert_oauth_error(response, "invalid_grant")


def test_redirect_uri_that_is_no_callback_url_is_unauthorized_client(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    code = sign_in(http, issuer)

    response = exchange(http, code, redirect_uri="https://attacker.example/cb")

    assert_oauth_error(response, "unauthorized_client")


def test_unknown_client_is_invalid_client(http: httpx.Client, issuer: LocalIssuer) -> None:
    assert_oauth_error(exchange(http, sign_in(http, issuer), client_id="other"), "invalid_client")


def test_code_of_another_app_client_is_invalid_grant(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    assert_oauth_error(exchange(http, sign_in(http, issuer), client_id=OTHER_APP), "invalid_grant")


def test_reused_code_is_invalid_grant(http: httpx.Client, issuer: LocalIssuer) -> None:
    code = sign_in(http, issuer)

    assert exchange(http, code).status_code == 200
    assert_oauth_error(exchange(http, code), "invalid_grant")


def test_expired_code_is_invalid_grant(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.code_ttl_seconds = 0

    assert_oauth_error(exchange(http, sign_in(http, issuer)), "invalid_grant")


def test_unknown_code_is_invalid_grant(http: httpx.Client) -> None:
    assert_oauth_error(exchange(http, "not-a-code"), "invalid_grant")


@pytest.mark.parametrize("missing", ["code", "redirect_uri", "grant_type"])
def test_missing_parameter_is_invalid_request(
    http: httpx.Client, issuer: LocalIssuer, missing: str
) -> None:
    body = {
        "grant_type": "authorization_code",
        "client_id": "test-client",
        "code": sign_in(http, issuer),
        "redirect_uri": CALLBACK,
    }
    del body[missing]

    assert_oauth_error(http.post("/oauth2/token", data=body), "invalid_request")


def test_unknown_grant_type_is_unsupported_grant_type(http: httpx.Client) -> None:
    response = http.post(
        "/oauth2/token", data={"grant_type": "password", "client_id": "test-client"}
    )

    assert_oauth_error(response, "unsupported_grant_type")


def test_json_body_is_invalid_request(http: httpx.Client) -> None:
    response = http.post("/oauth2/token", json={"grant_type": "client_credentials"})

    assert_oauth_error(response, "invalid_request")


def test_repeated_parameter_is_invalid_request(http: httpx.Client, issuer: LocalIssuer) -> None:
    code = sign_in(http, issuer)
    body = f"grant_type=authorization_code&client_id=test-client&code={code}&code=x"

    response = http.post(
        "/oauth2/token",
        content=f"{body}&redirect_uri={CALLBACK}",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )

    assert_oauth_error(response, "invalid_request")


@pytest.mark.parametrize(
    "body",
    [
        b"\xff\xfe\x00garbage",
        b"grant_type=%zz&code=%",
        b"&".join(b"f%d=x" % number for number in range(100)),
        b"grant_type=refresh_token&refresh_token=" + b"A" * 60_000,
        b"=&&==&grant_type",
    ],
)
@pytest.mark.parametrize("path", ["/oauth2/token", "/oauth2/revoke"])
def test_garbage_forms_get_a_4xx_json_error(http: httpx.Client, path: str, body: bytes) -> None:
    response = http.post(
        path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert 400 <= response.status_code < 500
    assert set(response.json()) == {"error"}


FORM_FIELDS = st.sampled_from(
    [
        "grant_type",
        "client_id",
        "client_secret",
        "code",
        "redirect_uri",
        "code_verifier",
        "refresh_token",
        "token",
        "scope",
        "state",
        "nonce",
        "response_type",
        "logout_uri",
        "code_challenge",
        "code_challenge_method",
    ]
)
FORM_VALUES = st.sampled_from(
    f"authorization_code refresh_token client_credentials test-client {CALLBACK} S256 a.b.c".split()
) | st.text(max_size=80)
PATHS = [
    "/oauth2/token",
    "/oauth2/revoke",
    "/oauth2/authorize",
    "/login",
    "/logout",
    "/oauth2/userInfo",
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(PATHS),
    fields=st.lists(st.tuples(FORM_FIELDS, FORM_VALUES), max_size=8),
    authorization=st.none()
    | st.builds(
        lambda scheme, rest: (scheme + rest).strip(),  # a client refuses edge whitespace
        st.sampled_from(["", "Basic ", "Bearer "]),
        st.text(st.characters(min_codepoint=32, max_codepoint=126)),
    ).filter(bool),
)
def test_any_request_gets_an_answer_below_500(
    http: httpx.Client,
    path: str,
    fields: list[tuple[str, str]],
    authorization: str | None,
) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    method = "GET" if path in ("/oauth2/authorize", "/logout") else "POST"

    if method == "GET":
        response = http.get(path, params=fields, headers=headers)
    else:
        response = http.post(path, data=dict(fields), headers=headers)

    assert response.status_code < 500


def test_oversized_body_is_refused(http: httpx.Client) -> None:
    response = http.post("/oauth2/token", data={"grant_type": "x" * 70_000})

    assert response.status_code == 413


def test_malformed_content_length_is_invalid_request(issuer: LocalIssuer) -> None:
    assert issuer.url is not None
    address = urlsplit(issuer.url)
    with socket.create_connection((address.hostname, address.port), timeout=5) as raw:
        raw.sendall(b"POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n")
        answer = raw.makefile("rb").readline()

    assert answer.split()[1] == b"400"


# -- confidential clients --------------------------------------------------------------


def test_confidential_client_authenticates_with_http_basic(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.client_secret = SECRET
    code = sign_in(http, issuer)

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK},
        auth=("test-client", SECRET),
    )

    assert response.status_code == 200
    assert issuer.calls["auth:client_secret_basic"] == 1


def test_confidential_client_may_send_the_secret_in_the_form(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.client_secret = SECRET

    assert exchange(http, sign_in(http, issuer), client_secret=SECRET).status_code == 200
    assert issuer.calls["auth:client_secret_post"] == 1
    assert issuer.calls["auth:client_secret_basic"] == 0


@pytest.mark.parametrize("auth", [None, ("test-client", "wrong"), ("other", SECRET)])
def test_confidential_client_without_its_secret_is_invalid_client(
    http: httpx.Client, issuer: LocalIssuer, auth: tuple[str, str] | None
) -> None:
    issuer.client_secret = SECRET
    code = sign_in(http, issuer)

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
        | ({"client_id": "test-client"} if auth is None else {}),
        auth=auth,
    )

    assert_oauth_error(response, "invalid_client")


def test_malformed_basic_header_is_invalid_client(http: httpx.Client) -> None:
    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials"},
        headers={"Authorization": "Basic %%%not-base64"},
    )

    assert_oauth_error(response, "invalid_client")


def test_public_client_sending_a_secret_is_invalid_client(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    assert_oauth_error(exchange(http, sign_in(http, issuer), client_secret="x"), "invalid_client")


def test_settings_carry_the_oauth_url_and_the_client_secret(issuer: LocalIssuer) -> None:
    issuer.client_secret = SECRET

    settings = issuer.settings()

    assert settings.oauth_base_url == issuer.url
    assert settings.client_secret is not None
    assert settings.client_secret.get_secret_value() == SECRET
    assert SECRET not in repr(issuer)


# -- refresh_token ---------------------------------------------------------------------


def test_refresh_mints_new_tokens_of_the_same_sign_in_without_nonce(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    first = signed_in_tokens(http, issuer)

    response = refresh(http, first["refresh_token"])

    assert response.status_code == 200
    tokens = response.json()
    assert "refresh_token" not in tokens
    old, new = claims_of(first["id_token"]), claims_of(tokens["id_token"])
    assert "nonce" not in new
    for name in ("origin_jti", "event_id", "auth_time", "sub"):
        assert new[name] == old[name] == claims_of(tokens["access_token"])[name]
    assert new["jti"] != old["jti"]


def test_refresh_without_rotation_keeps_the_refresh_token_valid(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]

    assert refresh(http, refresh_token).status_code == 200
    assert refresh(http, refresh_token).status_code == 200


def test_refresh_with_rotation_replaces_the_refresh_token(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.rotate_refresh_tokens = True
    old = signed_in_tokens(http, issuer)["refresh_token"]

    new = refresh(http, old).json()["refresh_token"]

    assert new != old
    assert issuer.refresh_token_is_active(new)
    assert not issuer.refresh_token_is_active(old)
    assert_oauth_error(refresh(http, old), "invalid_grant")
    assert refresh(http, new).status_code == 200


def test_refresh_by_another_client_is_invalid_client(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]

    assert_oauth_error(refresh(http, refresh_token, client_id="other"), "invalid_client")


def test_refresh_token_of_another_app_client_is_invalid_grant(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]

    assert_oauth_error(refresh(http, refresh_token, client_id=OTHER_APP), "invalid_grant")
    assert refresh(http, refresh_token).status_code == 200


def test_unknown_refresh_token_is_invalid_grant(http: httpx.Client) -> None:
    assert_oauth_error(refresh(http, "not-a-refresh-token"), "invalid_grant")


def test_revoke_sessions_makes_refresh_invalid_grant(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]

    assert issuer.revoke_sessions("alice") == 1

    assert_oauth_error(refresh(http, refresh_token), "invalid_grant")


# -- revoke ----------------------------------------------------------------------------


def test_revoked_refresh_token_gives_invalid_grant(http: httpx.Client, issuer: LocalIssuer) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]

    response = http.post(
        "/oauth2/revoke", data={"token": refresh_token, "client_id": "test-client"}
    )

    assert response.status_code == 200
    assert_oauth_error(refresh(http, refresh_token), "invalid_grant")
    assert issuer.calls["revoke"] == 1


def test_revoke_ends_the_sessions_access_tokens_at_userinfo(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    tokens = signed_in_tokens(http, issuer)
    http.post("/oauth2/revoke", data={"token": tokens["refresh_token"], "client_id": "test-client"})

    response = http.get(
        "/oauth2/userInfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )

    assert_oauth_error(response, "invalid_token", 401)


def test_revoking_an_access_token_is_unsupported_token_type(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    access = signed_in_tokens(http, issuer)["access_token"]

    response = http.post("/oauth2/revoke", data={"token": access, "client_id": "test-client"})

    assert_oauth_error(response, "unsupported_token_type")


def test_revoking_another_app_clients_token_is_refused(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]

    response = http.post("/oauth2/revoke", data={"token": refresh_token, "client_id": OTHER_APP})

    assert_oauth_error(response, "unauthorized_client")
    assert issuer.refresh_token_is_active(refresh_token)


def test_revoking_an_unknown_token_succeeds(http: httpx.Client) -> None:
    response = http.post("/oauth2/revoke", data={"token": "unknown", "client_id": "test-client"})

    assert response.status_code == 200


def test_revoke_checks_the_client(http: httpx.Client) -> None:
    response = http.post("/oauth2/revoke", data={"token": "unknown", "client_id": "other"})

    assert_oauth_error(response, "invalid_client")


# -- client_credentials ----------------------------------------------------------------


def test_client_credentials_needs_a_confidential_client(http: httpx.Client) -> None:
    response = http.post(
        "/oauth2/token", data={"grant_type": "client_credentials", "client_id": "test-client"}
    )

    assert_oauth_error(response, "unauthorized_client")


def test_client_credentials_mints_a_machine_token(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.client_secret = SECRET

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "orders/read orders/write"},
        auth=("test-client", SECRET),
    )

    tokens = response.json()
    assert set(tokens) == {"access_token", "expires_in", "token_type"}
    claims = claims_of(tokens["access_token"])
    assert claims["sub"] == claims["client_id"] == "test-client"
    assert claims["scope"] == "orders/read orders/write"


def test_client_credentials_cannot_ask_for_openid_scopes(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.client_secret = SECRET

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "scope": "openid"},
        auth=("test-client", SECRET),
    )

    assert_oauth_error(response, "invalid_scope")


# -- logout, userInfo, discovery -------------------------------------------------------


def test_logout_redirects_to_the_logout_uri(http: httpx.Client, issuer: LocalIssuer) -> None:
    response = http.get("/logout", params={"client_id": "test-client", "logout_uri": SIGNED_OUT})

    assert response.status_code == 302
    assert response.headers["location"] == SIGNED_OUT
    assert issuer.calls["logout"] == 1


@pytest.mark.parametrize(
    "params",
    [
        {"client_id": "other", "logout_uri": SIGNED_OUT},
        {"client_id": "test-client", "logout_uri": "https://attacker.example/"},
        {"client_id": "test-client"},
    ],
)
def test_logout_with_an_unknown_client_or_uri_shows_an_error_page(
    http: httpx.Client, params: dict[str, str]
) -> None:
    response = http.get("/logout", params=params)

    assert response.status_code == 400
    assert "location" not in response.headers


def test_userinfo_answers_the_users_attributes(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.login_as = LocalUser("erin", email="erin@example.com", custom={"tier": "gold"})
    _, answer = redirected_to(http.get("/oauth2/authorize", params=authorize_params()))
    access = exchange(http, answer["code"]).json()["access_token"]

    info = http.get("/oauth2/userInfo", headers={"Authorization": f"Bearer {access}"}).json()

    assert info == {
        "sub": LocalUser("erin").sub,
        "username": "erin",
        "email": "erin@example.com",
        "email_verified": "true",
        "custom:tier": "gold",
    }


@pytest.mark.parametrize("header", [None, "Bearer", "Basic abc"])
def test_userinfo_without_a_bearer_token_is_refused(http: httpx.Client, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}

    assert http.get("/oauth2/userInfo", headers=headers).status_code == 401


def test_userinfo_refuses_a_foreign_or_expired_token(
    http: httpx.Client, issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    for token in (
        other_issuer.access_token(scopes=["openid"]),
        issuer.access_token(scopes=["openid"], expires_in=-10),
        issuer.id_token(),
        "not.a.token",
    ):
        response = http.get("/oauth2/userInfo", headers={"Authorization": f"Bearer {token}"})
        assert_oauth_error(response, "invalid_token", 401)


def test_discovery_names_the_issuer_and_the_local_endpoints(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    for path in (
        "/.well-known/openid-configuration",
        f"/{issuer.user_pool_id}/.well-known/openid-configuration",
    ):
        document = http.get(path).json()
        assert document["issuer"] == issuer.issuer
        assert document["token_endpoint"] == f"{issuer.url}/oauth2/token"
        assert document["jwks_uri"] == issuer.jwks_url
        assert document["code_challenge_methods_supported"] == ["S256"]


def test_unknown_path_is_404_and_wrong_method_405(http: httpx.Client) -> None:
    assert http.get("/nothing").status_code == 404
    assert http.get("/oauth2/token").status_code == 405


# -- counters and faults ---------------------------------------------------------------


def test_calls_count_each_endpoint_and_grant(http: httpx.Client, issuer: LocalIssuer) -> None:
    tokens = signed_in_tokens(http, issuer)
    refresh(http, tokens["refresh_token"])
    refresh(http, tokens["refresh_token"])

    assert issuer.calls["authorize"] == 1
    assert issuer.calls["token"] == 3
    assert issuer.calls["token:authorization_code"] == 1
    assert issuer.calls["token:refresh_token"] == 2
    assert issuer.calls["revoke"] == 0


def test_fail_makes_an_endpoint_answer_the_fault_until_cleared(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    refresh_token = signed_in_tokens(http, issuer)["refresh_token"]
    issuer.fail("token", status=500, body=b"boom")

    failed = refresh(http, refresh_token)
    issuer.clear_faults()

    assert (failed.status_code, failed.content) == (500, b"boom")
    assert failed.headers["content-type"] == "text/plain"
    assert refresh(http, refresh_token).status_code == 200
    assert issuer.calls["token:refresh_token"] == 1  # the faulted call never reached a grant
    assert issuer.calls["token"] == 3


def test_fail_can_forge_a_json_answer(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.fail("token", status=200, body=b'{"access_token": "x"}', content_type="application/json")

    response = http.post("/oauth2/token", data={"grant_type": "refresh_token"})

    assert response.json() == {"access_token": "x"}


def test_fail_with_a_delay_hangs_the_endpoint(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.fail("token", status=None, delay=5)

    with pytest.raises(httpx.ReadTimeout):
        http.post("/oauth2/token", data={"grant_type": "refresh_token"}, timeout=0.2)


def test_reset_restores_the_defaults_but_keeps_clients(issuer: LocalIssuer) -> None:
    issuer.login_as = "alice"
    issuer.rotate_refresh_tokens = True
    issuer.token_ttl_seconds = 5
    issuer.fail("token")
    issuer.count("token")

    issuer.reset()

    assert issuer.login_as is None
    assert not issuer.rotate_refresh_tokens
    assert issuer.token_ttl_seconds == 3600
    assert not issuer.faults
    assert issuer.calls["token"] == 0
    assert OTHER_APP in issuer.clients()


def test_fail_names_only_known_endpoints(issuer: LocalIssuer) -> None:
    with pytest.raises(ValueError, match="unknown endpoint"):
        issuer.fail("tokens")


# -- resource binding, authentication levels, secrets (DESIGN §18) --------------------------

API = "https://api.example.com"
AWKWARD_SECRET = "a+b/c=d%e f"


def test_resource_of_the_authorize_request_is_the_access_tokens_aud(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    tokens = signed_in_tokens(http, issuer, resource=API)

    assert claims_of(tokens["access_token"])["aud"] == API
    assert claims_of(tokens["id_token"])["aud"] == "test-client"
    refreshed = refresh(http, tokens["refresh_token"]).json()
    assert claims_of(refreshed["access_token"])["aud"] == API


def test_without_a_resource_access_tokens_have_no_aud(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    assert "aud" not in claims_of(signed_in_tokens(http, issuer)["access_token"])


@pytest.mark.parametrize("resource", ["api.example.com", "https://api.example.com/#frag"])
def test_resource_that_is_not_an_absolute_uri_is_invalid_target(
    http: httpx.Client, issuer: LocalIssuer, resource: str
) -> None:
    issuer.login_as = "alice"

    _, query = redirected_to(
        http.get("/oauth2/authorize", params=authorize_params(resource=resource))
    )

    assert query["error"] == "invalid_target"


def test_token_request_for_another_resource_is_invalid_target(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    verifier, challenge = pkce_pair()
    code = sign_in(http, issuer, challenge=challenge, resource=API)

    response = exchange(http, code, code_verifier=verifier, resource="https://other.example.com")

    assert_oauth_error(response, "invalid_target")


def test_token_request_may_repeat_the_authorized_resource(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    verifier, challenge = pkce_pair()
    code = sign_in(http, issuer, challenge=challenge, resource=API)

    assert exchange(http, code, code_verifier=verifier, resource=API).status_code == 200


def test_acr_values_set_the_tokens_acr_and_the_users_amr_is_kept(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    user = LocalUser("alice", amr=("pwd", "mfa"))
    issuer.login_as = user
    verifier, challenge = pkce_pair()
    code = sign_in(http, issuer, user, challenge=challenge, acr_values="urn:example:mfa urn:x")

    tokens = exchange(http, code, code_verifier=verifier).json()

    for token in (tokens["access_token"], tokens["id_token"]):
        assert claims_of(token)["acr"] == "urn:example:mfa"
        assert claims_of(token)["amr"] == ["pwd", "mfa"]


def test_tokens_carry_amr_pwd_and_no_acr_by_default(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    claims = claims_of(signed_in_tokens(http, issuer)["access_token"])

    assert claims["amr"] == ["pwd"]
    assert "acr" not in claims


HOUR_AGO = 3600


def auth_time_after(http: httpx.Client, issuer: LocalIssuer, **params: str) -> int:
    """Sign in as a user whose hosted-UI session began an hour ago; the tokens' auth_time."""
    started = int(time.time()) - HOUR_AGO
    verifier, challenge = pkce_pair()
    code = sign_in(
        http, issuer, LocalUser("alice", auth_time=started), challenge=challenge, **params
    )
    auth_time = claims_of(exchange(http, code, code_verifier=verifier).json()["id_token"])
    return int(auth_time["auth_time"]) - started


def test_an_existing_hosted_ui_session_keeps_its_auth_time(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    assert auth_time_after(http, issuer) == 0
    assert issuer.calls["authenticate"] == 0


def test_max_age_younger_than_the_session_makes_the_user_authenticate_again(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    assert auth_time_after(http, issuer, max_age="300") >= HOUR_AGO
    assert issuer.calls["authenticate"] == 1


def test_max_age_older_than_the_session_keeps_it(http: httpx.Client, issuer: LocalIssuer) -> None:
    assert auth_time_after(http, issuer, max_age=str(2 * HOUR_AGO)) == 0


def test_prompt_login_makes_the_user_authenticate_again(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    assert auth_time_after(http, issuer, prompt="login") >= HOUR_AGO


def test_max_age_that_is_not_a_number_is_invalid_request(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.login_as = "alice"

    _, query = redirected_to(http.get("/oauth2/authorize", params=authorize_params(max_age="-1")))

    assert query["error"] == "invalid_request"


def test_sign_in_page_with_the_second_factor_ticked_gives_amr_mfa(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    response = http.post(
        "/login",
        params=authorize_params(),
        data={"username": "bob", "mfa": "1", "action": "sign_in"},
    )
    _, query = redirected_to(response)

    tokens = exchange(http, query["code"]).json()

    assert claims_of(tokens["access_token"])["amr"] == ["pwd", "mfa"]
    assert issuer.calls["authenticate"] == 1


def test_basic_credentials_are_form_urldecoded_as_rfc_6749_says(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.client_secret = AWKWARD_SECRET
    form = {"grant_type": "client_credentials", "scope": "orders/read"}

    encoded = http.post(
        "/oauth2/token",
        data=form,
        headers={"Authorization": basic_authorization("test-client", AWKWARD_SECRET)},
    )
    raw = http.post("/oauth2/token", data=form, auth=("test-client", AWKWARD_SECRET))

    assert encoded.status_code == 200, encoded.text
    assert_oauth_error(raw, "invalid_client")  # its "+" decodes to a space


def test_a_rotating_client_accepts_either_secret(http: httpx.Client, issuer: LocalIssuer) -> None:
    issuer.client_secret = ["old-secret", "new-secret"]
    form = {"grant_type": "client_credentials"}

    for secret in ("old-secret", "new-secret"):
        assert (
            http.post("/oauth2/token", data=form, auth=("test-client", secret)).status_code == 200
        )
    wrong = http.post("/oauth2/token", data=form, auth=("test-client", "third"))
    assert_oauth_error(wrong, "invalid_client")


def test_client_credentials_with_a_resource_carry_it_as_aud(
    http: httpx.Client, issuer: LocalIssuer
) -> None:
    issuer.client_secret = SECRET

    response = http.post(
        "/oauth2/token",
        data={"grant_type": "client_credentials", "resource": API},
        auth=("test-client", SECRET),
    )

    assert claims_of(response.json()["access_token"])["aud"] == API
