"""Server-side sessions (``COGNITO_SESSION_STORE=redis``) on a real ``redis-server``:
the cookie holds only a sealed id, Redis holds only sealed tokens, deleting the
entry signs the browser out, and sign-out deletes it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import redis

from fastapi_cognito_guard.testing import LocalIssuer
from tests import redis_server as _redis
from tests.redis_server import RedisServer
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
