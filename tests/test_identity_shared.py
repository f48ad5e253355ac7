"""Identity-pool state in a real Redis (DESIGN §9, §15).

- Every key the identity client writes under the prefix has a TTL, and the
  credentials in Redis are sealed: no access key id, secret key or session token
  in clear (users and guests alike).
- With ``redis_url`` but no ``session_secret``, credentials stay in each process,
  and one warning says why at start-up (when ``CognitoAuth`` is built), not on the
  first request.

Real HTTP to ``tests.identity_server.IdentityServer`` and a ``JWKSServer`` on
127.0.0.1; a real ``redis-server`` per test (no persistence).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import Depends, FastAPI
from pydantic import SecretStr
from redis import Redis

from fastapi_cognito_guard import AwsCredentials, CognitoAuth, CognitoSettings, CognitoUser
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, running
from tests.identity_server import ACCESS_KEY_ID, SECRET_KEY, SESSION_TOKEN, IdentityServer
from tests.jwks_server import JWKSServer
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

IDENTITY_POOL_ID = "eu-central-1:11111111-2222-3333-4444-555555555555"
SESSION_SECRET = "a-session-secret-of-at-least-32-characters!"
PREFIX = "idshared:"
WARNING = "COGNITO_SESSION_SECRET"


@pytest.fixture
def settings(
    issuer: LocalIssuer,
    redis_server: RedisServer,  # noqa: F811
) -> Iterator[CognitoSettings]:
    with JWKSServer(issuer) as jwks, IdentityServer() as idp:
        yield jwks.settings(
            token_use="id",
            identity_pool_id=IDENTITY_POOL_ID,
            identity_endpoint=idp.url,
            redis_url=redis_server.url,
            redis_prefix=PREFIX,
        )


def aws_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/aws")
    async def aws(creds: AwsCredentials = Depends(auth.aws_credentials)) -> str:
        return creds.identity_id

    @app.get("/guest")
    async def guest(creds: AwsCredentials = Depends(auth.guest_credentials)) -> str:
        return creds.identity_id

    return app


async def serve_a_user_and_a_guest(auth: CognitoAuth[CognitoUser], issuer: LocalIssuer) -> None:
    token = issuer.id_token(f"user-{uuid.uuid4().hex[:8]}")
    async with running(aws_app(auth)) as client:
        for _ in range(2):
            assert (await client.get("/aws", headers=bearer(token))).status_code == 200
            assert (await client.get("/guest")).status_code == 200


def stored(redis: RedisServer) -> dict[str, tuple[bytes, int]]:
    """Every key in Redis: its value (strings only) and its TTL in milliseconds."""
    with Redis.from_url(redis.url) as client:
        keys = [key.decode() for key in client.scan_iter("*")]
        return {
            key: (client.get(key) if client.type(key) == b"string" else b"", client.pttl(key))
            for key in keys
        }


def warnings_about_the_secret(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        record
        for record in caplog.records
        if record.levelno == logging.WARNING and WARNING in record.getMessage()
    ]


async def test_every_identity_key_in_redis_has_a_ttl_and_credentials_are_sealed(
    settings: CognitoSettings,
    issuer: LocalIssuer,
    redis_server: RedisServer,  # noqa: F811
) -> None:
    sealed = settings.model_copy(update={"session_secret": [SecretStr(SESSION_SECRET)]})

    await serve_a_user_and_a_guest(CognitoAuth(sealed), issuer)

    keys = stored(redis_server)
    kinds = {key.split(":")[2] for key in keys if key.startswith(f"{PREFIX}identity:")}
    assert kinds == {"identity-id", "credentials", "guest-credentials"}
    for key, (value, ttl) in keys.items():
        assert key.startswith(PREFIX)
        assert ttl > 0, key
        for secret in (ACCESS_KEY_ID, SECRET_KEY, SESSION_TOKEN):
            assert secret.encode() not in value, key


async def test_without_a_session_secret_one_start_up_warning_says_credentials_stay_per_process(
    settings: CognitoSettings,
    issuer: LocalIssuer,
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(settings)
    [warning] = warnings_about_the_secret(caplog)  # before any request
    assert IDENTITY_POOL_ID in warning.getMessage()

    await serve_a_user_and_a_guest(auth, issuer)

    assert warnings_about_the_secret(caplog) == [warning]
    assert all(":credentials:" not in key for key in stored(redis_server))


@pytest.mark.parametrize(
    "update",
    [
        {"session_secret": [SecretStr(SESSION_SECRET)]},
        {"redis_url": None},
        {"identity_pool_id": None},
    ],
    ids=["with_a_session_secret", "without_redis", "without_an_identity_pool"],
)
def test_no_warning_when_credentials_can_be_shared_or_nothing_is_shared(
    settings: CognitoSettings, caplog: pytest.LogCaptureFixture, update: dict[str, Any]
) -> None:
    CognitoAuth(settings.model_copy(update=update))

    assert warnings_about_the_secret(caplog) == []
