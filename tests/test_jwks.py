"""Specification of the JWKS cache and of the verifier's key handling (DESIGN.md §4-§5).

Proves, mostly over real HTTP against ``tests.jwks_server.JWKSServer``:
single-flight fetches (500 cold callers, one request); kid-miss refetch bounded
by the cooldown (a flood of made-up kids costs one fetch); key rotation and
keys replaced under the same kid, including results already in the result
cache; TTL refresh in the background; stale keys served through every kind of
outage up to ``jwks_max_stale_seconds``; ``KeysUnavailableError`` (never a false
``unknown_kid``) when no keys can be had, fast and without hammering the
endpoint; recovery; the 64 KiB limit; ``verify_sync`` never fetching;
``cache_jwks`` and the default per-issuer JWKS URLs; logging once per incident
without tokens; and who closes the HTTP client. A JWKS that yields no usable
key is specified as a failed fetch (strict xfail until the package agrees).

Time is moved with a fake monotonic clock handed to ``JWKSCache(clock=...)``;
the verifier builds its cache itself, so ``make_verifier`` swaps the
``JWKSCache`` name the verifier module uses for one with the fake clock.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from fastapi_cognito_guard import (
    CognitoSettings,
    CognitoVerifier,
    InvalidTokenError,
    JWKSCache,
    KeysUnavailableError,
)
from fastapi_cognito_guard import jwks as jwks_module
from fastapi_cognito_guard import verifier as verifier_module
from fastapi_cognito_guard.jwks import MAX_JWKS_BYTES, JWKSPolicy, issuer_form_twin
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import FakeClock
from tests.jwks_server import JWKS_SUFFIX, JWKSServer

pytest_plugins = ["tests.jwks_server"]

TIMEOUT = 1.0  # real seconds: room for a busy machine to answer a healthy fetch
TTL = 300.0
COOLDOWN = 10.0
MAX_STALE = 3600.0
LOGGER = "fastapi_cognito_guard"
REGION = "eu-central-1"
POOL = "eu-central-1_Test"
ISS = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
ISS_NEW_FORM = f"https://issuer-cognito-idp.{REGION}.amazonaws.com/{POOL}"

# Every way a JWKS endpoint can fail; "closed_port" is the server not listening.
OUTAGES = [
    "status_500",
    "status_429",
    "hang",
    "huge",
    "huge_chunked",
    "not_json",
    "truncated_json",
    "no_keys",
    "keys_not_list",
    "redirect",
    "deep_json",  # json.loads raises RecursionError, not ValueError (fixed in 08e6af7)
    "closed_port",
]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeVerifier = Callable[..., CognitoVerifier]


@pytest.fixture
async def make_verifier(
    clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[MakeVerifier]:
    """Build verifiers whose JWKS cache runs on ``clock``; all are closed afterwards."""
    made: list[CognitoVerifier] = []

    def make(
        settings: CognitoSettings | list[CognitoSettings],
        *,
        http_client: httpx.AsyncClient | None = None,
        real_clock: bool = False,
    ) -> CognitoVerifier:
        with monkeypatch.context() as patch:
            if not real_clock:
                patch.setattr(
                    verifier_module, "JWKSCache", functools.partial(JWKSCache, clock=clock)
                )
            verifier = CognitoVerifier(settings, http_client=http_client)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


def fast(server: JWKSServer, **overrides: Any) -> CognitoSettings:
    """Settings for the server's issuer with short, test-friendly JWKS timings."""
    values: dict[str, Any] = {
        "jwks_timeout_seconds": TIMEOUT,
        "jwks_ttl_seconds": TTL,
        "jwks_cooldown_seconds": COOLDOWN,
        "jwks_max_stale_seconds": MAX_STALE,
        "result_cache_size": 0,
    }
    values.update(overrides)
    return server.settings(**values)


def access_claims(issuer: LocalIssuer, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "iss": issuer.issuer,
        "token_use": "access",
        "client_id": issuer.client_id,
        "username": "alice",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(extra)
    return claims


def unknown_kid_token(issuer: LocalIssuer) -> str:
    """A token signed by the issuer's key but naming a kid that is in no JWKS."""
    kid = f"unknown-{uuid.uuid4().hex}"
    return issuer.sign(access_claims(issuer), header={"alg": "RS256", "kid": kid})


async def wait_until(predicate: Callable[[], bool], timeout: float = 3.0) -> None:
    """Let the event loop run (background fetches) until ``predicate()`` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)


def warnings_in(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name.partition(".")[0] == LOGGER and r.levelno >= logging.WARNING
    ]


def fetch_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for m in warnings_in(caplog) if "JWKS fetch" in m and "failed" in m]


def recoveries(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [m for m in warnings_in(caplog) if "recovered" in m]


def break_server(server: JWKSServer, fault: str) -> None:
    if fault == "closed_port":
        server.close()
    else:
        server.fault = fault


def mend_server(server: JWKSServer, fault: str) -> None:
    if fault == "closed_port":
        server.start()
    else:
        server.fault = None


def requests_per_attempt(fault: str) -> int:
    return 0 if fault == "closed_port" else 1


def replaced_under_same_kid(jwks: dict[str, Any], kid: str) -> dict[str, Any]:
    """``jwks`` with the key for ``kid`` swapped for another RSA key (same kid)."""
    stranger = LocalIssuer().jwks()["keys"][0]
    keys = [dict(stranger, kid=kid) if key["kid"] == kid else key for key in jwks["keys"]]
    return {"keys": keys}


# -- single flight --------------------------------------------------------------


async def test_500_concurrent_cold_verifies_make_exactly_one_fetch(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(fast(jwks_server), real_clock=True)
    token = jwks_server.issuer.access_token()

    results = await asyncio.gather(*(verifier.verify(token) for _ in range(500)))

    assert jwks_server.requests == 1
    assert len(results) == 500
    assert all(claims.username == "alice" for claims in results)


async def test_concurrent_cold_verifies_share_one_failed_fetch(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks_server.fault = "status_500"
    verifier = make_verifier(fast(jwks_server))
    token = jwks_server.issuer.access_token()

    results = await asyncio.gather(
        *(verifier.verify(token) for _ in range(200)), return_exceptions=True
    )

    assert all(isinstance(r, KeysUnavailableError) for r in results)
    assert jwks_server.requests == 1


async def test_keys_are_built_once_per_fetch_not_per_request(
    clock: FakeClock,
) -> None:
    issuer = LocalIssuer()
    url = issuer.jwks_url
    async with httpx.AsyncClient(transport=issuer.transport) as client:
        cache = JWKSCache(client, clock=clock)
        first = await cache.get_key(url, issuer.kid)
        second = await cache.get_key(url, issuer.kid)
        assert first is second
        assert cache.fresh_key(url, issuer.kid) is first
        assert issuer.jwks_requests == 1
        await cache.aclose()


# -- kid misses -----------------------------------------------------------------


async def test_flood_of_unknown_kids_costs_at_most_one_fetch_per_cooldown(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    await verifier.hydrate()
    assert jwks_server.requests == 1
    flood = [unknown_kid_token(issuer) for _ in range(1000)]

    results = await asyncio.gather(*(verifier.verify(t) for t in flood), return_exceptions=True)

    assert all(isinstance(r, InvalidTokenError) and r.code == "unknown_kid" for r in results)
    assert jwks_server.requests <= 2
    within_cooldown = jwks_server.requests
    for token in flood[:50]:  # later in the same cooldown: no fetch at all
        with pytest.raises(InvalidTokenError) as caught:
            await verifier.verify(token)
        assert caught.value.code == "unknown_kid"
    assert jwks_server.requests == within_cooldown
    assert (await verifier.verify(issuer.access_token())).username == "alice"

    clock.advance(COOLDOWN + 0.1)
    results = await asyncio.gather(*(verifier.verify(t) for t in flood), return_exceptions=True)

    assert all(isinstance(r, InvalidTokenError) and r.code == "unknown_kid" for r in results)
    assert jwks_server.requests == within_cooldown + 1


async def test_unknown_kid_is_refetched_after_a_short_real_cooldown(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server, jwks_cooldown_seconds=0.2), real_clock=True)
    await verifier.hydrate()
    token = unknown_kid_token(issuer)
    for _ in range(3):
        with pytest.raises(InvalidTokenError, match="kid"):
            await verifier.verify(token)
    assert jwks_server.requests == 2

    await asyncio.sleep(0.25)
    with pytest.raises(InvalidTokenError):
        await verifier.verify(token)
    assert jwks_server.requests == 3


async def test_kid_miss_during_a_failing_refresh_is_keys_unavailable_not_unknown_kid(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    valid = issuer.access_token()
    await verifier.verify(valid)
    jwks_server.fault = "status_500"
    clock.advance(COOLDOWN + 0.1)  # a kid miss may refetch again; keys still fresh

    with pytest.raises(KeysUnavailableError) as caught:
        await verifier.verify(unknown_kid_token(issuer))
    assert caught.value.retry_after >= 1
    assert jwks_server.requests == 2
    with pytest.raises(KeysUnavailableError):  # next miss, same cooldown: no new fetch
        await verifier.verify(unknown_kid_token(issuer))
    assert jwks_server.requests == 2
    assert (await verifier.verify(valid)).username == "alice"  # known kids still verify


# -- rotation -------------------------------------------------------------------


async def test_token_of_a_rotated_in_key_verifies_without_restart(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    await verifier.verify(issuer.access_token())
    clock.advance(COOLDOWN + 0.1)

    new_kid = issuer.rotate_keys()
    claims = await verifier.verify(issuer.access_token(username="bob"))

    assert claims.username == "bob"
    assert issuer.kid == new_kid
    assert jwks_server.requests == 2


async def test_result_cached_token_of_a_removed_key_stops_verifying_after_refresh(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server, result_cache_size=100))
    old_token = issuer.access_token()
    await verifier.verify(old_token)
    issuer.rotate_keys()  # the old key leaves the JWKS
    assert (await verifier.verify(old_token)).username == "alice"  # cached, no refresh yet
    clock.advance(COOLDOWN + 0.1)

    await verifier.verify(issuer.access_token(username="bob"))  # kid miss -> refresh
    assert jwks_server.requests == 2

    with pytest.raises(InvalidTokenError) as caught:
        await verifier.verify(old_token)
    assert caught.value.code == "unknown_kid"
    with pytest.raises(InvalidTokenError):
        verifier.verify_sync(old_token)


@pytest.mark.parametrize("result_cache_size", [0, 100])
async def test_rotation_that_keeps_the_old_key_keeps_old_tokens_valid(
    jwks_server: JWKSServer,
    make_verifier: MakeVerifier,
    clock: FakeClock,
    result_cache_size: int,
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server, result_cache_size=result_cache_size))
    old_token = issuer.access_token()
    await verifier.verify(old_token)
    clock.advance(COOLDOWN + 0.1)

    issuer.rotate_keys(keep_old=True)
    await verifier.verify(issuer.access_token(username="bob"))

    assert jwks_server.requests == 2
    assert (await verifier.verify(old_token)).username == "alice"
    assert verifier.verify_sync(old_token).username == "alice"
    assert (await verifier.verify(issuer.access_token(username="carol"))).username == "carol"


async def test_key_replaced_under_the_same_kid_drops_cached_results(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server, result_cache_size=100))
    token = issuer.access_token()
    await verifier.verify(token)
    jwks_server.document = replaced_under_same_kid(issuer.jwks(), issuer.kid)
    assert (await verifier.verify(token)).username == "alice"  # cached, no refresh yet

    await verifier.hydrate()  # the refresh that sees the new numbers
    assert jwks_server.requests == 2

    with pytest.raises(InvalidTokenError) as caught:
        await verifier.verify(token)
    assert caught.value.code == "bad_signature"


def test_cache_reports_removed_and_changed_kids_as_retired(clock: FakeClock) -> None:
    first, second, third = LocalIssuer(), LocalIssuer(), LocalIssuer()
    retired: list[tuple[str, frozenset[str]]] = []
    url = "https://example.test/.well-known/jwks.json"
    cache = JWKSCache(
        httpx.AsyncClient(transport=first.transport),
        on_keys_retired=lambda u, kids: retired.append((u, kids)),
        clock=clock,
    )  # seed() never uses the client
    a, b, c = (dict(i.jwks()["keys"][0]) for i in (first, second, third))
    a["kid"], b["kid"], c["kid"] = "a", "b", "c"
    changed_a = dict(c, kid="a")

    cache.seed(url, {"keys": [a, b]})
    assert retired == []
    cache.seed(url, {"keys": [a, b]})  # same keys again: nothing retired
    assert retired == []
    cache.seed(url, {"keys": [changed_a, c]})  # a changed, b removed, c added

    assert retired == [(url, frozenset({"a", "b"}))]


# -- TTL ------------------------------------------------------------------------


async def test_after_ttl_verify_uses_cached_keys_and_refreshes_once_in_background(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    token = issuer.access_token()
    await verifier.verify(token)
    new_kid = issuer.rotate_keys(keep_old=True)
    clock.advance(TTL + 1)

    results = await asyncio.gather(*(verifier.verify(token) for _ in range(50)))
    assert all(claims.username == "alice" for claims in results)

    await wait_until(lambda: jwks_server.requests >= 2)
    await asyncio.sleep(0.05)
    assert jwks_server.requests == 2
    # The background refresh stored the new key: its tokens verify without a fetch.
    assert issuer.kid == new_kid
    assert (await verifier.verify(issuer.access_token(username="bob"))).username == "bob"
    assert (await verifier.verify(token)).username == "alice"
    assert jwks_server.requests == 2


async def test_background_refresh_does_not_delay_verify(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(fast(jwks_server, jwks_timeout_seconds=10))
    token = jwks_server.issuer.access_token()
    await verifier.verify(token)
    jwks_server.fault = "hang"
    clock.advance(TTL + 1)

    assert (await verifier.verify(token)).username == "alice"
    await wait_until(lambda: jwks_server.requests == 2)
    assert (await verifier.verify(token)).username == "alice"  # joins nothing, no wait

    # The refresh is still hanging (10 s timeout), so neither verify waited for it.
    assert verifier._jwks._sets[jwks_server.url].inflight is not None
    assert jwks_server.requests == 2


def test_cache_fresh_key_is_none_after_ttl_but_cached_key_serves_until_stale_limit(
    clock: FakeClock,
) -> None:
    issuer = LocalIssuer()
    url = issuer.jwks_url
    cache = JWKSCache(httpx.AsyncClient(transport=issuer.transport), clock=clock)
    cache.register(url, JWKSPolicy(ttl=100, cooldown=5, timeout=1, max_stale=50))
    assert cache.fresh_key(url, issuer.kid) is None
    cache.seed(url, issuer.jwks())
    key = cache.fresh_key(url, issuer.kid)
    assert key is not None

    clock.advance(100)
    assert cache.fresh_key(url, issuer.kid) is None
    assert cache.cached_key(url, issuer.kid) is key
    clock.advance(49.9)
    assert cache.cached_key(url, issuer.kid) is key
    clock.advance(0.1)
    with pytest.raises(KeysUnavailableError):
        cache.cached_key(url, issuer.kid)


def test_first_registered_policy_for_a_url_wins(clock: FakeClock) -> None:
    issuer = LocalIssuer()
    url = issuer.jwks_url
    cache = JWKSCache(httpx.AsyncClient(transport=issuer.transport), clock=clock)
    cache.register(url, JWKSPolicy(ttl=10))
    cache.register(url, JWKSPolicy(ttl=10_000))
    cache.seed(url, issuer.jwks())
    clock.advance(11)
    assert cache.fresh_key(url, issuer.kid) is None


# -- outages --------------------------------------------------------------------


@pytest.mark.parametrize("fault", OUTAGES)
async def test_warm_verifier_keeps_verifying_with_stale_keys_during_outage(
    jwks_server: JWKSServer,
    make_verifier: MakeVerifier,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    fault: str,
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    token = issuer.access_token()
    await verifier.verify(token)
    break_server(jwks_server, fault)
    clock.advance(TTL + 1)

    assert (await verifier.verify(token)).username == "alice"  # starts a refresh
    await wait_until(lambda: len(fetch_failures(caplog)) == 1)
    attempts = 1 + requests_per_attempt(fault)
    assert jwks_server.requests == attempts
    for _ in range(20):  # failed refresh: stale keys serve, no refetch in the cooldown
        assert (await verifier.verify(token)).username == "alice"
    await asyncio.sleep(0.05)
    assert jwks_server.requests == attempts
    assert verifier.verify_sync(token).username == "alice"

    mend_server(jwks_server, fault)
    clock.advance(COOLDOWN + 0.1)
    assert (await verifier.verify(token)).username == "alice"
    await wait_until(lambda: len(recoveries(caplog)) == 1)
    assert len(fetch_failures(caplog)) == 1
    assert jwks_server.errors == []


@pytest.mark.parametrize("fault", OUTAGES)
async def test_cold_verifier_raises_keys_unavailable_during_outage_then_recovers(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock, fault: str
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    token = issuer.access_token()
    break_server(jwks_server, fault)

    with pytest.raises(KeysUnavailableError) as caught:
        # A liveness guard, not a measurement: the fetch deadline must end the wait.
        await asyncio.wait_for(verifier.verify(token), TIMEOUT + 5)
    assert caught.value.retry_after >= 1
    assert caught.value.status_code == 503
    assert jwks_server.requests == requests_per_attempt(fault)  # a redirect is not followed
    with pytest.raises(KeysUnavailableError):  # within the cooldown: no new fetch
        await verifier.verify(token)
    assert jwks_server.requests == requests_per_attempt(fault)

    mend_server(jwks_server, fault)
    clock.advance(COOLDOWN + 0.1)
    assert (await verifier.verify(token)).username == "alice"
    assert jwks_server.requests == requests_per_attempt(fault) + 1
    assert jwks_server.errors == []


def no_usable_keys(issuer: LocalIssuer) -> list[dict[str, Any]]:
    encryption_only = {"keys": [dict(issuer.jwks()["keys"][0], use="enc")]}
    return [{"keys": []}, encryption_only]


@pytest.mark.parametrize("case", ["empty", "encryption_only"])
async def test_warm_verifier_keeps_its_keys_when_a_refresh_brings_no_usable_key(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock, case: str
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server, result_cache_size=100))
    token = issuer.access_token()
    await verifier.verify(token)
    empty, encryption_only = no_usable_keys(issuer)
    jwks_server.document = empty if case == "empty" else encryption_only
    clock.advance(TTL + 1)

    assert (await verifier.verify(issuer.access_token(username="bob"))).username == "bob"
    await wait_until(lambda: jwks_server.requests == 2)
    await asyncio.sleep(0.1)  # let the refresh finish

    assert (await verifier.verify(token)).username == "alice"
    assert (await verifier.verify(issuer.access_token(username="carol"))).username == "carol"


@pytest.mark.parametrize("case", ["empty", "encryption_only"])
async def test_cold_verifier_with_a_jwks_of_no_usable_key_raises_keys_unavailable(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, case: str
) -> None:
    empty, encryption_only = no_usable_keys(jwks_server.issuer)
    jwks_server.document = empty if case == "empty" else encryption_only
    verifier = make_verifier(fast(jwks_server))

    with pytest.raises(KeysUnavailableError):
        await verifier.verify(jwks_server.issuer.access_token())


async def test_wrong_content_type_is_accepted_because_the_body_decides(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks_server.fault = "wrong_content_type"
    verifier = make_verifier(fast(jwks_server))
    assert (await verifier.verify(jwks_server.issuer.access_token())).username == "alice"
    assert jwks_server.requests == 1


@pytest.mark.parametrize("fault", ["huge", "huge_chunked", "gzip_bomb"])
@pytest.mark.parametrize(
    ("size", "accepted"), [(MAX_JWKS_BYTES, True), (MAX_JWKS_BYTES + 1, False)]
)
async def test_jwks_response_size_limit_is_64_kib(
    jwks_server: JWKSServer,
    make_verifier: MakeVerifier,
    fault: str,
    size: int,
    accepted: bool,
) -> None:
    jwks_server.fault = fault
    jwks_server.huge_bytes = size  # the valid JWKS, padded with whitespace to this size
    verifier = make_verifier(fast(jwks_server))
    token = jwks_server.issuer.access_token()
    if accepted:
        assert (await verifier.verify(token)).username == "alice"
    else:
        with pytest.raises(KeysUnavailableError):
            await verifier.verify(token)


async def test_a_gzip_bomb_jwks_is_refused_before_it_is_held_in_memory(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    jwks_server.fault = "gzip_bomb"
    jwks_server.huge_bytes = 50 * 1024 * 1024  # 50 MB inflated, ~50 KB gzip
    verifier = make_verifier(fast(jwks_server))
    token = jwks_server.issuer.access_token()
    tracemalloc.start()
    try:
        with pytest.raises(KeysUnavailableError):
            await verifier.verify(token)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 1024 * 1024  # bytes held: the capped body, not the 50 MB


async def test_failed_fetch_is_retried_only_after_the_cooldown(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    jwks_server.fault = "status_500"
    verifier = make_verifier(fast(jwks_server))
    token = jwks_server.issuer.access_token()
    with pytest.raises(KeysUnavailableError) as caught:
        await verifier.verify(token)
    assert caught.value.retry_after == COOLDOWN

    clock.advance(4)
    for _ in range(10):
        with pytest.raises(KeysUnavailableError) as caught:
            await verifier.verify(token)
    assert caught.value.retry_after == COOLDOWN - 4  # Retry-After counts down to the retry
    results = await asyncio.gather(
        *(verifier.verify(token) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(r, KeysUnavailableError) for r in results)
    assert jwks_server.requests == 1

    clock.advance(COOLDOWN - 4)
    with pytest.raises(KeysUnavailableError):
        await verifier.verify(token)
    assert jwks_server.requests == 2  # exactly one new attempt, which failed again

    jwks_server.fault = None
    clock.advance(COOLDOWN)
    assert (await verifier.verify(token)).username == "alice"
    assert jwks_server.requests == 3


async def test_stale_keys_stop_serving_after_ttl_plus_max_stale(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    verifier = make_verifier(fast(jwks_server))
    token = jwks_server.issuer.access_token()
    await verifier.verify(token)
    jwks_server.fault = "status_500"

    clock.advance(TTL + MAX_STALE - 1)
    assert (await verifier.verify(token)).username == "alice"
    assert verifier.verify_sync(token).username == "alice"
    clock.advance(2)

    with pytest.raises(KeysUnavailableError):
        await verifier.verify(token)
    with pytest.raises(KeysUnavailableError):
        verifier.verify_sync(token)


# -- verify_sync, hydrate, cache_jwks, default URLs ------------------------------


async def test_verify_sync_never_fetches(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    token = issuer.access_token()

    with pytest.raises(KeysUnavailableError):
        verifier.verify_sync(token)
    assert jwks_server.requests == 0

    await verifier.hydrate()
    assert jwks_server.requests == 1
    assert verifier.verify_sync(token).username == "alice"
    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify_sync(unknown_kid_token(issuer))
    assert caught.value.code == "unknown_kid"
    clock.advance(TTL + 1)
    assert verifier.verify_sync(token).username == "alice"  # stale keys, no refresh
    await asyncio.sleep(0.05)
    assert jwks_server.requests == 1


async def test_hydrate_raises_keys_unavailable_and_leaves_the_verifier_usable(
    jwks_server: JWKSServer, make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    jwks_server.fault = "status_500"
    verifier = make_verifier(fast(jwks_server))
    with pytest.raises(KeysUnavailableError):
        await verifier.hydrate()
    jwks_server.fault = None
    clock.advance(COOLDOWN + 0.1)
    assert (await verifier.verify(jwks_server.issuer.access_token())).username == "alice"


def _no_network() -> tuple[httpx.AsyncClient, list[str]]:
    calls: list[str] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(str(request.url))
        return httpx.Response(500)

    return httpx.AsyncClient(transport=httpx.MockTransport(refuse)), calls


async def test_cache_jwks_seeds_every_issuer_of_the_pool(make_verifier: MakeVerifier) -> None:
    issuer = LocalIssuer(user_pool_id=POOL)
    client, calls = _no_network()
    settings = issuer.settings(jwks_url=None, additional_regions=["eu-west-1"])
    verifier = make_verifier(settings, http_client=client)
    verifier.cache_jwks(issuer.jwks())
    issuers = [ISS, ISS_NEW_FORM, f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}"]

    for iss in issuers:
        token = issuer.sign(access_claims(issuer, iss=iss))
        assert (await verifier.verify(token)).iss == iss
        assert verifier.verify_sync(token).iss == iss
    assert calls == []
    await client.aclose()


async def test_cache_jwks_with_several_pools_needs_and_honours_user_pool_id(
    make_verifier: MakeVerifier,
) -> None:
    first = LocalIssuer(user_pool_id=POOL)
    second = LocalIssuer(user_pool_id="eu-central-1_Other", client_id="other-client")
    client, calls = _no_network()
    verifier = make_verifier(
        [first.settings(jwks_url=None), second.settings(jwks_url=None)], http_client=client
    )
    with pytest.raises(ValueError, match="user_pool_id"):
        verifier.cache_jwks(first.jwks())
    with pytest.raises(ValueError, match="not configured"):
        verifier.cache_jwks(first.jwks(), user_pool_id="eu-central-1_Nope")

    verifier.cache_jwks(second.jwks(), user_pool_id=second.user_pool_id)

    assert verifier.verify_sync(second.access_token()).user_pool_id == second.user_pool_id
    with pytest.raises(KeysUnavailableError):
        verifier.verify_sync(first.access_token())
    assert calls == []
    await client.aclose()


async def test_both_issuer_forms_of_a_pool_share_one_fetch_from_the_original_form(
    make_verifier: MakeVerifier,
) -> None:
    issuer = LocalIssuer(user_pool_id=POOL)
    urls: list[str] = []

    async def record(request: httpx.Request) -> None:
        urls.append(str(request.url))

    client = httpx.AsyncClient(transport=issuer.transport, event_hooks={"request": [record]})
    verifier = make_verifier(issuer.settings(jwks_url=None), http_client=client)

    for _ in range(2):
        for iss in (ISS_NEW_FORM, ISS):
            await verifier.verify(issuer.sign(access_claims(issuer, iss=iss)))

    assert urls == [ISS + JWKS_SUFFIX]
    assert issuer.jwks_requests == 1
    await client.aclose()


# -- logging --------------------------------------------------------------------


async def test_fetch_failure_is_logged_once_per_incident_and_never_with_a_token(
    jwks_server: JWKSServer,
    make_verifier: MakeVerifier,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    issuer = jwks_server.issuer
    verifier = make_verifier(fast(jwks_server))
    token = issuer.access_token()
    strays = [unknown_kid_token(issuer) for _ in range(5)]
    jwks_server.fault = "status_500"

    for _ in range(5):  # five failed fetches, many failed requests: one incident
        for candidate in (token, *strays):
            with pytest.raises(KeysUnavailableError):
                await verifier.verify(candidate)
        clock.advance(COOLDOWN + 0.1)
    assert jwks_server.requests == 5
    assert len(warnings_in(caplog)) == 1
    assert fetch_failures(caplog) == warnings_in(caplog)
    assert jwks_server.url in fetch_failures(caplog)[0]

    jwks_server.fault = None
    for _ in range(3):
        await verifier.verify(token)
    assert len(recoveries(caplog)) == 1
    assert len(warnings_in(caplog)) == 2

    jwks_server.fault = "not_json"  # a second incident is logged again, once
    clock.advance(TTL + 1)
    for _ in range(3):
        await verifier.verify(token)
        await asyncio.sleep(0.05)
    await wait_until(lambda: len(fetch_failures(caplog)) == 2)

    for record in caplog.records:
        text = f"{record.getMessage()} {record.args!r} {record.exc_text or ''}"
        for candidate in (token, *strays):
            for part in candidate.split(".")[1:]:
                assert part not in text


# -- the HTTP client ------------------------------------------------------------


async def test_aclose_closes_a_client_the_cache_created(
    jwks_server: JWKSServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    created: list[httpx.AsyncClient] = []
    real_client = httpx.AsyncClient

    class RecordingClient(real_client):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            created.append(self)

    monkeypatch.setattr(jwks_module.httpx, "AsyncClient", RecordingClient)
    verifier = CognitoVerifier(fast(jwks_server))
    await verifier.verify(jwks_server.issuer.access_token())
    assert len(created) == 1
    assert created[0].follow_redirects is False

    await verifier.aclose()

    assert created[0].is_closed


async def test_aclose_leaves_a_passed_in_client_open(jwks_server: JWKSServer) -> None:
    async with httpx.AsyncClient() as client:
        verifier = CognitoVerifier(fast(jwks_server), http_client=client)
        await verifier.verify(jwks_server.issuer.access_token())
        await verifier.aclose()

        assert not client.is_closed
        assert (await client.get(jwks_server.url)).status_code == 200

        cache = JWKSCache(client)
        await cache.aclose()
        assert not client.is_closed


async def test_aclose_does_not_wait_for_a_hanging_fetch(jwks_server: JWKSServer) -> None:
    jwks_server.fault = "hang"
    verifier = CognitoVerifier(fast(jwks_server, jwks_timeout_seconds=30))
    pending = asyncio.ensure_future(verifier.verify(jwks_server.issuer.access_token()))
    await wait_until(lambda: jwks_server.requests == 1)

    started = time.perf_counter()
    await verifier.aclose()
    with pytest.raises(KeysUnavailableError):
        await asyncio.wait_for(pending, 3)
    assert time.perf_counter() - started < 3


async def test_a_closed_user_client_makes_keys_unavailable_not_an_error(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    client = httpx.AsyncClient()
    await client.aclose()
    verifier = make_verifier(fast(jwks_server), http_client=client)

    with pytest.raises(KeysUnavailableError):
        await verifier.verify(jwks_server.issuer.access_token())
    assert jwks_server.requests == 0


async def test_aclose_during_a_key_fetch_gives_waiting_callers_keys_unavailable(
    jwks_server: JWKSServer,
) -> None:
    jwks_server.fault = "hang"
    verifier = CognitoVerifier(fast(jwks_server, jwks_timeout_seconds=30))
    token = jwks_server.issuer.access_token()
    waiting = [asyncio.ensure_future(verifier.verify(token)) for _ in range(3)]
    await wait_until(lambda: jwks_server.requests == 1)

    await verifier.aclose()
    outcomes = await asyncio.wait_for(asyncio.gather(*waiting, return_exceptions=True), 3)

    assert [type(outcome) for outcome in outcomes] == [KeysUnavailableError] * 3


async def test_closing_the_user_client_during_a_key_fetch_gives_keys_unavailable(
    jwks_server: JWKSServer,
) -> None:
    jwks_server.fault = "hang"
    client = httpx.AsyncClient()
    verifier = CognitoVerifier(fast(jwks_server, jwks_timeout_seconds=30), http_client=client)
    waiting = asyncio.ensure_future(verifier.verify(jwks_server.issuer.access_token()))
    await wait_until(lambda: jwks_server.requests == 1)

    await client.aclose()

    with pytest.raises(KeysUnavailableError):
        await asyncio.wait_for(waiting, 3)
    await verifier.aclose()


# -- redirects ------------------------------------------------------------------


async def test_a_user_client_that_follows_redirects_never_follows_a_jwks_redirect(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    issuer = jwks_server.issuer
    forger = LocalIssuer(user_pool_id=issuer.user_pool_id, client_id=issuer.client_id)
    jwks_server.document = forger.jwks()  # what the redirect target would hand out
    jwks_server.fault = "redirect"
    async with httpx.AsyncClient(follow_redirects=True) as client:
        verifier = make_verifier(fast(jwks_server), http_client=client)

        with pytest.raises(KeysUnavailableError):
            await verifier.verify(forger.access_token())

    assert jwks_server.paths == [urlsplit(jwks_server.url).path]


# -- a pool's two issuer forms (DESIGN §3) -----------------------------------------


def forms_transport(issuer: LocalIssuer, refused: set[str]) -> tuple[httpx.AsyncClient, list[str]]:
    """Cognito's JWKS URLs: 403 for those in ``refused``, the issuer's JWKS otherwise."""
    urls: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        urls.append(url)
        if url in refused:
            return httpx.Response(403, json={"message": "Forbidden"})
        return httpx.Response(200, json=issuer.jwks())

    return httpx.AsyncClient(transport=httpx.MockTransport(answer)), urls


@pytest.mark.parametrize(
    ("unused", "used"),
    [(ISS_NEW_FORM, ISS), (ISS, ISS_NEW_FORM)],
    ids=["pool_on_the_original_issuer", "pool_on_the_updated_issuer"],
)
async def test_hydrate_succeeds_quietly_when_one_issuer_form_answers_403(
    unused: str, used: str, make_verifier: MakeVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    issuer = LocalIssuer(user_pool_id=POOL)
    client, _ = forms_transport(issuer, {unused + JWKS_SUFFIX})
    verifier = make_verifier(issuer.settings(jwks_url=None), http_client=client)

    await verifier.hydrate()

    assert warnings_in(caplog) == []
    token = issuer.sign(access_claims(issuer, iss=used))
    assert verifier.verify_sync(token).iss == used
    await client.aclose()


async def test_the_issuer_form_that_answered_is_asked_first_at_the_next_refresh(
    make_verifier: MakeVerifier, clock: FakeClock
) -> None:
    issuer = LocalIssuer(user_pool_id=POOL)
    client, urls = forms_transport(issuer, {ISS + JWKS_SUFFIX})
    verifier = make_verifier(
        issuer.settings(jwks_url=None, jwks_ttl_seconds=TTL), http_client=client
    )
    await verifier.hydrate()
    clock.advance(TTL + 1)

    await verifier.hydrate()

    assert urls == [ISS + JWKS_SUFFIX, ISS_NEW_FORM + JWKS_SUFFIX, ISS_NEW_FORM + JWKS_SUFFIX]
    await client.aclose()


async def test_both_issuer_forms_failing_is_one_failed_fetch_logged_once(
    make_verifier: MakeVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    issuer = LocalIssuer(user_pool_id=POOL)
    client, urls = forms_transport(issuer, {ISS + JWKS_SUFFIX, ISS_NEW_FORM + JWKS_SUFFIX})
    verifier = make_verifier(issuer.settings(jwks_url=None), http_client=client)

    with pytest.raises(KeysUnavailableError):
        await verifier.hydrate()

    assert len(urls) == 2
    assert len(fetch_failures(caplog)) == 1
    await client.aclose()


async def test_a_replica_regions_issuer_is_not_an_alternative_of_the_home_region(
    make_verifier: MakeVerifier,
) -> None:
    issuer = LocalIssuer(user_pool_id=POOL)
    replica = f"https://cognito-idp.eu-west-1.amazonaws.com/{POOL}{JWKS_SUFFIX}"
    client, _ = forms_transport(issuer, {replica})
    verifier = make_verifier(
        issuer.settings(jwks_url=None, additional_regions=["eu-west-1"]), http_client=client
    )

    with pytest.raises(KeysUnavailableError):
        await verifier.hydrate()
    await client.aclose()


def test_issuer_form_twin_pairs_only_cognitos_own_jwks_urls() -> None:
    assert issuer_form_twin(ISS + JWKS_SUFFIX) == ISS_NEW_FORM + JWKS_SUFFIX
    assert issuer_form_twin(ISS_NEW_FORM + JWKS_SUFFIX) == ISS + JWKS_SUFFIX
    assert issuer_form_twin(f"http://127.0.0.1:9/{POOL}{JWKS_SUFFIX}") is None
    assert issuer_form_twin(ISS.replace("https", "http") + JWKS_SUFFIX) is None
    assert issuer_form_twin(ISS + JWKS_SUFFIX + "?x=1") is None


# -- plain http to an emulator (allow_insecure_http, DESIGN §3) ---------------------

EMULATOR_JWKS = f"http://localstack:4566/{POOL}{JWKS_SUFFIX}"


class ToLoopback(httpx.AsyncBaseTransport):
    """Stands in for docker-compose's name resolution: every host is this loopback server."""

    def __init__(self, server: JWKSServer) -> None:
        self.server = server
        self.inner = httpx.AsyncHTTPTransport()
        self.hosts: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.hosts.append(f"{request.url.scheme}://{request.url.netloc.decode()}")
        loopback = urlsplit(self.server.base_url)
        request.url = request.url.copy_with(host=loopback.hostname, port=loopback.port)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def test_an_http_emulator_jwks_url_is_refused_without_allow_insecure_http() -> None:
    issuer = LocalIssuer(user_pool_id=POOL)

    with pytest.raises(ValueError, match="COGNITO_ALLOW_INSECURE_HTTP"):
        issuer.settings(jwks_url=EMULATOR_JWKS)


async def test_an_http_emulator_jwks_url_serves_keys_with_allow_insecure_http(
    jwks_server: JWKSServer, make_verifier: MakeVerifier
) -> None:
    issuer = jwks_server.issuer
    transport = ToLoopback(jwks_server)
    async with httpx.AsyncClient(transport=transport) as client:
        verifier = make_verifier(
            issuer.settings(jwks_url=EMULATOR_JWKS, allow_insecure_http=True), http_client=client
        )

        assert (await verifier.verify(issuer.access_token())).username == "alice"
    assert transport.hosts == ["http://localstack:4566"]


def test_allow_insecure_http_logs_one_warning_at_construction_naming_the_setting(
    make_verifier: MakeVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    issuer = LocalIssuer(user_pool_id=POOL)
    settings = issuer.settings(
        jwks_url=EMULATOR_JWKS,
        identity_endpoint="http://localstack:4566/",
        allow_insecure_http=True,
    )

    make_verifier(settings)

    [warning] = warnings_in(caplog)
    assert "COGNITO_ALLOW_INSECURE_HTTP" in warning
    assert "jwks_url (COGNITO_JWKS_URL)" in warning
    assert "identity_endpoint (COGNITO_IDENTITY_ENDPOINT)" in warning


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"allow_insecure_http": True},
        {"allow_insecure_http": True, "jwks_url": f"http://127.0.0.1:9/{POOL}{JWKS_SUFFIX}"},
    ],
    ids=["default", "allowed_but_unused", "loopback_http"],
)
def test_no_insecure_http_warning_unless_plain_http_reaches_another_host(
    overrides: dict[str, Any], make_verifier: MakeVerifier, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger=LOGGER)

    make_verifier(LocalIssuer(user_pool_id=POOL).settings(**overrides))

    assert warnings_in(caplog) == []
