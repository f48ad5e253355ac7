"""Sign-out across processes: two real example apps sharing one real Redis.

Two ``python -m example_app`` processes (uvicorn, different ports) trust one
moto user pool (its JWKS for keys, its ``GetUser``/``GlobalSignOut`` as Cognito)
and share one ``redis-server``. A sign-out on A must reach B within one second
of the call's return (polled, bounded; the measured delay is printed), and the
shared list must survive Redis being killed and coming back empty.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.example_server import REPO_ROOT, ExampleServer, clean_environment
from tests.identity_server import IdentityServer
from tests.moto_cognito import CognitoPool, boto_client, create_pool, decode_unverified
from tests.redis_server import RedisServer

PREFIX = "shared-test:"


@pytest.fixture(scope="module")
def pool(moto_server: str) -> CognitoPool:
    """A moto pool in us-east-1, where moto's unsigned GlobalSignOut/GetUser look."""
    return create_pool(boto_client("cognito-idp", moto_server, "us-east-1"), moto_server)


@pytest.fixture(scope="module")
def redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer.start(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def identity() -> Iterator[IdentityServer]:
    """A counting identity-pool endpoint both apps use."""
    with IdentityServer() as server:
        yield server


def app_environment(
    pool: CognitoPool, redis: RedisServer, identity: IdentityServer
) -> dict[str, str]:
    return {
        "COGNITO_IDENTITY_POOL_ID": "us-east-1:00000000-0000-0000-0000-000000000000",
        "COGNITO_IDENTITY_ENDPOINT": identity.url,
        "COGNITO_SESSION_SECRET": "a-test-session-secret-of-forty-characters",
        "COGNITO_USER_POOL_ID": pool.pool_id,
        "COGNITO_CLIENT_IDS": pool.client_id,
        "COGNITO_JWKS_URL": pool.jwks_url,
        "COGNITO_IDP_ENDPOINT": pool.moto_url + "/",
        "COGNITO_REDIS_URL": redis.url,
        "COGNITO_REDIS_PREFIX": PREFIX,
    }


@pytest.fixture(scope="module")
def apps(
    pool: CognitoPool,
    redis: RedisServer,
    identity: IdentityServer,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ExampleServer, ExampleServer]]:
    logs = tmp_path_factory.mktemp("apps")
    env = app_environment(pool, redis, identity)
    a = ExampleServer.start(logs, env)
    try:
        b = ExampleServer.start(logs, env)
    except BaseException:
        a.stop()
        raise
    yield a, b
    a.stop()
    b.stop()


def me(server: ExampleServer, token: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}/me", headers={"Authorization": f"Bearer {token}"})


def logout(server: ExampleServer, token: str, *, everywhere: bool = False) -> httpx.Response:
    return httpx.post(
        f"{server.base_url}/auth/logout",
        params={"everywhere": "true"} if everywhere else None,
        headers={"Authorization": f"Bearer {token}"},
    )


def assert_revoked(answer: httpx.Response) -> None:
    assert answer.status_code == 401, answer.text
    assert answer.json()["code"] == "revoked"


def seconds_until_revoked(server: ExampleServer, token: str, within: float = 1.0) -> float:
    """Poll until ``server`` rejects ``token`` as revoked; fail after ``within`` seconds."""
    started = time.monotonic()
    while True:
        answer = me(server, token)
        assert answer.status_code < 500, answer.text
        if answer.status_code == 401:
            assert_revoked(answer)
            return time.monotonic() - started
        assert time.monotonic() - started < within, "not revoked in time"
        time.sleep(0.01)


def sign_in(pool: CognitoPool, username: str) -> str:
    pool.create_user(username)
    return pool.tokens(username)["AccessToken"]


def revoke_cli(redis: RedisServer, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_environment({"COGNITO_REDIS_URL": redis.url, "COGNITO_REDIS_PREFIX": PREFIX})
    return subprocess.run(
        [sys.executable, "-m", "fastapi_cognito_guard", "revoke", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_sign_out_on_one_process_is_rejected_by_the_other_within_a_second(
    apps: tuple[ExampleServer, ExampleServer], pool: CognitoPool
) -> None:
    a, b = apps
    token = sign_in(pool, "alice")
    other_session = pool.tokens("alice")["AccessToken"]
    assert me(a, token).status_code == 200
    assert me(b, token).status_code == 200
    assert logout(a, token).status_code == 204
    assert_revoked(me(a, token))  # the revoking process rejects at once
    delay = seconds_until_revoked(b, token)
    print(f"\nsign-out on A rejected by B after {delay * 1000:.1f} ms")
    assert me(b, other_session).status_code == 200  # only that sign-in ended


def test_sign_out_everywhere_rejects_every_earlier_token_on_both_and_tells_cognito(
    apps: tuple[ExampleServer, ExampleServer], pool: CognitoPool
) -> None:
    a, b = apps
    phone = sign_in(pool, "bob")
    laptop = pool.tokens("bob")["AccessToken"]
    assert me(b, phone).status_code == 200
    assert logout(a, laptop, everywhere=True).status_code == 204
    for token in (phone, laptop):
        assert_revoked(me(a, token))
        seconds_until_revoked(b, token)
    with pytest.raises(pool.idp.exceptions.NotAuthorizedException):
        pool.idp.get_user(AccessToken=phone)  # GlobalSignOut reached Cognito
    time.sleep(1.05)  # sign-ins from the next second on work
    fresh = pool.tokens("bob")["AccessToken"]
    assert me(a, fresh).status_code == 200
    assert me(b, fresh).status_code == 200


def test_cli_revoke_by_sub_and_by_origin_jti_reaches_both_processes(
    apps: tuple[ExampleServer, ExampleServer], pool: CognitoPool, redis: RedisServer
) -> None:
    a, b = apps
    carol = sign_in(pool, "carol")
    dave = sign_in(pool, "dave")
    carol_sub = me(a, carol).json()["sub"]
    origin_jti = decode_unverified(dave)[1]["origin_jti"]
    done = revoke_cli(redis, "--sub", carol_sub)
    assert done.returncode == 0, done.stderr
    done = revoke_cli(redis, "--origin-jti", origin_jti)
    assert done.returncode == 0, done.stderr
    for server in (a, b):
        seconds_until_revoked(server, carol)
        seconds_until_revoked(server, dave)


def test_identity_pool_is_asked_once_for_a_user_served_by_both_processes(
    apps: tuple[ExampleServer, ExampleServer], pool: CognitoPool, identity: IdentityServer
) -> None:
    pool.create_user("grace")
    tokens = pool.tokens("grace")
    headers = {
        "Authorization": f"Bearer {tokens['AccessToken']}",
        "X-Cognito-Id-Token": tokens["IdToken"],
    }
    before = identity.counts()
    answers = [httpx.get(f"{server.base_url}/aws/identity", headers=headers) for server in apps]
    assert [answer.status_code for answer in answers] == [200, 200], answers[0].text
    assert answers[0].json()["access_key_id"] == answers[1].json()["access_key_id"]
    after = identity.counts()
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def test_cli_revoke_of_an_id_never_seen_succeeds(redis: RedisServer) -> None:
    done = revoke_cli(redis, "--origin-jti", "never-seen-before")
    assert done.returncode == 0, done.stderr


def test_nothing_secret_is_stored_in_redis_or_logged(
    apps: tuple[ExampleServer, ExampleServer], pool: CognitoPool, redis: RedisServer
) -> None:
    a, b = apps
    token = sign_in(pool, "erin")
    assert logout(a, token, everywhere=True).status_code == 204
    seconds_until_revoked(b, token)

    def cli(*command: str) -> str:
        return subprocess.run(
            ["redis-cli", "-p", str(redis.port), *command],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    keys = cli("--scan", "--pattern", "*").split()
    assert any(key.startswith(PREFIX + "revoked:") for key in keys)
    for key in keys:
        assert key.startswith(PREFIX)
        assert int(cli("TTL", key)) > 0, key
        kind = cli("TYPE", key).strip()
        values = cli("GET", key) if kind == "string" else cli("ZRANGE", key, "0", "-1")
        signature = token.rsplit(".", 1)[1]
        assert signature not in values
        assert token.split(".")[1][:40] not in values
        assert "SecretKey" not in values  # identity credentials are sealed
        assert "SessionToken" not in values
    for server in (a, b):
        assert signature not in server.stderr
        assert token.split(".")[1][:40] not in server.stderr


def test_redis_killed_and_back_empty_loses_nothing(
    apps: tuple[ExampleServer, ExampleServer], pool: CognitoPool, redis: RedisServer
) -> None:
    a, b = apps
    revoked = sign_in(pool, "frank")
    valid = pool.tokens("frank")["AccessToken"]
    assert logout(a, revoked).status_code == 204
    seconds_until_revoked(b, revoked)
    redis.stop()
    try:
        for _ in range(3):  # no 5xx while Redis is gone; the list is kept
            for server in (a, b):
                assert_revoked(me(server, revoked))
                assert me(server, valid).status_code == 200
                assert httpx.get(f"{server.base_url}/ready").status_code == 200
        during = pool.tokens("frank")["AccessToken"]
        assert logout(b, during).status_code == 204  # revoked on B only, for now
        assert_revoked(me(b, during))
    finally:
        restarted = RedisServer.start(Path(redis.log_path).parent, port=redis.port)
        redis.process = restarted.process
    # back empty: both write back what they remember, and A learns B's revocation
    seconds_until_revoked(a, during, within=10)
    later = pool.tokens("frank")["AccessToken"]
    assert logout(b, later).status_code == 204
    delay = seconds_until_revoked(a, later)
    print(f"\nafter the Redis restart, a new revocation reached A in {delay * 1000:.1f} ms")
    for server in (a, b):
        assert_revoked(me(server, revoked))
    warnings = a.stderr.count("Redis unreachable")
    assert 1 <= warnings <= 2  # once per incident (the mirror and a failed write may race)
