"""Refreshing a browser session against the local hosted UI over real HTTP: once per
session however many requests arrive together, rotation-aware, persisted on
every kind of response, and ``invalid_grant`` ends the session."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
import redis

from fastapi_cognito_guard.testing import LocalIssuer
from tests import redis_server as _redis
from tests.example_server import free_port
from tests.redis_server import RedisServer
from tests.sessions_support import (
    JWT,
    browser,
    make_app,
    open_session,
    session_cookies,
    set_cookies,
    sign_in,
)
from tests.uvicorn_server import uvicorn_server

redis_server = _redis.redis_server  # the fixture: a real redis-server per test


@pytest.fixture
def issuer(cognito_issuer_session: LocalIssuer) -> Iterator[LocalIssuer]:
    """Tokens that live 30 s: inside the 60 s margin, so every request refreshes."""
    cognito_issuer_session.token_ttl_seconds = 30
    try:
        yield cognito_issuer_session
    finally:
        cognito_issuer_session.token_ttl_seconds = 3600


async def test_twenty_concurrent_requests_of_an_expiring_session_refresh_once(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        before = open_session(next(iter(session_cookies(client).values())))
        issuer.calls.clear()
        responses = await asyncio.gather(*(client.get("/me") for _ in range(20)))
    assert [r.status_code for r in responses] == [200] * 20
    assert issuer.calls["token:refresh_token"] == 1
    renewed = {
        open_session(c.split(";")[0].split("=", 1)[1]) for r in responses for c in set_cookies(r)
    }
    assert len(renewed) == 1
    assert before not in renewed


async def test_a_session_that_is_not_expiring_is_not_refreshed(
    cognito_issuer_session: LocalIssuer,
) -> None:
    async with browser(make_app(cognito_issuer_session)) as client:
        await sign_in(client, cognito_issuer_session)
        cognito_issuer_session.calls.clear()
        response = await client.get("/me")
    assert response.status_code == 200
    assert cognito_issuer_session.calls["token"] == 0
    assert set_cookies(response) == []


async def test_rotation_replaces_the_refresh_token(issuer: LocalIssuer) -> None:
    issuer.rotate_refresh_tokens = True
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        old = open_session(next(iter(session_cookies(client).values())))
        assert (await client.get("/me")).status_code == 200
        new = open_session(next(iter(session_cookies(client).values())))
        assert old is not None
        assert new is not None
        assert new.refresh_token != old.refresh_token
        assert old.refresh_token is not None
        assert not issuer.refresh_token_is_active(old.refresh_token)
        assert new.refresh_token is not None
        assert issuer.refresh_token_is_active(new.refresh_token)
        assert (new.sid, new.started_at) == (old.sid, old.started_at)
        assert (await client.get("/me")).status_code == 200  # the new one works in turn


async def test_refreshed_tokens_keep_the_session_signed_in(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        old = open_session(next(iter(session_cookies(client).values())))
        assert (await client.get("/me")).json() == {"username": "alice"}
        new = open_session(next(iter(session_cookies(client).values())))
    assert old is not None
    assert new is not None
    assert new.access_token != old.access_token
    assert new.id_token != old.id_token  # a refreshed ID token has no nonce: still accepted


@pytest.mark.parametrize("path", ["/me", "/plain", "/stream", "/optional"])
async def test_the_refreshed_cookie_reaches_the_browser_whatever_the_route_returns(
    issuer: LocalIssuer, path: str
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.get(path)
    assert response.status_code == 200
    assert any(c.startswith("fcg_session=") and "Max-Age=0" not in c for c in set_cookies(response))


async def test_invalid_grant_ends_the_session(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        issuer.revoke_sessions("alice")
        response = await client.get("/me")
        assert response.status_code == 401
        assert any(c.startswith("fcg_session=;") for c in set_cookies(response))
        assert session_cookies(client) == {}


async def test_invalid_grant_sends_login_required_navigations_to_sign_in(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        issuer.revoke_sessions("alice")
        response = await client.get("/page", headers={"accept": "text/html"})
    assert response.status_code == 302
    assert response.headers["location"].startswith("/auth/login?next=")
    assert any(c.startswith("fcg_session=;") for c in set_cookies(response))


async def test_unreachable_refresh_keeps_a_still_valid_session(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        issuer.fail("token", status=500)
        response = await client.get("/me")
    assert response.status_code == 200
    assert set_cookies(response) == []


async def test_unreachable_refresh_of_an_expired_session_is_a_503(
    cognito_issuer_session: LocalIssuer,
) -> None:
    issuer = cognito_issuer_session
    issuer.token_ttl_seconds = -60  # already expired at sign-in's end
    try:
        async with browser(make_app(issuer, leeway_seconds=120)) as client:
            await sign_in(client, issuer)
            issuer.fail("token", status=503)
            response = await client.get("/me")
    finally:
        issuer.token_ttl_seconds = 3600
    assert response.status_code == 503
    assert response.json()["code"] == "oauth_unavailable"
    assert response.headers["retry-after"]


# -- one refresh per session across the fleet (redis_url) ----------------------------------


def cookie_header(cookies: dict[str, str]) -> dict[str, str]:
    return {"cookie": "; ".join(f"{name}={value}" for name, value in cookies.items())}


async def test_twenty_requests_across_two_workers_spend_one_rotated_refresh_token(
    cognito_issuer_session: LocalIssuer, redis_server: RedisServer
) -> None:
    issuer = cognito_issuer_session
    issuer.rotate_refresh_tokens = True
    issuer.token_ttl_seconds = -60  # the access token has expired when the burst comes
    apps = [make_app(issuer, redis_url=redis_server.url, leeway_seconds=120) for _ in range(2)]
    try:
        with uvicorn_server(apps[0]) as (url_a, _), uvicorn_server(apps[1]) as (url_b, _):
            async with httpx.AsyncClient(base_url=url_a) as first:
                await sign_in(first, issuer)
                cookie = cookie_header(session_cookies(first))
            issuer.token_ttl_seconds = 3600
            issuer.calls.clear()
            async with httpx.AsyncClient() as http:
                responses = await asyncio.gather(
                    *(http.get(f"{(url_a, url_b)[i % 2]}/me", headers=cookie) for i in range(20))
                )
                written = [
                    c.split(";")[0]
                    for r in responses
                    for c in set_cookies(r)
                    if "Max-Age=0" not in c
                ]
                renewed = {open_session(value.split("=", 1)[1]) for value in written}
                assert len(renewed) == 1  # every worker handed out the one refreshed session
                again = cookie_header(dict([written[0].split("=", 1)]))
                later = [await http.get(f"{url}/me", headers=again) for url in (url_a, url_b)]
        shared = redis.Redis.from_url(redis_server.url)
        results = [shared.get(key) or b"" for key in shared.scan_iter("fcg:refresh:*")]
        shared.close()
    finally:
        issuer.token_ttl_seconds = 3600

    assert [r.status_code for r in responses] == [200] * 20
    assert issuer.calls["token:refresh_token"] == 1
    assert [r.status_code for r in later] == [200, 200]  # still signed in, on both
    assert issuer.calls["token:refresh_token"] == 1
    assert len(results) == 1  # the new tokens reached the other worker through Redis,
    assert not JWT.search(results[0].decode("latin-1"))  # sealed


async def test_with_redis_unreachable_a_cookie_session_still_refreshes_once_per_process(
    issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    async with browser(make_app(issuer, redis_url=nowhere)) as client:
        await sign_in(client, issuer)
        issuer.calls.clear()
        responses = await asyncio.gather(*(client.get("/me") for _ in range(5)))
        await sign_in(client, issuer)  # a second session, refreshed in the same incident
        assert (await client.get("/me")).status_code == 200
    assert [r.status_code for r in responses] == [200] * 5
    assert issuer.calls["token:refresh_token"] == 2
    assert caplog.text.count("not coordinated across processes: Redis unreachable") == 1
