"""The revocation list and the Cognito sign-out calls (``revocation.py``, DESIGN §14).

The list is checked through a real verifier (result cache on, so cache hits are
covered); Cognito is moto's (``GetUser`` / ``GlobalSignOut`` with real access
tokens from ``admin_initiate_auth``). moto routes these unsigned calls to its
us-east-1 backend, so the pools here live in us-east-1.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    CognitoVerifier,
    InvalidTokenError,
    RevocationList,
)
from fastapi_cognito_guard.revocation import (
    session_entry,
    shared_revocations,
    sign_in_key,
    trusted_claims,
)
from fastapi_cognito_guard.stores import RedisLink
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, running
from tests.moto_cognito import CognitoPool, boto_client, create_pool, decode_unverified
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

# -- the list, through the verifier ------------------------------------------------


@pytest.fixture
async def guarded(issuer: LocalIssuer) -> AsyncIterator[tuple[CognitoVerifier, RevocationList]]:
    """A verifier with its result cache on, consulting a fresh revocation list."""
    verifier = CognitoVerifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    revocations = RevocationList(3600)
    verifier.revocation = revocations
    yield verifier, revocations
    await verifier.aclose()


async def assert_revoked(verifier: CognitoVerifier, token: str) -> None:
    with pytest.raises(InvalidTokenError) as caught:
        await verifier.verify(token)
    assert caught.value.code == "revoked"


async def test_revoked_session_rejects_every_token_of_that_sign_in_even_cached(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    first = issuer.access_token(origin_jti="sign-in-1")
    refreshed = issuer.access_token(origin_jti="sign-in-1", jti="another")
    other = issuer.access_token(origin_jti="sign-in-2")
    await verifier.verify(first)  # now in the result cache
    revocations.revoke_session("sign-in-1")
    await assert_revoked(verifier, first)
    await assert_revoked(verifier, refreshed)
    assert (await verifier.verify(other)).origin_jti == "sign-in-2"


async def test_revoked_user_rejects_sign_ins_up_to_that_second_and_accepts_later_ones(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    at = revocations.revoke_user("user-1")
    same_second = issuer.access_token(sub="user-1", auth_time=at, iat=at)
    next_second = issuer.access_token(sub="user-1", auth_time=at + 1, iat=at + 1)
    await assert_revoked(verifier, same_second)
    assert (await verifier.verify(next_second)).sub == "user-1"


async def test_user_revocation_uses_auth_time_not_iat_of_refreshed_tokens(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    at = revocations.revoke_user("user-1")
    refreshed_later = issuer.access_token(sub="user-1", auth_time=at - 60, iat=at + 5)
    await assert_revoked(verifier, refreshed_later)


def token_without(issuer: LocalIssuer, *names: str, **claims: Any) -> str:
    """An access token signed by ``issuer`` without the named claims."""
    payload = decode_unverified(issuer.access_token(**claims))[1]
    for name in names:
        del payload[name]
    return issuer.sign(payload)


async def test_user_revocation_falls_back_to_iat_and_rejects_tokens_with_neither(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    at = revocations.revoke_user("user-1")
    await assert_revoked(verifier, token_without(issuer, "auth_time", sub="user-1", iat=at))
    await assert_revoked(verifier, token_without(issuer, "auth_time", "iat", sub="user-1"))
    later = token_without(issuer, "auth_time", sub="user-1", iat=at + 1)
    assert (await verifier.verify(later)).sub == "user-1"


async def test_revoked_sign_in_key_rejects_every_token_of_that_sign_in_without_origin_jti(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    signed_in = int(time.time()) - 60
    first = token_without(issuer, "origin_jti", sub="user-1", auth_time=signed_in)
    refreshed = token_without(issuer, "origin_jti", sub="user-1", auth_time=signed_in, jti="x")
    await verifier.verify(first)  # now in the result cache
    key = sign_in_key("user-1", signed_in)
    assert key is not None
    revocations.revoke_sign_in(key)
    await assert_revoked(verifier, first)
    await assert_revoked(verifier, refreshed)


async def test_sign_in_key_leaves_other_sign_ins_of_the_user_alone(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    signed_in = int(time.time()) - 60
    revocations.revoke_sign_in(f"user-1:{signed_in}")
    other_device = token_without(issuer, "origin_jti", sub="user-1", auth_time=signed_in - 5)
    assert (await verifier.verify(other_device)).sub == "user-1"
    # a token that has an origin_jti is revoked by it, never by the sign-in key
    with_origin = issuer.access_token(sub="user-1", auth_time=signed_in)
    assert (await verifier.verify(with_origin)).sub == "user-1"


async def test_session_entry_is_origin_jti_else_sign_in_key_else_the_user(
    verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    tokens = {
        "session": issuer.access_token(sub="u", origin_jti="o", auth_time=7),
        "sign_in": token_without(issuer, "origin_jti", sub="u", auth_time=7),
        "user": token_without(issuer, "origin_jti", "auth_time", sub="u"),
    }
    entries = {kind: session_entry(await verifier.verify(t)) for kind, t in tokens.items()}
    assert entries == {
        "session": ("session", "o"),
        "sign_in": ("sign_in", "u:7"),
        "user": ("user", "u"),
    }


def test_sign_in_key_too_long_for_the_list_is_none() -> None:
    assert sign_in_key("u" * 250, 1_700_000_000) is None
    assert sign_in_key("u", None) is None


async def test_revoking_one_user_leaves_other_users_alone(
    guarded: tuple[CognitoVerifier, RevocationList], issuer: LocalIssuer
) -> None:
    verifier, revocations = guarded
    revocations.revoke_user("user-1")
    assert (await verifier.verify(issuer.access_token(sub="user-2"))).sub == "user-2"


def test_merge_keeps_the_later_time_and_ignores_expired_entries() -> None:
    now = 1_000_000.0
    revocations = RevocationList(100, clock=lambda: now)
    revocations.merge("user", "u", 999_990)
    revocations.merge("user", "u", 999_950)
    revocations.merge("session", "old", 999_900)  # revoked 100 s ago: expired
    assert revocations.snapshot("user") == {"u": 999_990}
    assert revocations.snapshot("session") == {}


def test_entries_are_pruned_once_they_outlive_a_refresh_token() -> None:
    clock = [1_000_000.0]
    revocations = RevocationList(100, clock=lambda: clock[0])
    revocations.revoke_session("s")
    clock[0] += 100
    assert revocations.snapshot("session") == {}
    assert len(revocations) == 0


@pytest.mark.parametrize("bad", ["", " ", "a b", "x" * 257, "caf\u00e9", "line\n"])
def test_malformed_ids_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="visible ASCII"):
        RevocationList(100).revoke_user(bad)


def test_listeners_hear_each_new_or_later_entry_once() -> None:
    clock = [1_000_000.0]
    revocations = RevocationList(3600, clock=lambda: clock[0])
    heard: list[tuple[str, str]] = []
    revocations.listeners.append(lambda kind, member: heard.append((kind, member)))
    revocations.revoke_user("u")
    revocations.merge("user", "u", 999_000)  # older: already covered
    revocations.revoke_session("s")
    clock[0] += 5
    revocations.revoke_user("u")  # later: heard again
    assert heard == [("user", "u"), ("session", "s"), ("user", "u")]


class Listening:
    """One process's revocation list, mirrored in Redis, and what its listener heard."""

    def __init__(self, url: str) -> None:
        self.link = RedisLink(url, "listeners:")
        self.revocations = RevocationList(3600)
        self.mirror = shared_revocations(self.link, self.revocations)
        self.heard: list[tuple[str, str]] = []
        self.event = asyncio.Event()
        self.revocations.listeners.append(self.hear)

    def hear(self, kind: str, member: str) -> None:
        self.heard.append((kind, member))
        self.event.set()

    async def close(self) -> None:
        await self.mirror.stop()
        await self.link.aclose()


async def test_listeners_hear_entries_from_another_process_through_redis(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    a, b, late = (Listening(redis_server.url) for _ in range(3))
    try:
        await a.mirror.start()
        await b.mirror.start()
        at = a.revocations.revoke_user("user-1")
        assert await a.mirror.publish("user", "user-1", at)
        await asyncio.wait_for(b.event.wait(), 5)  # pub/sub
        await late.mirror.start()  # a process starting later: its first load
    finally:
        for process in (a, b, late):
            await process.close()

    assert a.heard == b.heard == late.heard == [("user", "user-1")]


# -- Cognito: GetUser and GlobalSignOut against moto ---------------------------------


@pytest.fixture
def east_pool(moto_server: str) -> CognitoPool:
    return create_pool(boto_client("cognito-idp", moto_server, "us-east-1"), moto_server)


def pool_auth(pool: CognitoPool, **overrides: Any) -> CognitoAuth[CognitoUser]:
    values: dict[str, Any] = {
        "user_pool_id": pool.pool_id,
        "client_ids": [pool.client_id],
        "jwks_url": pool.jwks_url,
        "idp_endpoint": pool.moto_url,
        **overrides,
    }
    return CognitoAuth(CognitoSettings(**values))


class CountingTransport(httpx.AsyncBaseTransport):
    """Passes requests on over real HTTP and counts them by ``X-Amz-Target``."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.calls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.calls.append(request.headers.get("x-amz-target", "GET " + request.url.path))
        return await self.inner.handle_async_request(request)


def active_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/active")
    async def active(user: CognitoUser = Depends(auth.require_active_session)) -> dict[str, str]:
        return {"sub": user.sub}

    @app.get("/me")
    async def me(user: CognitoUser = Depends(auth.current_user)) -> dict[str, str]:
        return {"sub": user.sub}

    return app


GET_USER = "AWSCognitoIdentityProviderService.GetUser"
GLOBAL_SIGN_OUT = "AWSCognitoIdentityProviderService.GlobalSignOut"


async def test_active_session_asks_cognito_once_per_token_per_interval(
    east_pool: CognitoPool,
) -> None:
    east_pool.create_user("alice")
    token = east_pool.tokens("alice")["AccessToken"]
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        auth = CognitoAuth(pool_auth(east_pool).settings, http_client=http)
        async with running(active_app(auth)) as client:
            answers = await asyncio.gather(
                *(client.get("/active", headers=bearer(token)) for _ in range(5))
            )
            answers.append(await client.get("/active", headers=bearer(token)))
    assert [answer.status_code for answer in answers] == [200] * 6
    assert transport.calls.count(GET_USER) == 1


async def test_active_session_asks_again_after_the_interval(east_pool: CognitoPool) -> None:
    east_pool.create_user("alice")
    token = east_pool.tokens("alice")["AccessToken"]
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=transport) as http:
        settings = pool_auth(east_pool, revocation_check_seconds=0.3).settings
        auth = CognitoAuth(settings, http_client=http)
        async with running(active_app(auth)) as client:
            assert (await client.get("/active", headers=bearer(token))).status_code == 200
            await asyncio.sleep(0.4)
            assert (await client.get("/active", headers=bearer(token))).status_code == 200
    assert transport.calls.count(GET_USER) == 2


async def test_global_sign_out_elsewhere_is_seen_by_the_active_session_check(
    east_pool: CognitoPool,
) -> None:
    east_pool.create_user("alice")
    token = east_pool.tokens("alice")["AccessToken"]
    auth = pool_auth(east_pool, revocation_check_seconds=0)
    async with running(active_app(auth)) as client:
        assert (await client.get("/active", headers=bearer(token))).status_code == 200
        east_pool.idp.global_sign_out(AccessToken=token)  # another device signs out
        answer = await client.get("/active", headers=bearer(token))
        assert answer.status_code == 401
        assert answer.json()["code"] == "revoked"
        # the session joined the list: plain routes reject it too, without asking Cognito
        answer = await client.get("/me", headers=bearer(token))
        assert (answer.status_code, answer.json()["code"]) == (401, "revoked")


async def test_tokens_without_the_admin_scope_rely_on_the_list_and_never_call_cognito(
    issuer: LocalIssuer,
) -> None:
    transport = CountingTransport()
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        auth = CognitoAuth(issuer.settings(idp_endpoint="http://127.0.0.1:9/"), http_client=http)
        token = issuer.access_token(scopes=["orders/read"])
        async with running(active_app(auth)) as client:
            assert (await client.get("/active", headers=bearer(token))).status_code == 200
            await auth.sign_out(token)
            answer = await client.get("/active", headers=bearer(token))
    assert (answer.status_code, answer.json()["code"]) == (401, "revoked")
    assert GET_USER not in transport.calls


def closed_cognito_auth(issuer: LocalIssuer, closed_url: str) -> CognitoAuth[CognitoUser]:
    """An auth whose Cognito endpoint refuses connections (keys seeded, no JWKS HTTP)."""
    closed = closed_url.rsplit("/.well-known", 1)[0] + "/"
    auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings(idp_endpoint=closed))
    auth.verifier.cache_jwks(issuer.jwks())
    return auth


async def test_cognito_unreachable_answers_503_with_retry_after(
    issuer: LocalIssuer, closed_jwks_url: str
) -> None:
    auth = closed_cognito_auth(issuer, closed_jwks_url)
    async with running(active_app(auth)) as client:
        answer = await client.get("/active", headers=bearer(issuer.access_token()))
    assert answer.status_code == 503
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.json()["code"] == "cognito_unavailable"


async def test_sign_out_everywhere_calls_global_sign_out_and_revokes_earlier_tokens(
    east_pool: CognitoPool,
) -> None:
    east_pool.create_user("alice")
    phone = east_pool.tokens("alice")["AccessToken"]
    laptop = east_pool.tokens("alice")["AccessToken"]
    auth = pool_auth(east_pool)
    async with running(active_app(auth)) as client:
        result = await auth.sign_out(laptop, everywhere=True)
        assert result.everywhere
        assert result.cognito == "signed_out"
        assert result.cognito_told
        answer = await client.get("/me", headers=bearer(phone))
        assert (answer.status_code, answer.json()["code"]) == (401, "revoked")
        # Cognito too: the phone's token is dead there
        with pytest.raises(east_pool.idp.exceptions.NotAuthorizedException):
            east_pool.idp.get_user(AccessToken=phone)
        await asyncio.sleep(1.01)  # sign-ins from the next second on work
        fresh = east_pool.tokens("alice")["AccessToken"]
        assert (await client.get("/me", headers=bearer(fresh))).status_code == 200


async def test_sign_out_without_admin_scope_revokes_locally_and_says_cognito_was_not_told(
    auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    token = issuer.access_token(scopes=["orders/read"])
    result = await auth.sign_out(token, everywhere=True)
    assert result.cognito == "no_admin_scope"
    assert not result.cognito_told
    with pytest.raises(InvalidTokenError, match="revoked"):
        await auth.authenticate(issuer.access_token(auth_time=int(time.time()) - 5))


async def test_failed_global_sign_out_is_logged_and_reported_not_raised(
    issuer: LocalIssuer, closed_jwks_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    auth = closed_cognito_auth(issuer, closed_jwks_url)
    token = issuer.access_token()
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        result = await auth.sign_out(token, everywhere=True)
    await auth.aclose()
    assert result.cognito == "failed"
    assert "GlobalSignOut failed" in caplog.text
    assert token not in caplog.text
    with pytest.raises(InvalidTokenError, match="revoked"):
        await auth.authenticate(token)


async def test_sign_out_refuses_a_token_it_cannot_verify(
    auth: CognitoAuth[Any], issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    forged = other_issuer.access_token(origin_jti="victim-session")
    with pytest.raises(InvalidTokenError):
        await auth.sign_out(forged)
    assert auth.revocations.snapshot("session") == {}


async def test_identity_verifiers_consult_the_same_revocation_list(
    issuer: LocalIssuer,
) -> None:
    auth = CognitoAuth(issuer.settings(identity_pool_id="eu-central-1:pool"))
    client = auth.identity_client(issuer.user_pool_id)
    assert client.verifier.revocation is auth.revocations
    await auth.aclose()


async def test_sign_out_of_a_token_with_neither_origin_jti_nor_auth_time_revokes_its_user(
    auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    token = token_without(issuer, "origin_jti", "auth_time", sub="user-9")
    result = await auth.sign_out(token)
    assert (result.session_key, result.user_revoked) == (None, True)
    assert "user-9" in auth.revocations.snapshot("user")
    with pytest.raises(InvalidTokenError, match="revoked"):
        await auth.authenticate(token)


def test_trusted_claims_read_an_expired_session_token_but_nothing_that_is_not_one(
    issuer: LocalIssuer,
) -> None:
    expired = issuer.access_token(origin_jti="o-1", expires_in=-3600)
    claims = trusted_claims(expired, issuer.user_pool_id)
    assert claims is not None
    assert (claims.origin_jti, claims.user_pool_id) == ("o-1", issuer.user_pool_id)
    assert trusted_claims(issuer.id_token(), issuer.user_pool_id) is None
    assert trusted_claims("not-a-token", issuer.user_pool_id) is None


async def test_sign_in_entries_that_expire_stop_revoking_and_later_ones_still_do(
    verifier: CognitoVerifier, issuer: LocalIssuer
) -> None:
    clock = [time.time()]
    revocations = RevocationList(100, clock=lambda: clock[0])
    verifier.revocation = revocations
    revocations.revoke_sign_in("user-1:1000")
    clock[0] += 100  # the first entry has outlived a refresh token
    revocations.revoke_sign_in("user-1:2000")
    old = token_without(issuer, "origin_jti", sub="user-1", auth_time=1000)
    new = token_without(issuer, "origin_jti", sub="user-1", auth_time=2000)
    assert (await verifier.verify(old)).sub == "user-1"
    await assert_revoked(verifier, new)


async def test_sign_out_of_a_token_whose_origin_jti_the_list_cannot_hold_revokes_its_user(
    auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    token = issuer.access_token(sub="user-10", origin_jti="o" * 300)
    result = await auth.sign_out(token)
    assert (result.session_key, result.user_revoked) == (None, True)
    with pytest.raises(InvalidTokenError, match="revoked"):
        await auth.authenticate(token)
