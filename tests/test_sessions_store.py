"""Server-side sessions (``COGNITO_SESSION_STORE=redis``) on a real ``redis-server``:
the cookie holds only a sealed id, Redis holds only sealed tokens, deleting the
entry signs the browser out, and sign-out deletes it.

"Workers" are two apps (each its own ``CognitoAuth``, revocation list and
refresher) sharing one Redis; an outage is a ``RedisProxy`` cut between them and
Redis (which keeps its data, as in a network partition)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

import httpx
import pytest
import redis
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from fastapi_cognito_guard import CognitoAuth, CognitoUser
from fastapi_cognito_guard.sessions.context import session_context
from fastapi_cognito_guard.testing import LocalIssuer
from tests import redis_server as _redis
from tests.redis_server import RedisProxy, RedisServer
from tests.sessions_support import (
    APP,
    JWT,
    browser,
    make_app,
    session_cookies,
    set_cookies,
    sign_in,
)

redis_server = _redis.redis_server  # the fixture: a real redis-server per test


def stored_values(server: RedisServer) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(server.url)
    try:
        return {key: client.get(key) or b"" for key in client.scan_iter("fcg:session:*")}
    finally:
        client.close()


@pytest.fixture
def issuer(cognito_issuer_session: LocalIssuer) -> LocalIssuer:
    return cognito_issuer_session


@pytest.fixture
async def client(
    issuer: LocalIssuer, redis_server: RedisServer
) -> AsyncIterator[httpx.AsyncClient]:
    """A browser signed in to an app keeping its sessions in ``redis_server``."""
    app = make_app(issuer, session_store="redis", redis_url=redis_server.url)
    async with browser(app) as client:
        await sign_in(client, issuer)
        yield client


async def test_cookie_holds_an_id_and_redis_only_sealed_tokens(
    client: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    cookie = "".join(session_cookies(client).values())
    assert len(cookie) < 200
    assert (await client.get("/me")).json() == {"username": "alice"}
    stored = stored_values(redis_server)
    assert len(stored) == 1
    assert not any(JWT.search(value.decode("latin-1")) for value in stored.values())


async def test_deleting_the_stored_session_signs_the_browser_out(
    client: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    redis.Redis.from_url(redis_server.url).delete(*stored_values(redis_server))
    response = await client.get("/me")
    assert response.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


async def test_sign_out_deletes_the_stored_session(
    client: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    assert stored_values(redis_server)
    response = await client.post("/auth/logout", headers={"origin": APP})
    assert response.status_code == 303
    assert stored_values(redis_server) == {}


async def test_a_refresh_rewrites_the_stored_session(
    issuer: LocalIssuer, client: httpx.AsyncClient, redis_server: RedisServer
) -> None:
    before = stored_values(redis_server)
    issuer.calls.clear()
    issuer.token_ttl_seconds = 30  # the next sign-in's tokens expire within the margin
    try:
        await sign_in(client, issuer)
        after_sign_in = stored_values(redis_server)
        assert (await client.get("/me")).status_code == 200
        after = stored_values(redis_server)
    finally:
        issuer.token_ttl_seconds = 3600
    assert len(after_sign_in) == 1  # a new sign-in replaced the browser's old session
    assert before.keys() != after_sign_in.keys()
    before = after_sign_in
    assert issuer.calls["token:refresh_token"] == 1
    assert before.keys() == after.keys()
    assert before != after


# -- Redis outages and the fleet ---------------------------------------------------------


@pytest.fixture
def proxy(redis_server: RedisServer) -> Iterator[RedisProxy]:
    with RedisProxy(redis_server.port) as running:
        yield running


def worker_app(issuer: LocalIssuer, redis_url: str | None, **overrides: Any) -> FastAPI:
    """An app keeping sessions in Redis (cookies without ``redis_url``), with
    ``POST /end-session``: the session manager's sign-out (``BrowserSessions.end``)
    as a route."""
    if redis_url is not None:
        overrides.update(session_store="redis", redis_url=redis_url)
    app = make_app(issuer, **overrides)
    auth: CognitoAuth[CognitoUser] = app.state.auth

    @app.post("/end-session")
    async def end_session(request: Request) -> JSONResponse:
        assert auth.sessions is not None
        context = session_context(request.scope)
        assert context is not None
        ended = await auth.sessions.end(context)
        assert ended is not None
        return JSONResponse({"deleted": ended.deleted, "shared": ended.shared})

    return app


Workers = Callable[..., AbstractAsyncContextManager[tuple[httpx.AsyncClient, ...]]]


@pytest.fixture
def workers(issuer: LocalIssuer) -> Workers:
    """``workers(redis_url, **settings)``: two running worker apps, a browser for each."""

    @asynccontextmanager
    async def start(
        redis_url: str, **overrides: Any
    ) -> AsyncIterator[tuple[httpx.AsyncClient, ...]]:
        async with AsyncExitStack() as stack:
            yield tuple(
                [
                    await stack.enter_async_context(
                        browser(worker_app(issuer, redis_url, **overrides))
                    )
                    for _ in range(2)
                ]
            )

    return start


def cookie_of(client: httpx.AsyncClient) -> dict[str, str]:
    """The browser's session cookie as a header another worker's client can send."""
    return {"cookie": "; ".join(f"{k}={v}" for k, v in session_cookies(client).items())}


def auth_of(client: httpx.AsyncClient) -> CognitoAuth[Any]:
    transport = client._transport
    assert isinstance(transport, httpx.ASGITransport)
    auth: CognitoAuth[Any] = transport.app.state.auth  # type: ignore[attr-defined]
    return auth


async def eventually(check: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_a_session_read_during_a_redis_outage_answers_503_and_keeps_the_cookie(
    issuer: LocalIssuer, proxy: RedisProxy, workers: Workers
) -> None:
    async with workers(proxy.url) as (a, b):
        await sign_in(a, issuer)  # on worker a; worker b never held it
        cookie = cookie_of(a)
        proxy.cut()
        during = await b.get("/me", headers=cookie)
        page = await b.get("/page", headers={**cookie, "accept": "text/html"})
        proxy.mend()
        after = await b.get("/me", headers=cookie)

    assert during.status_code == 503
    assert during.json()["code"] == "sessions_unavailable"
    assert during.headers["retry-after"] == "1"
    assert set_cookies(during) == []  # the cookie is kept: no silent sign-out
    assert page.status_code == 503  # not a redirect to sign in again
    assert set_cookies(page) == []
    assert after.status_code == 200


async def test_a_sign_in_during_a_redis_outage_answers_503_not_500(
    issuer: LocalIssuer, proxy: RedisProxy, workers: Workers
) -> None:
    async with workers(proxy.url) as (a, _):
        proxy.cut()
        response = await sign_in(a, issuer)

    assert response.status_code == 503
    assert response.json()["code"] == "sessions_unavailable"
    assert session_cookies(a) == {}


async def test_a_sign_out_during_a_redis_outage_leaves_the_session_dead_on_every_worker(
    issuer: LocalIssuer, proxy: RedisProxy, redis_server: RedisServer, workers: Workers
) -> None:
    async with workers(proxy.url) as (a, b):
        await sign_in(a, issuer)
        cookie = cookie_of(a)
        issuer.calls.clear()
        proxy.cut()
        ended = await b.post("/end-session", headers={**cookie, "origin": APP})
        refused_here = await b.get("/me", headers=cookie)
        proxy.mend()
        sid = next(iter(auth_of(b).revocations.snapshot("sid")))
        # written back by b's mirror when Redis returns, then merged by a's
        await eventually(lambda: auth_of(a).revocations.session_id_revoked(sid))
        on_a = await a.get("/me", headers=cookie)
        on_b = await b.get("/me", headers=cookie)

    assert ended.status_code == 200
    assert ended.json()["deleted"] is False  # Redis down: deleted when next seen
    assert ended.json()["shared"] is not True  # written back when Redis returns
    assert any(c.startswith("fcg_session=;") for c in set_cookies(ended))
    assert refused_here.status_code == 401  # this worker at once, Redis still down
    assert on_a.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(on_a))
    assert on_b.status_code == 401
    assert stored_values(redis_server) == {}  # deleted when next seen
    assert issuer.calls["revoke"] == 1  # and its refresh token revoked at Cognito


async def test_logout_during_a_redis_outage_signs_out_and_the_session_stays_dead_after_it(
    issuer: LocalIssuer, proxy: RedisProxy, redis_server: RedisServer, workers: Workers
) -> None:
    async with workers(proxy.url) as (a, b):
        await sign_in(a, issuer)
        cookie = cookie_of(a)
        proxy.cut()
        everywhere = await b.post("/auth/logout?everywhere=true", headers={**cookie, "origin": APP})
        logout = await b.post("/auth/logout", headers={**cookie, "origin": APP})
        proxy.mend()
        sid = next(iter(auth_of(b).revocations.snapshot("sid")))
        await eventually(lambda: auth_of(a).revocations.session_id_revoked(sid))
        on_a = await a.get("/me", headers=cookie)

    assert logout.status_code == 303  # revoked by its id: a real sign-out, not a pretence
    assert any(c.startswith("fcg_session=;") for c in set_cookies(logout))
    # everywhere needs the session's tokens, which cannot be read: an error, cookie kept
    assert everywhere.status_code == 503
    assert everywhere.json()["code"] == "sessions_unavailable"
    assert set_cookies(everywhere) == []
    assert on_a.status_code == 401
    assert stored_values(redis_server) == {}


async def refresh_held_at_cognito(
    issuer: LocalIssuer, client: httpx.AsyncClient, cookie: dict[str, str]
) -> asyncio.Task[httpx.Response]:
    """A request on ``client`` whose session refresh Cognito holds for 3 s."""
    issuer.calls.clear()
    issuer.fail("token", status=None, delay=3)
    refreshing = asyncio.create_task(client.get("/me", headers=cookie))
    await eventually(lambda: issuer.calls["token:refresh_token"] == 1)
    issuer.clear_faults()
    return refreshing


@pytest.mark.parametrize("token_use", ["access", "id"])
async def test_a_refresh_finishing_after_sign_out_never_brings_the_session_back(
    issuer: LocalIssuer, redis_server: RedisServer, workers: Workers, token_use: str
) -> None:
    issuer.token_ttl_seconds = 30  # inside the refresh margin, still valid
    async with workers(redis_server.url, token_use=token_use) as (a, b):
        await sign_in(a, issuer)
        cookie = cookie_of(a)
        refreshing = await refresh_held_at_cognito(issuer, a, cookie)
        signed_out = await b.post("/auth/logout", headers={**cookie, "origin": APP})
        assert not refreshing.done()  # the sign-out completed while the refresh was held
        late = await refreshing
        after = [await client.get("/me", headers=cookie) for client in (a, b)]

    assert signed_out.status_code == 303
    assert late.status_code == 401
    assert stored_values(redis_server) == {}
    assert [response.status_code for response in after] == [401, 401]


async def test_a_refresh_finishing_after_the_stored_session_was_deleted_does_not_restore_it(
    issuer: LocalIssuer, redis_server: RedisServer, workers: Workers
) -> None:
    issuer.token_ttl_seconds = 30
    async with workers(redis_server.url) as (a, _):
        await sign_in(a, issuer)
        cookie = cookie_of(a)
        refreshing = await refresh_held_at_cognito(issuer, a, cookie)
        redis.Redis.from_url(redis_server.url).delete(*stored_values(redis_server))
        late = await refreshing
        after = await a.get("/me", headers=cookie)

    assert late.status_code == 401
    assert stored_values(redis_server) == {}
    assert after.status_code == 401


async def test_a_copied_cookie_of_a_cookie_session_ended_by_end_is_refused(
    issuer: LocalIssuer,
) -> None:
    async with browser(worker_app(issuer, None)) as client:
        await sign_in(client, issuer)
        cookie = cookie_of(client)
        ended = await client.post("/end-session", headers={**cookie, "origin": APP})
        replayed = await client.get("/me", headers=cookie)

    assert ended.json() == {"deleted": True, "shared": None}
    assert any(c.startswith("fcg_session=;") for c in set_cookies(ended))
    assert replayed.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(replayed))
