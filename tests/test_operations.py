"""Readiness and health (DESIGN §16): ``auth.ready()``, ``auth.health()`` and the
example app's ``GET /ready``.

Ready means every pool's signing keys are usable; Redis is reported by
``health()`` but never makes the service unready.
"""

from __future__ import annotations

import asyncio

import httpx

from example_app.app import create_app
from fastapi_cognito_guard import CognitoAuth
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import running
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture


async def test_an_unready_probe_starts_the_key_fetch_and_a_later_one_is_ready(
    issuer: LocalIssuer,
) -> None:
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        auth = CognitoAuth(issuer.settings(), http_client=http)
        assert not auth.ready()  # no keys yet: a background fetch starts
        for _ in range(100):
            if auth.ready():
                break
            await asyncio.sleep(0.01)
        assert auth.ready()
        assert auth.health()["keys"] == {issuer.user_pool_id: {"usable": True}}
        await auth.aclose()


async def test_example_app_ready_answers_503_while_keys_cannot_be_fetched(
    issuer: LocalIssuer, closed_jwks_url: str
) -> None:
    app = create_app(issuer.settings(jwks_url=closed_jwks_url))
    async with running(app) as client:
        answer = await client.get("/ready")
        assert answer.status_code == 503
        assert answer.json() == {"ready": False}
        assert (await client.get("/health")).status_code == 200  # liveness is not readiness


async def test_example_app_ready_answers_200_with_keys(issuer: LocalIssuer) -> None:
    with issuer.serve():
        app = create_app(issuer.settings())
        async with running(app) as client:
            answer = await client.get("/ready")
    assert answer.status_code == 200
    assert answer.json() == {"ready": True}


async def test_health_reports_redis_down_while_ready_stays_true(
    issuer: LocalIssuer,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    auth = CognitoAuth(issuer.settings(redis_url=redis_server.url))
    auth.verifier.cache_jwks(issuer.jwks())
    await auth.start()
    try:
        assert auth.health()["redis"]["connected"] is True
        redis_server.stop()
        await auth.revoke_session("sign-in-1")  # the write fails: Redis is noticed down
        for _ in range(100):
            if not auth.health()["redis"]["connected"]:
                break
            await asyncio.sleep(0.02)
        health = auth.health()
        assert health["redis"]["connected"] is False
        assert health["status"] == "degraded"
        assert health["revocations"] == 1
        assert auth.ready()
    finally:
        await auth.aclose()


def test_health_without_redis_says_it_is_not_configured(issuer: LocalIssuer) -> None:
    health = CognitoAuth(issuer.settings()).health()
    assert health["redis"] == {"configured": False}
    assert health["identity_pools"] == {issuer.user_pool_id: {"configured": False, "active": False}}
