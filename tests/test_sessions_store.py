"""Server-side sessions (``COGNITO_SESSION_STORE=redis``) on a real ``redis-server``:
the cookie holds only a sealed id, Redis holds only sealed tokens, deleting the
entry signs the browser out, and sign-out deletes it."""

from __future__ import annotations

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


def make_server_side_app(issuer: LocalIssuer, server: RedisServer):  # type: ignore[no-untyped-def]
    return make_app(issuer, session_store="redis", redis_url=server.url)


async def test_cookie_holds_an_id_and_redis_only_sealed_tokens(
    cognito_issuer_session: LocalIssuer, redis_server: RedisServer
) -> None:
    issuer = cognito_issuer_session
    async with browser(make_server_side_app(issuer, redis_server)) as client:
        await sign_in(client, issuer)
        cookie = "".join(session_cookies(client).values())
        assert len(cookie) < 200
        assert (await client.get("/me")).json() == {"username": "alice"}
    stored = stored_values(redis_server)
    assert len(stored) == 1
    assert not any(JWT.search(value.decode("latin-1")) for value in stored.values())


async def test_deleting_the_stored_session_signs_the_browser_out(
    cognito_issuer_session: LocalIssuer, redis_server: RedisServer
) -> None:
    issuer = cognito_issuer_session
    async with browser(make_server_side_app(issuer, redis_server)) as client:
        await sign_in(client, issuer)
        redis.Redis.from_url(redis_server.url).delete(*stored_values(redis_server))
        response = await client.get("/me")
    assert response.status_code == 401
    assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


async def test_sign_out_deletes_the_stored_session(
    cognito_issuer_session: LocalIssuer, redis_server: RedisServer
) -> None:
    issuer = cognito_issuer_session
    async with browser(make_server_side_app(issuer, redis_server)) as client:
        await sign_in(client, issuer)
        assert stored_values(redis_server)
        response = await client.post("/auth/logout", headers={"origin": APP})
    assert response.status_code == 303
    assert stored_values(redis_server) == {}


async def test_a_refresh_rewrites_the_stored_session(
    cognito_issuer_session: LocalIssuer, redis_server: RedisServer
) -> None:
    issuer = cognito_issuer_session
    issuer.token_ttl_seconds = 30
    try:
        async with browser(make_server_side_app(issuer, redis_server)) as client:
            await sign_in(client, issuer)
            before = stored_values(redis_server)
            issuer.calls.clear()
            assert (await client.get("/me")).status_code == 200
            after = stored_values(redis_server)
    finally:
        issuer.token_ttl_seconds = 3600
    assert issuer.calls["token:refresh_token"] == 1
    assert before.keys() == after.keys()
    assert before != after
