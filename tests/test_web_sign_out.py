"""Sign-out and the active-session check as users meet them (DESIGN §13, §14): apps
with browser sign-in at the local hosted UI over real HTTP on 127.0.0.1, bearer
callers, and Cognito's user-pool API (``GetUser`` / ``GlobalSignOut``) served by
``tests.user_pool_api.UserPoolApi`` for the issuer's tokens.

Each test names a behaviour that failed before issue 19: a sign-out that answered
as if it had worked while the session lived on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI

from fastapi_cognito_guard import CognitoAuth, CognitoUser
from fastapi_cognito_guard.errors import OAuthUnavailableError
from fastapi_cognito_guard.sessions.context import SessionContext
from fastapi_cognito_guard.sessions.session import Session
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, claims_of
from tests.sessions_support import (
    APP,
    browser,
    make_app,
    open_session,
    seal_session,
    session_cookies,
    sign_in,
)
from tests.user_pool_api import UserPoolApi

ADMIN = "aws.cognito.signin.user.admin"
WITH_ADMIN = ["openid", "email", "profile", ADMIN]
ORIGIN = {"origin": APP}


@pytest.fixture
def issuer(cognito_issuer_session: LocalIssuer) -> LocalIssuer:
    cognito_issuer_session.login_as = "alice"
    return cognito_issuer_session


@pytest.fixture
def user_pool(issuer: LocalIssuer) -> Iterator[UserPoolApi]:
    with UserPoolApi(issuer) as api:
        yield api


def app_with_active(issuer: LocalIssuer, **overrides: Any) -> FastAPI:
    """``make_app`` plus ``GET /active`` behind ``require_active_session``."""
    app = make_app(issuer, **overrides)
    auth: CognitoAuth[CognitoUser] = app.state.auth

    @app.get("/active")
    async def active(user: CognitoUser = Depends(auth.require_active_session)) -> dict[str, str]:
        return {"sub": user.sub}

    return app


def cookie_of(client: Any) -> str:
    return next(iter(session_cookies(client).values()))


async def replay(client: Any, cookie: str, path: str = "/me") -> Any:
    """The request a thief holding a copy of the session cookie would send."""
    client.cookies.clear()
    client.cookies.set("fcg_session", cookie)
    return await client.get(path)


# -- finding 1: token_use=id ------------------------------------------------------------


async def test_id_token_app_sign_out_revokes_the_session_and_a_copied_cookie_is_refused(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer, token_use="id")) as client:
        await sign_in(client, issuer)
        cookie = cookie_of(client)
        issuer.fail("revoke")  # only the revocation list can end the copy
        logout = await client.post("/auth/logout", headers=ORIGIN)
        assert logout.status_code == 303
        issuer.clear_faults()
        copied = await replay(client, cookie)
        session = open_session(cookie)
        assert session is not None
        client.cookies.clear()
        # the sign-in itself is revoked, not only this cookie: its ID token is refused
        answer = await client.get("/me", headers=bearer(session.id_token))
    assert copied.status_code == 401  # the session id is revoked: signed out
    assert (answer.status_code, answer.json()["code"]) == (401, "revoked")


async def test_id_token_app_sign_out_everywhere_calls_global_sign_out_and_ends_other_devices(
    issuer: LocalIssuer, user_pool: UserPoolApi
) -> None:
    app = make_app(issuer, token_use="id", login_scopes=WITH_ADMIN, idp_endpoint=user_pool.url)
    async with browser(app) as laptop, browser(app) as phone:
        await sign_in(phone, issuer)
        await sign_in(laptop, issuer)
        logout = await laptop.post("/auth/logout?everywhere=true", headers=ORIGIN)
        assert logout.status_code == 303
        answer = await phone.get("/me")
    assert (answer.status_code, answer.json()["code"]) == (401, "revoked")
    assert user_pool.calls["GlobalSignOut"] == 1
    assert list(user_pool.signed_out) == [claims_of(issuer.access_token())["sub"]]


# -- finding 2: tokens without origin_jti --------------------------------------------------


def without_origin_jti(issuer: LocalIssuer, token: str) -> str:
    payload = claims_of(token)
    del payload["origin_jti"]
    return issuer.sign(payload)


async def test_bearer_sign_out_of_a_token_without_origin_jti_revokes_its_sign_in(
    issuer: LocalIssuer,
) -> None:
    signed_in = int(time.time()) - 30
    token = without_origin_jti(issuer, issuer.access_token("bob", auth_time=signed_in))
    refreshed = without_origin_jti(issuer, issuer.access_token("bob", auth_time=signed_in))
    other_device = without_origin_jti(issuer, issuer.access_token("bob", auth_time=signed_in - 9))
    async with browser(make_app(issuer)) as client:
        assert (await client.post("/auth/logout", headers=bearer(token))).status_code == 204
        answer = await client.get("/me", headers=bearer(refreshed))
        assert (answer.status_code, answer.json()["code"]) == (401, "revoked")
        assert (await client.get("/me", headers=bearer(other_device))).status_code == 200


async def test_session_sign_out_without_origin_jti_refuses_the_copied_cookie(
    issuer: LocalIssuer,
) -> None:
    signed_in = int(time.time()) - 30
    access = without_origin_jti(issuer, issuer.access_token("bob", auth_time=signed_in))
    identity = without_origin_jti(issuer, issuer.id_token("bob", auth_time=signed_in))
    session = Session(
        sid="s1",
        sub=claims_of(access)["sub"],
        id_token=identity,
        access_token=access,
        refresh_token=None,
        expires_at=claims_of(access)["exp"],
        started_at=signed_in,
    )
    cookie = seal_session(session)
    async with browser(make_app(issuer)) as client:
        assert (await replay(client, cookie)).status_code == 200
        assert (await client.post("/auth/logout", headers=ORIGIN)).status_code == 303
        copied = await replay(client, cookie)
        client.cookies.clear()
        # revoked by its sign-in key: the session's own access token is refused too
        answer = await client.get("/me", headers=bearer(access))
    assert copied.status_code == 401
    assert (answer.status_code, answer.json()["code"]) == (401, "revoked")


# -- finding 3: require_active_session for browser sessions -----------------------------------


async def test_active_session_of_an_id_token_app_asks_cognito_with_the_session_access_token(
    issuer: LocalIssuer, user_pool: UserPoolApi
) -> None:
    app = app_with_active(
        issuer,
        token_use="id",
        login_scopes=WITH_ADMIN,
        idp_endpoint=user_pool.url,
        revocation_check_seconds=0,
    )
    async with browser(app) as client:
        await sign_in(client, issuer)
        assert (await client.get("/active")).status_code == 200
        user_pool.sign_out_everywhere(open_session(cookie_of(client)).sub)  # another app did
        answer = await client.get("/active")
        assert (answer.status_code, answer.json()["code"]) == (401, "revoked")
        answer = await client.get("/me")  # the session joined the list: every route refuses it
        assert (answer.status_code, answer.json()["code"]) == (401, "revoked")
    assert user_pool.calls["GetUser"] == 2


async def test_active_session_with_default_login_scopes_is_counted_and_logged_once(
    issuer: LocalIssuer, user_pool: UserPoolApi, caplog: pytest.LogCaptureFixture
) -> None:
    app = app_with_active(issuer, idp_endpoint=user_pool.url)
    auth: CognitoAuth[CognitoUser] = app.state.auth
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        async with browser(app) as client:
            await sign_in(client, issuer)
            answers = [(await client.get("/active")).status_code for _ in range(3)]
    assert answers == [200, 200, 200]
    assert user_pool.calls["GetUser"] == 0
    assert auth.health()["session_checks"]["unchecked"] == 3
    unchecked = [r for r in caplog.records if "cannot ask Cognito about a session" in r.message]
    assert len(unchecked) == 1


def test_login_router_with_scopes_lacking_the_admin_scope_warns_naming_the_variable(
    issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        make_app(issuer)
        make_app(issuer, login_scopes=WITH_ADMIN)
    warnings = [r.message for r in caplog.records if "COGNITO_LOGIN_SCOPES" in r.message]
    assert len(warnings) == 1
    assert ADMIN in warnings[0]


# -- finding 4: expired access token while the OAuth2 endpoint fails ------------------------


async def test_sign_out_with_an_expired_access_token_and_cognito_down_still_ends_the_session(
    issuer: LocalIssuer,
) -> None:
    issuer.token_ttl_seconds = 3
    try:
        async with browser(make_app(issuer, leeway_seconds=0)) as client:
            await sign_in(client, issuer)
            cookie = cookie_of(client)
            session = open_session(cookie)
            assert session is not None
            await asyncio.sleep(session.expires_at - time.time() + 0.1)  # the token expires
            issuer.fail("token")  # no refresh before the sign-out ...
            issuer.fail("revoke")  # ... and the refresh token cannot be revoked
            logout = await client.post("/auth/logout", headers=ORIGIN)
            assert logout.status_code == 303
            issuer.clear_faults()  # Cognito is back: the copy refreshes ...
            answer = await replay(client, cookie)
    finally:
        issuer.token_ttl_seconds = 3600
    assert answer.status_code == 401  # ... into tokens of a revoked sign-in


# -- finding 5: everywhere needs a CSRF-checked POST ---------------------------------------


async def test_get_logout_with_everywhere_is_405_and_signs_nothing_out(
    issuer: LocalIssuer, user_pool: UserPoolApi
) -> None:
    app = make_app(issuer, login_scopes=WITH_ADMIN, idp_endpoint=user_pool.url)
    async with browser(app) as client:
        await sign_in(client, issuer)
        answer = await client.get("/auth/logout?everywhere=true")
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"
        assert answer.json()["code"] == "everywhere_needs_post"
        assert (await client.get("/me")).status_code == 200
    assert user_pool.calls["GlobalSignOut"] == 0


async def test_post_logout_everywhere_from_another_site_is_refused(
    issuer: LocalIssuer, user_pool: UserPoolApi
) -> None:
    app = make_app(issuer, login_scopes=WITH_ADMIN, idp_endpoint=user_pool.url)
    async with browser(app) as client:
        await sign_in(client, issuer)
        answer = await client.post(
            "/auth/logout?everywhere=true", headers={"origin": "https://evil.example"}
        )
        assert (answer.status_code, answer.json()["code"]) == (403, "csrf_rejected")
        assert (await client.get("/me")).status_code == 200
    assert user_pool.calls["GlobalSignOut"] == 0


# -- finding 6: revocations without Redis are per process ------------------------------------


async def test_first_revocation_without_redis_warns_once_naming_the_variable(
    issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        async with browser(make_app(issuer)) as client:
            for user in ("bob", "carol"):
                answer = await client.post(
                    "/auth/logout", headers=bearer(issuer.access_token(user))
                )
                assert answer.status_code == 204
    warnings = [r for r in caplog.records if "COGNITO_REDIS_URL" in r.message]
    assert len(warnings) == 1
    assert "other workers and replicas" in warnings[0].message


# -- finding 8: what sign_out says it did ----------------------------------------------------


async def test_sign_out_everywhere_with_a_bearer_id_token_says_cognito_was_not_told(
    issuer: LocalIssuer, user_pool: UserPoolApi
) -> None:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(
        issuer.settings(token_use="id", idp_endpoint=user_pool.url)
    )
    token = issuer.id_token("dave")
    result = await auth.sign_out(token, everywhere=True)
    await auth.aclose()
    assert (result.cognito, result.cognito_told) == ("no_access_token", False)
    assert result.user_revoked
    assert result.session_key == claims_of(token)["origin_jti"]
    assert user_pool.calls["GlobalSignOut"] == 0


async def test_sign_out_result_names_the_sign_in_key_of_a_token_without_origin_jti(
    issuer: LocalIssuer,
) -> None:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings())
    token = without_origin_jti(issuer, issuer.access_token("erin", auth_time=1_700_000_000))
    try:
        result = await auth.sign_out(token)
    finally:
        await auth.aclose()
    sub = claims_of(token)["sub"]
    assert (result.origin_jti, result.sign_in_key) == (None, f"{sub}:1700000000")
    assert not result.user_revoked
    assert result.cognito == "not_asked"
    assert set(auth.revocations.snapshot("sign_in")) == {f"{sub}:1700000000"}


# -- bad input: never a sign-out without an entry, never a 500 ---------------------------------


async def test_bearer_sign_out_of_a_token_the_list_cannot_hold_is_refused_with_a_code(
    issuer: LocalIssuer,
) -> None:
    token = issuer.access_token("frank", sub="s" * 300, origin_jti="o" * 300)
    async with browser(make_app(issuer)) as client:
        answer = await client.post("/auth/logout", headers=bearer(token))
    assert (answer.status_code, answer.json()["code"]) == (401, "unrevocable")


def unreadable_session() -> SessionContext:
    """A request whose session cookie names session ``s1`` that the store cannot read."""
    context = SessionContext({"fcg_session": "sealed"}, secure=False, explicit=False)
    context.sid = "s1"
    context.error = OAuthUnavailableError("the session store cannot be reached")
    return context


async def test_sign_out_everywhere_of_a_session_that_cannot_be_read_raises_and_keeps_the_cookie(
    issuer: LocalIssuer,
) -> None:
    auth = make_app(issuer).state.auth
    context = unreadable_session()
    with pytest.raises(OAuthUnavailableError):
        await auth.signing_out.sign_out_session(context, everywhere=True)
    assert not context.changed  # the cookie is not cleared
    assert len(auth.revocations) == 0


async def test_sign_out_of_a_session_that_cannot_be_read_revokes_its_id(
    issuer: LocalIssuer,
) -> None:
    auth = make_app(issuer).state.auth
    context = unreadable_session()
    assert await auth.signing_out.sign_out_session(context) is None
    assert auth.revocations.session_id_revoked("s1")
    assert context.changed  # signed out: the cookie is cleared
