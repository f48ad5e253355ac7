"""``/auth/login``, ``/auth/callback`` and ``/auth/logout`` against the local hosted
UI over real HTTP (the app runs in-process; every call to Cognito's endpoints is
real HTTP on 127.0.0.1). Every refused sign-in is a 4xx (503 when Cognito
cannot be reached), never a 5xx otherwise, and never starts a session."""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator

import httpx
import pytest

from fastapi_cognito_guard import CognitoAuth
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer
from tests.sessions_support import (
    APP,
    JWT,
    authorize,
    browser,
    make_app,
    open_session,
    query_of,
    session_cookies,
    set_cookies,
    sign_in,
    start_sign_in,
)


@pytest.fixture
def issuer(cognito_issuer_session: LocalIssuer) -> LocalIssuer:
    cognito_issuer_session.login_as = "alice"
    return cognito_issuer_session


def assert_no_session(response: httpx.Response, client: httpx.AsyncClient) -> None:
    assert not any("fcg_session=" in c and "Max-Age=0" not in c for c in set_cookies(response))
    assert session_cookies(client) == {}


# -- sign-in -----------------------------------------------------------------------


async def test_sign_in_starts_a_session_and_returns_to_next(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        callback = await sign_in(client, issuer, next_path="/me?x=1")
        assert callback.status_code == 302
        assert callback.headers["location"] == "/me?x=1"
        assert (await client.get("/me")).json() == {"username": "alice"}


async def test_login_redirects_to_authorize_with_state_nonce_and_s256_challenge(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        url = await start_sign_in(client)
    assert url.startswith(f"{issuer.url}/oauth2/authorize?")
    query = query_of(url)
    assert query["response_type"] == "code"
    assert query["client_id"] == issuer.client_id
    assert query["redirect_uri"] == f"{APP}/auth/callback"
    assert query["scope"] == "openid email profile"
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 43
    assert len(query["nonce"]) >= 43


async def test_two_sign_ins_in_flight_both_complete(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        first = await start_sign_in(client, "/first")
        second = await start_sign_in(client, "/second")
        assert query_of(first)["state"] != query_of(second)["state"]
        done = await client.get(await authorize(first))
        assert done.headers["location"] == "/first"
        again = await client.get(await authorize(second))
        assert again.headers["location"] == "/second"


@pytest.mark.parametrize(
    "next_path",
    [
        "https://evil.example/x",
        "//evil.example/x",
        "/\\evil.example/x",
        "javascript:alert(1)",
        "/\t/evil.example",
        "http:evil.example",
        "",
    ],
)
async def test_next_that_leaves_the_app_lands_on_root(issuer: LocalIssuer, next_path: str) -> None:
    async with browser(make_app(issuer)) as client:
        callback = await sign_in(client, issuer, next_path=next_path)
    assert callback.status_code == 302
    assert callback.headers["location"] == "/"


async def test_redirect_uri_setting_replaces_the_derived_one(issuer: LocalIssuer) -> None:
    app = make_app(issuer, redirect_uri="http://127.0.0.1:9999/base/auth/callback")
    async with browser(app) as client:
        query = query_of(await start_sign_in(client))
    assert query["redirect_uri"] == "http://127.0.0.1:9999/base/auth/callback"


async def test_confidential_client_signs_in_with_http_basic() -> None:
    issuer = LocalIssuer(client_id="confidential", client_secret="s3cret-of-the-client")
    issuer.login_as = "alice"
    with issuer.serve():
        async with browser(make_app(issuer)) as client:
            callback = await sign_in(client, issuer)
            assert callback.status_code == 302
            assert (await client.get("/me")).status_code == 200
        async with browser(make_app(issuer, client_secret="wrong-secret")) as client:
            refused = await sign_in(client, issuer)
            assert refused.status_code == 400
            assert refused.json()["code"] == "token_exchange_failed"


# -- refused callbacks ---------------------------------------------------------------


async def test_state_that_matches_no_sign_in_is_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        callback = await authorize(await start_sign_in(client))
        forged = callback.replace("state=", "state=x")
        response = await client.get(forged)
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_state"
        assert_no_session(response, client)


async def test_replayed_callback_is_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        url = await start_sign_in(client)
        sign_in_cookies = dict(client.cookies.items())
        callback = await authorize(url)
        assert (await client.get(callback)).status_code == 302
        client.cookies.clear()
        for name, value in sign_in_cookies.items():
            client.cookies.set(name, value)  # even with the sign-in cookie sent again
        replay = await client.get(callback)
        assert replay.status_code == 400
        assert replay.json()["code"] == "invalid_state"
        assert_no_session(replay, client)


async def test_callback_in_another_browser_is_refused(issuer: LocalIssuer) -> None:
    app = make_app(issuer)
    async with browser(app) as victim:
        callback = await authorize(await start_sign_in(victim))
    async with browser(app) as attacker:
        response = await attacker.get(callback)
        assert response.status_code == 400
        assert_no_session(response, attacker)


async def test_callback_without_code_is_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        state = query_of(await start_sign_in(client))["state"]
        response = await client.get("/auth/callback", params={"state": state})
        assert response.status_code == 400
        assert response.json()["code"] == "invalid_request"
        assert_no_session(response, client)


async def test_access_denied_from_the_hosted_ui_is_a_400(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        state = query_of(await start_sign_in(client))["state"]
        response = await client.get(
            "/auth/callback", params={"error": "access_denied", "state": state}
        )
        assert response.status_code == 400
        assert response.json()["code"] == "access_denied"
        assert_no_session(response, client)


async def test_error_page_for_navigations_is_html_and_escapes_nothing_it_was_sent(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        response = await client.get(
            "/auth/callback?error=<script>x</script>&state=<b>",
            headers={"accept": "text/html"},
        )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "<script>" not in response.text
    assert "<b>" not in response.text
    assert "signin_failed" in response.text


async def test_id_token_with_another_nonce_is_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        url = await start_sign_in(client)
        nonce = query_of(url)["nonce"]
        callback = await authorize(url.replace(f"nonce={nonce}", "nonce=someone-elses"))
        response = await client.get(callback)
        assert response.status_code == 401
        assert response.json()["code"] == "nonce_mismatch"
        assert_no_session(response, client)


@pytest.mark.parametrize("also_allowed", [True, False])
async def test_tokens_of_another_app_client_are_refused(
    issuer: LocalIssuer, also_allowed: bool
) -> None:
    client_ids = [issuer.client_id, "other-client"] if also_allowed else [issuer.client_id]
    async with browser(make_app(issuer, client_ids=client_ids)) as client:
        url = await start_sign_in(client)
        nonce = query_of(url)["nonce"]
        foreign = {
            "access_token": issuer.access_token("alice", client_id="other-client"),
            "id_token": issuer.id_token("alice", aud="other-client", nonce=nonce),
            "refresh_token": "r",
            "token_type": "Bearer",
            "expires_in": 3600,
        }
        issuer.fail("token", status=200, body=json.dumps(foreign).encode())
        response = await client.get(await authorize(url))
        assert response.status_code == 401
        assert response.json()["code"] in ("wrong_audience", "wrong_client")
        assert_no_session(response, client)


async def test_tokens_of_two_users_are_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        url = await start_sign_in(client)
        mixed = {
            "access_token": issuer.access_token("mallory"),
            "id_token": issuer.id_token("alice", nonce=query_of(url)["nonce"]),
        }
        issuer.fail("token", status=200, body=json.dumps(mixed).encode())
        response = await client.get(await authorize(url))
        assert response.status_code == 401
        assert response.json()["code"] == "sub_mismatch"


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, b"<html>not json</html>", 400),
        (200, b"[1, 2, 3]", 400),
        (200, b'{"access_token": "not-a-jwt", "id_token": "x"}', 401),
        (200, b" " * (10 * 1024 * 1024), 400),
        (400, b'{"error": "invalid_grant"}', 400),
        (500, b"oops", 503),
    ],
    ids=["html", "json-list", "garbage-tokens", "10MB", "invalid_grant", "500"],
)
async def test_bad_token_endpoint_answers_give_a_clear_error_and_no_session(
    issuer: LocalIssuer, status: int, body: bytes, expected: int
) -> None:
    async with browser(make_app(issuer)) as client:
        url = await start_sign_in(client)
        issuer.fail("token", status=status, body=body)
        response = await client.get(await authorize(url))
        assert response.status_code == expected
        assert "code" in response.json()
        assert_no_session(response, client)
        if expected == 503:
            assert response.headers["retry-after"]


async def test_hanging_token_endpoint_is_a_503(issuer: LocalIssuer) -> None:
    app = make_app(issuer)
    async with browser(app) as client:
        app.state.auth.sessions.oauth._timeout = 0.3
        url = await start_sign_in(client)
        issuer.fail("token", status=None, delay=5)
        response = await client.get(await authorize(url))
        assert response.status_code == 503
        assert response.json()["code"] == "oauth_unavailable"
        assert_no_session(response, client)


@pytest.fixture
def closed_port() -> Iterator[int]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


async def test_unreachable_token_endpoint_is_a_503(issuer: LocalIssuer, closed_port: int) -> None:
    served = make_app(issuer)
    async with browser(served) as client:
        url = await start_sign_in(client)
        callback = await authorize(url)
        served.state.auth.sessions.oauth.base_url = f"http://127.0.0.1:{closed_port}"
        response = await client.get(callback)
        assert response.status_code == 503
        assert_no_session(response, client)


# -- sign-out ------------------------------------------------------------------------


async def test_logout_revokes_clears_and_sends_the_browser_to_the_hosted_ui(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        cookie = next(iter(session_cookies(client).values()))
        issuer.calls.clear()
        response = await client.post("/auth/logout", headers={"origin": APP})
        assert response.status_code == 303
        location = response.headers["location"]
        assert location.startswith(f"{issuer.url}/logout?")
        assert query_of(location) == {"client_id": issuer.client_id, "logout_uri": f"{APP}/"}
        assert issuer.calls["revoke"] == 1
        assert any(c.startswith("fcg_session=;") for c in set_cookies(response))
        assert (await client.get("/me")).status_code == 401
        assert not issuer.refresh_token_is_active(open_session(cookie).refresh_token)


async def test_a_session_cookie_copied_before_logout_is_refused_after_it(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        cookie = next(iter(session_cookies(client).values()))
        await client.post("/auth/logout", headers={"origin": APP})
        client.cookies.set("fcg_session", cookie)
        copied = await client.get("/me")
        session = open_session(cookie)
        assert session is not None
        client.cookies.clear()
        response = await client.get(
            "/me", headers={"Authorization": f"Bearer {session.access_token}"}
        )
    assert copied.status_code == 401
    assert response.status_code == 401
    assert response.json()["code"] == "revoked"


async def test_logout_uri_setting_is_sent_to_the_hosted_ui(issuer: LocalIssuer) -> None:
    app = make_app(issuer, logout_uri="http://127.0.0.1:8000/bye")
    async with browser(app) as client:
        await sign_in(client, issuer)
        response = await client.get("/auth/logout")
    assert query_of(response.headers["location"])["logout_uri"] == "http://127.0.0.1:8000/bye"


async def test_get_logout_needs_no_origin(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.get("/auth/logout")
        assert response.status_code == 302
        assert (await client.get("/me")).status_code == 401


async def test_post_logout_from_a_foreign_origin_is_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        issuer.calls.clear()
        response = await client.post("/auth/logout", headers={"origin": "https://evil.example"})
        assert response.status_code == 403
        assert response.json()["code"] == "csrf_rejected"
        assert issuer.calls["revoke"] == 0
        assert (await client.get("/me")).status_code == 200


async def test_bearer_logout_without_a_session_answers_204(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        token = issuer.access_token("bob")
        response = await client.post("/auth/logout", headers=bearer(token))
        assert response.status_code == 204
        refused = await client.post("/auth/logout", headers=bearer("not-a-token"))
        assert refused.status_code == 401


# -- login_required, configuration, transport ------------------------------------------


async def test_login_required_redirects_navigations_and_refuses_api_calls(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        navigation = await client.get("/page?tab=2", headers={"accept": "text/html"})
        assert navigation.status_code == 302
        assert navigation.headers["location"] == "/auth/login?next=%2Fpage%3Ftab%3D2"
        api = await client.get("/page", headers={"accept": "application/json"})
        assert api.status_code == 401
        await sign_in(client, issuer)
        assert (await client.get("/page", headers={"accept": "text/html"})).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "named"),
    [({"session_secret": []}, "COGNITO_SESSION_SECRET"), ({"oauth_url": None}, "COGNITO_DOMAIN")],
)
def test_login_router_without_its_settings_fails_at_construction(
    issuer: LocalIssuer, overrides: dict[str, object], named: str
) -> None:
    settings = issuer.settings(**{"session_secret": "x" * 32, **overrides})
    with pytest.raises(ValueError, match=named):
        CognitoAuth(settings).login_router()


async def test_sign_in_over_plain_http_to_a_public_host_is_refused(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer), base_url="http://app.example.com") as client:
        response = await client.get("/auth/login")
    assert response.status_code == 400
    assert response.json()["code"] == "insecure_transport"


async def test_over_https_cookies_are_secure_and_host_prefixed(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer), base_url="https://127.0.0.1:8443") as client:
        login = await client.get("/auth/login")
        assert all(c.startswith("__Host-") and "; Secure" in c for c in set_cookies(login))
        issuer.login_as = "alice"
        callback = await client.get(await authorize(login.headers["location"]))
        session = [c for c in set_cookies(callback) if "fcg_session" in c]
        assert session
        assert session[0].startswith("__Host-fcg_session=")
        assert "; Secure" in session[0]
        assert "; Path=/" in session[0]
        assert (await client.get("/me")).status_code == 200


async def test_no_token_reaches_a_cookie_or_the_log(
    issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    issuer.token_ttl_seconds = 30  # every request refreshes
    try:
        async with browser(make_app(issuer)) as client:
            callback = await sign_in(client, issuer)
            refreshed = await client.get("/me")
            logout = await client.post("/auth/logout", headers={"origin": APP})
    finally:
        issuer.token_ttl_seconds = 3600
    for response in (callback, refreshed, logout):
        for cookie in set_cookies(response):
            assert not JWT.search(cookie)
    assert not JWT.search(caplog.text)
