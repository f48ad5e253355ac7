"""Revoked users and sessions (DESIGN §14) lose their cached identity-pool credentials (§9).

Every exchange is real HTTP to ``tests.identity_server.IdentityServer`` on 127.0.0.1,
which counts ``GetId`` / ``GetCredentialsForIdentity``; the keys come from a loopback
``JWKSServer``. Shared state is a real ``redis-server`` (no persistence) and two
``CognitoAuth`` instances stand for two processes.

- A revoked user's (or session's) credentials are never served again: the next
  request with a new, valid token of that user makes a fresh exchange, and the
  revoked token gets 401 ``revoked``.
- An exchange in flight when the revocation lands is not handed to a later request.
- ``IdentityPoolClient.drop_revoked`` (the list's listener) drops entries at once.
- Across processes: a revocation reaching the other process through Redis drops the
  shared credentials there too, and their sealed copy leaves Redis.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from pydantic import SecretStr
from redis.asyncio import Redis

from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    CognitoVerifier,
    IdentityPoolClient,
    RevocationList,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, claims_of, running
from tests.identity_server import GET_CREDENTIALS, IdentityServer
from tests.jwks_server import JWKSServer
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

IDENTITY_POOL_ID = "eu-central-1:11111111-2222-3333-4444-555555555555"
SESSION_SECRET = "a-session-secret-of-at-least-32-characters!"
PREFIX = "idrev:"


@dataclass
class Pool:
    issuer: LocalIssuer
    idp: IdentityServer
    settings: CognitoSettings

    def token(self, sub: str, **claims: Any) -> str:
        return self.issuer.id_token(f"user-{sub[:8]}", sub=sub, **claims)


@pytest.fixture
def pool(issuer: LocalIssuer) -> Iterator[Pool]:
    with JWKSServer(issuer) as jwks, IdentityServer(slow_seconds=0.5) as idp:
        settings = jwks.settings(
            token_use="id", identity_pool_id=IDENTITY_POOL_ID, identity_endpoint=idp.url
        )
        yield Pool(issuer, idp, settings)
        assert idp.errors == []


def aws_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/aws")
    async def aws(creds: AwsCredentials = Depends(auth.aws_credentials)) -> dict[str, str]:
        return {"identity_id": creds.identity_id}

    return app


@pytest.fixture
async def served(pool: Pool) -> AsyncIterator[tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]]:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(pool.settings)
    async with running(aws_app(auth)) as client:
        yield auth, client


def revoked_at(auth: CognitoAuth[CognitoUser], sub: str) -> int:
    return auth.revocations.snapshot("user")[sub]


async def assert_revoked(client: httpx.AsyncClient, token: str) -> None:
    answer = await client.get("/aws", headers=bearer(token))
    assert answer.status_code == 401
    assert answer.json()["code"] == "revoked"


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> None:
    """Poll ``check`` until true; fail after ``within`` seconds."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < within, "condition not reached in time"
        await asyncio.sleep(0.01)


def now(condition: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return condition()

    return check


# -- one process -------------------------------------------------------------------------


async def test_a_revoked_users_next_sign_in_gets_a_fresh_exchange_not_the_cached_credentials(
    pool: Pool, served: tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]
) -> None:
    auth, client = served
    sub = str(uuid.uuid4())
    before = pool.token(sub)
    for _ in range(2):
        assert (await client.get("/aws", headers=bearer(before))).status_code == 200
    assert pool.idp.counts() == (1, 1)

    await auth.revoke_user(sub)
    after = pool.token(sub, auth_time=revoked_at(auth, sub) + 1)

    await assert_revoked(client, before)
    assert (await client.get("/aws", headers=bearer(after))).status_code == 200
    assert (await client.get("/aws", headers=bearer(after))).status_code == 200
    assert pool.idp.counts() == (1, 2)  # the identity id is kept; credentials are not


async def test_a_revoked_sessions_credentials_are_not_served_to_another_session(
    pool: Pool, served: tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]
) -> None:
    auth, client = served
    sub = str(uuid.uuid4())
    phone = pool.token(sub, origin_jti="phone-sign-in")
    laptop = pool.token(sub, origin_jti="laptop-sign-in")
    assert (await client.get("/aws", headers=bearer(phone))).status_code == 200

    await auth.revoke_session("phone-sign-in")

    await assert_revoked(client, phone)
    for _ in range(2):
        assert (await client.get("/aws", headers=bearer(laptop))).status_code == 200
    assert pool.idp.counts() == (1, 2)


async def test_an_exchange_in_flight_at_the_revocation_is_not_served_to_a_later_sign_in(
    pool: Pool, served: tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]
) -> None:
    auth, client = served
    sub = str(uuid.uuid4())
    pool.idp.fault_action = GET_CREDENTIALS
    pool.idp.fault = "hang"  # the first exchange answers after slow_seconds
    first = asyncio.create_task(client.get("/aws", headers=bearer(pool.token(sub))))
    await eventually(now(lambda: pool.idp.count(GET_CREDENTIALS) == 1))
    pool.idp.fault = None

    await auth.revoke_user(sub)
    later = await client.get(
        "/aws", headers=bearer(pool.token(sub, auth_time=revoked_at(auth, sub) + 1))
    )

    assert later.status_code == 200
    assert (await first).status_code == 401  # its token was revoked before it was served
    assert pool.idp.counts() == (1, 2)


@pytest.mark.parametrize(("kind", "claim"), [("user", "sub"), ("session", "origin_jti")])
async def test_the_listener_drops_the_credentials_of_a_revoked_user_or_session_at_once(
    pool: Pool, kind: str, claim: str
) -> None:
    verifier = CognitoVerifier(pool.settings)  # consults no list: only the listener acts
    client = IdentityPoolClient(pool.settings, verifier=verifier)
    revocations = RevocationList(3600)
    revocations.listeners.append(client.drop_revoked)
    sub = str(uuid.uuid4())
    token = pool.token(sub, origin_jti=f"sign-in-{sub}")
    try:
        await client.credentials_for(token)
        await client.credentials_for(token)
        getattr(revocations, f"revoke_{kind}")({"sub": sub, "origin_jti": f"sign-in-{sub}"}[claim])
        await client.credentials_for(token)
    finally:
        await client.aclose()

    assert pool.idp.counts() == (1, 2)


async def test_the_listener_drops_the_credentials_of_a_sign_in_revoked_by_its_key(
    pool: Pool,
) -> None:
    verifier = CognitoVerifier(pool.settings)  # consults no list: only the listener acts
    client = IdentityPoolClient(pool.settings, verifier=verifier)
    revocations = RevocationList(3600)
    revocations.listeners.append(client.drop_revoked)
    sub, signed_in = str(uuid.uuid4()), int(time.time()) - 60
    payload = claims_of(pool.token(sub, auth_time=signed_in))
    del payload["origin_jti"]  # an app client with token revocation off
    token = pool.issuer.sign(payload)
    try:
        await client.credentials_for(token)
        revocations.revoke_sign_in(f"{sub}:{signed_in - 1}")  # another sign-in: kept
        await client.credentials_for(token)
        revocations.revoke_sign_in(f"{sub}:{signed_in}")
        await client.credentials_for(token)
    finally:
        await client.aclose()

    assert pool.idp.counts() == (1, 2)


async def test_the_listener_leaves_other_users_and_sessions_alone(pool: Pool) -> None:
    client = IdentityPoolClient(pool.settings, verifier=CognitoVerifier(pool.settings))
    revocations = RevocationList(3600)
    revocations.listeners.append(client.drop_revoked)
    token = pool.token(str(uuid.uuid4()), origin_jti="kept-sign-in")
    try:
        await client.credentials_for(token)
        revocations.revoke_user(str(uuid.uuid4()))
        revocations.revoke_session("another-sign-in")
        await client.credentials_for(token)
    finally:
        await client.aclose()

    assert pool.idp.counts() == (1, 1)


# -- two processes, one Redis ------------------------------------------------------------


def shared_settings(pool: Pool, redis: RedisServer) -> CognitoSettings:
    return pool.settings.model_copy(
        update={
            "redis_url": redis.url,
            "redis_prefix": PREFIX,
            "session_secret": [SecretStr(SESSION_SECRET)],
        }
    )


def no_credentials_in(redis: RedisServer) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        async with Redis.from_url(redis.url) as client:
            return not [key async for key in client.scan_iter(f"{PREFIX}identity:credentials:*")]

    return check


async def test_a_revocation_from_another_process_drops_the_shared_credentials_there_and_in_redis(
    pool: Pool,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    settings = shared_settings(pool, redis_server)
    auth_a: CognitoAuth[CognitoUser] = CognitoAuth(settings)
    auth_b: CognitoAuth[CognitoUser] = CognitoAuth(settings)
    sub = str(uuid.uuid4())
    before = pool.token(sub)
    async with running(aws_app(auth_a)) as a, running(aws_app(auth_b)) as b:
        assert (await a.get("/aws", headers=bearer(before))).status_code == 200
        assert (await b.get("/aws", headers=bearer(before))).status_code == 200
        assert pool.idp.counts() == (1, 1)  # B found A's sealed credentials in Redis
        assert not await no_credentials_in(redis_server)()

        await auth_a.revoke_user(sub)
        await eventually(now(lambda: len(auth_b.revocations) == 1))
        await eventually(no_credentials_in(redis_server))  # the listeners deleted the sealed copy
        after = pool.token(sub, auth_time=revoked_at(auth_a, sub) + 1)

        await assert_revoked(b, before)
        assert (await b.get("/aws", headers=bearer(after))).status_code == 200
        assert (await a.get("/aws", headers=bearer(after))).status_code == 200

    assert pool.idp.counts() == (1, 2)
