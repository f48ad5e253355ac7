"""Specification of ``CognitoVerifier``'s construction and public API (DESIGN.md §4).

Proves that a verifier takes one pool's settings or a list of them and refuses
an empty list, a pool configured twice and an issuer claimed by two pools;
that ``settings`` lists the pools in order; that ``cache_jwks`` needs a pool id
when several pools are configured and refuses an unknown pool or a JWKS
without a usable key; that ``hydrate()`` fetches each distinct JWKS URL once
and raises ``KeysUnavailableError`` when one fails; that the result cache hands
back the very claims object for a repeated token, is bounded, and is off for a
pool with ``result_cache_size=0``; that ``verify_sync`` uses cached keys only;
that ``verify_sync`` from many threads lets only ``InvalidTokenError`` and
``KeysUnavailableError`` escape; and that ``aclose()`` releases the verifier after
use. The individual verification rules are specified in ``test_security.py``, key fetching and
caching in ``test_jwks.py``.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from fastapi_cognito_guard import (
    CognitoSettings,
    CognitoVerifier,
    InvalidTokenError,
    KeysUnavailableError,
    RevocationList,
)
from fastapi_cognito_guard.testing import LocalIssuer

REGION = "eu-central-1"
REPLICA = "us-east-1"
JWKS_SUFFIX = "/.well-known/jwks.json"

MakeVerifier = Callable[..., CognitoVerifier]


class RecordingTransport(httpx.AsyncBaseTransport):
    """Answers JWKS requests with the issuer whose pool id is in the URL; records URLs.

    ``fail`` names pool ids whose JWKS URLs answer HTTP 500.
    """

    def __init__(self, *issuers: LocalIssuer, fail: tuple[str, ...] = ()) -> None:
        self.issuers = issuers
        self.fail = fail
        self.urls: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        self.urls.append(url)
        if any(pool in url for pool in self.fail):
            return httpx.Response(500)
        for issuer in self.issuers:
            if issuer.user_pool_id in url:
                return await issuer.transport.handle_async_request(request)
        return httpx.Response(404)


def iss_new_form(issuer: LocalIssuer) -> str:
    return f"https://issuer-cognito-idp.{REGION}.amazonaws.com/{issuer.user_pool_id}"


def iss_replica(issuer: LocalIssuer) -> str:
    return f"https://cognito-idp.{REPLICA}.amazonaws.com/{issuer.user_pool_id}"


@pytest.fixture
async def make_verifier() -> AsyncIterator[MakeVerifier]:
    """Builds verifiers (``CognitoVerifier``'s arguments) and closes them after the test."""
    made: list[CognitoVerifier] = []

    def make(*args: Any, **kwargs: Any) -> CognitoVerifier:
        verifier = CognitoVerifier(*args, **kwargs)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


# -- construction ------------------------------------------------------------------


def test_verifier_takes_the_settings_of_one_pool(issuer: LocalIssuer) -> None:
    settings = issuer.settings()

    assert CognitoVerifier(settings).settings == [settings]


def test_verifier_takes_a_list_of_settings_one_per_pool(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    first, second = issuer.settings(), other_issuer.settings()

    assert CognitoVerifier([first, second]).settings == [first, second]


def test_verifier_takes_a_tuple_of_settings(issuer: LocalIssuer, other_issuer: LocalIssuer) -> None:
    pools = (issuer.settings(), other_issuer.settings())

    assert CognitoVerifier(pools).settings == list(pools)


def test_settings_property_returns_the_very_settings_objects(issuer: LocalIssuer) -> None:
    settings = issuer.settings()

    assert CognitoVerifier([settings]).settings[0] is settings


def test_empty_list_of_settings_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one"):
        CognitoVerifier([])


def test_same_pool_configured_twice_is_rejected(issuer: LocalIssuer) -> None:
    with pytest.raises(ValueError, match=issuer.user_pool_id):
        CognitoVerifier([issuer.settings(), issuer.settings(client_ids=["another-client"])])


def test_two_pools_sharing_an_explicit_issuer_are_rejected(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    shared = "https://idp.example.com/shared"

    with pytest.raises(ValueError, match="issuer"):
        CognitoVerifier([issuer.settings(issuer=shared), other_issuer.settings(issuer=shared)])


def test_pool_claiming_another_pools_default_issuer_is_rejected(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    with pytest.raises(ValueError, match="issuer"):
        CognitoVerifier([issuer.settings(), other_issuer.settings(issuer=issuer.issuer)])


def test_pools_differing_only_in_replica_regions_still_do_not_share_issuers(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    pools = [
        issuer.settings(additional_regions=[REPLICA]),
        other_issuer.settings(additional_regions=[REPLICA]),
    ]

    assert len(CognitoVerifier(pools).settings) == 2


# -- cache_jwks ----------------------------------------------------------------------


async def test_cache_jwks_without_a_pool_id_seeds_the_only_pool(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())

    verifier.cache_jwks(issuer.jwks())

    assert verifier.verify_sync(issuer.access_token()).sub


async def test_cache_jwks_without_a_pool_id_is_rejected_when_several_pools_are_configured(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier([issuer.settings(), other_issuer.settings()])

    with pytest.raises(ValueError, match="user_pool_id"):
        verifier.cache_jwks(issuer.jwks())


async def test_cache_jwks_with_a_pool_id_seeds_only_that_pool(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier([issuer.settings(), other_issuer.settings()])

    verifier.cache_jwks(other_issuer.jwks(), user_pool_id=other_issuer.user_pool_id)

    assert verifier.verify_sync(other_issuer.access_token()).user_pool_id == (
        other_issuer.user_pool_id
    )
    with pytest.raises(KeysUnavailableError):
        verifier.verify_sync(issuer.access_token())


async def test_cache_jwks_for_an_unknown_pool_is_rejected(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())

    with pytest.raises(ValueError, match="eu-central-1_Unknown"):
        verifier.cache_jwks(issuer.jwks(), user_pool_id="eu-central-1_Unknown")


@pytest.mark.parametrize(
    "jwks",
    [
        {"keys": []},
        {"keys": [{"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}]},
        {"keys": [{"kid": "k", "kty": "RSA", "n": "AQAB", "e": "AQAB"}]},
        {},
        {"keys": "none"},
    ],
    ids=["empty", "ec-only", "tiny-rsa", "no-keys", "keys-not-a-list"],
)
async def test_cache_jwks_without_a_usable_key_is_rejected(
    issuer: LocalIssuer, make_verifier: MakeVerifier, jwks: dict[str, Any]
) -> None:
    verifier = make_verifier(issuer.settings())

    with pytest.raises(ValueError, match="key"):
        verifier.cache_jwks(jwks)


async def test_cache_jwks_seeds_every_issuer_of_the_pool(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings(jwks_url=None, additional_regions=[REPLICA]))

    verifier.cache_jwks(issuer.jwks())

    for iss in (issuer.issuer, iss_new_form(issuer), iss_replica(issuer)):
        assert verifier.verify_sync(issuer.access_token(iss=iss)).iss == iss


# -- hydrate -------------------------------------------------------------------------


async def test_hydrate_fetches_each_pools_keys_once_per_region(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    # A pool's two issuer forms are alternatives (DESIGN §3): one fetch serves both.
    transport = RecordingTransport(issuer, other_issuer)
    verifier = make_verifier(
        [
            issuer.settings(jwks_url=None, additional_regions=[REPLICA]),
            other_issuer.settings(jwks_url=None),
        ],
        http_client=httpx.AsyncClient(transport=transport),
    )
    before, other_before = issuer.jwks_requests, other_issuer.jwks_requests

    await verifier.hydrate()

    assert sorted(transport.urls) == sorted(
        f"{iss}{JWKS_SUFFIX}" for iss in (issuer.issuer, iss_replica(issuer), other_issuer.issuer)
    )
    assert issuer.jwks_requests - before == 2
    assert other_issuer.jwks_requests - other_before == 1


async def test_hydrate_fetches_a_jwks_url_shared_by_issuers_once(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    # issuer.settings() points both issuer forms at one jwks_url.
    verifier = make_verifier(
        issuer.settings(additional_regions=[REPLICA]),
        http_client=httpx.AsyncClient(transport=issuer.transport),
    )
    before = issuer.jwks_requests

    await verifier.hydrate()

    assert issuer.jwks_requests - before == 1


async def test_hydrated_keys_verify_tokens_without_further_requests(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    transport = RecordingTransport(issuer, other_issuer)
    verifier = make_verifier(
        [issuer.settings(jwks_url=None), other_issuer.settings(jwks_url=None)],
        http_client=httpx.AsyncClient(transport=transport),
    )
    await verifier.hydrate()
    fetched = len(transport.urls)

    assert verifier.verify_sync(issuer.access_token()).user_pool_id == issuer.user_pool_id
    assert (await verifier.verify(other_issuer.access_token(iss=iss_new_form(other_issuer)))).sub
    assert len(transport.urls) == fetched


async def test_hydrate_raises_keys_unavailable_when_a_jwks_url_fails(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    transport = RecordingTransport(issuer, other_issuer, fail=(other_issuer.user_pool_id,))
    verifier = make_verifier(
        [issuer.settings(jwks_url=None), other_issuer.settings(jwks_url=None)],
        http_client=httpx.AsyncClient(transport=transport),
    )

    with pytest.raises(KeysUnavailableError):
        await verifier.hydrate()

    assert len(transport.urls) == 3  # the healthy pool once, both forms of the failing one
    assert verifier.verify_sync(issuer.access_token()).sub  # the healthy pool is ready


async def test_hydrate_raises_keys_unavailable_when_the_jwks_has_no_usable_key(
    make_verifier: MakeVerifier, issuer: LocalIssuer
) -> None:
    def empty_jwks(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"keys": []})

    verifier = make_verifier(
        issuer.settings(), http_client=httpx.AsyncClient(transport=httpx.MockTransport(empty_jwks))
    )

    with pytest.raises(KeysUnavailableError):
        await verifier.hydrate()


# -- the result cache ----------------------------------------------------------------


async def test_repeated_token_returns_the_identical_claims_object(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    token = issuer.access_token()

    first = await verifier.verify(token)

    assert await verifier.verify(token) is first
    assert verifier.verify_sync(token) is first


# -- the kid picks the pool (no iss scan) --------------------------------------------------


def counting_issuer_scans(
    monkeypatch: pytest.MonkeyPatch, verifier: CognitoVerifier
) -> list[bytes]:
    """Record every ``iss`` scan (the payload read before the signature) of ``verifier``."""
    scans: list[bytes] = []
    scan = verifier._route_by_issuer

    def counted(payload: bytes, kid: str) -> Any:
        scans.append(payload)
        return scan(payload, kid)

    monkeypatch.setattr(verifier, "_route_by_issuer", counted)
    return scans


@pytest.mark.parametrize("jwks_url", ["local", "cognito"], ids=["jwks_url_set", "cognito_urls"])
async def test_kid_picks_a_two_form_pool_without_an_iss_scan(
    issuer: LocalIssuer,
    make_verifier: MakeVerifier,
    monkeypatch: pytest.MonkeyPatch,
    jwks_url: str,
) -> None:
    """The usual pool (both issuer forms, one key set): the verify methods' own try."""
    overrides: dict[str, Any] = {"jwks_url": None} if jwks_url == "cognito" else {}
    verifier = make_verifier(issuer.settings(result_cache_size=0, **overrides))
    verifier.cache_jwks(issuer.jwks())
    scans = counting_issuer_scans(monkeypatch, verifier)

    for iss in (issuer.issuer, iss_new_form(issuer)):
        assert verifier.verify_sync(issuer.access_token(iss=iss)).iss == iss
        assert (await verifier.verify(issuer.access_token(iss=iss))).iss == iss

    assert scans == []


@pytest.mark.parametrize("jwks_url", ["local", "cognito"], ids=["jwks_url_set", "cognito_urls"])
def test_kid_picks_a_pool_with_both_issuer_forms_and_a_replica_without_an_iss_scan(
    issuer: LocalIssuer,
    make_verifier: MakeVerifier,
    monkeypatch: pytest.MonkeyPatch,
    jwks_url: str,
) -> None:
    overrides: dict[str, Any] = {"jwks_url": None} if jwks_url == "cognito" else {}
    settings = issuer.settings(additional_regions=[REPLICA], result_cache_size=0, **overrides)
    verifier = make_verifier(settings)
    verifier.cache_jwks(issuer.jwks())
    scans = counting_issuer_scans(monkeypatch, verifier)

    for iss in (issuer.issuer, iss_new_form(issuer), iss_replica(issuer)):
        assert verifier.verify_sync(issuer.access_token(iss=iss)).iss == iss

    assert scans == []


def test_kid_picks_one_of_several_pools_without_an_iss_scan(
    issuer: LocalIssuer,
    other_issuer: LocalIssuer,
    make_verifier: MakeVerifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    verifier = make_verifier([issuer.settings(), other_issuer.settings()])
    verifier.cache_jwks(issuer.jwks(), user_pool_id=issuer.user_pool_id)
    verifier.cache_jwks(other_issuer.jwks(), user_pool_id=other_issuer.user_pool_id)
    scans = counting_issuer_scans(monkeypatch, verifier)

    assert verifier.verify_sync(issuer.access_token()).user_pool_id == issuer.user_pool_id
    assert verifier.verify_sync(other_issuer.access_token()).user_pool_id == (
        other_issuer.user_pool_id
    )
    assert scans == []


def test_kid_held_by_two_pools_is_routed_by_the_iss_scan(
    issuer: LocalIssuer,
    other_issuer: LocalIssuer,
    make_verifier: MakeVerifier,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both pools trust the same key: only ``iss`` can tell them apart."""
    first, second = issuer.settings(), other_issuer.settings()
    verifier = make_verifier([first, second])
    for pool in (first, second):
        verifier.cache_jwks(issuer.jwks(), user_pool_id=pool.user_pool_id)
    scans = counting_issuer_scans(monkeypatch, verifier)
    token = issuer.access_token(iss=second.issuers[0], client_id=other_issuer.client_id)

    assert verifier.verify_sync(token).user_pool_id == other_issuer.user_pool_id
    assert len(scans) == 1


async def test_kid_of_a_pool_with_fresh_keys_does_not_hide_a_pool_not_fetched_yet(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    """Emulators sign every pool with one key: the second pool's token must reach its own
    pool (and fetch its keys) though the first pool's fresh keys hold the same kid."""
    first, second = issuer.settings(), other_issuer.settings()
    async with httpx.AsyncClient(transport=issuer.transport) as client:  # one key everywhere
        verifier = make_verifier([first, second], http_client=client)
        verifier.cache_jwks(issuer.jwks(), user_pool_id=first.user_pool_id)
        token = issuer.access_token(iss=second.issuers[0], client_id=other_issuer.client_id)

        claims = await verifier.verify(token)

    assert claims.user_pool_id == other_issuer.user_pool_id


# -- what callers build from verified claims (verify(token, build=...)) ----------------


class CountingBuilder:
    """``build`` for ``verify``: records the claims it is called with."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def __call__(self, claims: object) -> object:
        self.calls.append(claims)
        return object()


async def test_built_object_is_built_once_per_token_and_reused(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    build, token = CountingBuilder(), issuer.access_token()

    first = await verifier.verify(token, build=build)

    assert await verifier.verify(token, build=build) is first
    assert verifier.verify_sync(token, build=build) is first
    assert build.calls == [verifier.verify_sync(token)]


async def test_each_builder_builds_its_own_object_once(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    one, two, token = CountingBuilder(), CountingBuilder(), issuer.access_token()

    for _ in range(3):
        assert verifier.verify_sync(token, build=one) is not verifier.verify_sync(token, build=two)

    assert (len(one.calls), len(two.calls)) == (1, 1)


async def test_without_a_result_cache_every_verify_builds_afresh(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings(result_cache_size=0))
    verifier.cache_jwks(issuer.jwks())
    build, token = CountingBuilder(), issuer.access_token()

    verifier.verify_sync(token, build=build)
    verifier.verify_sync(token, build=build)

    assert len(build.calls) == 2


async def test_cached_token_whose_session_was_revoked_is_refused_not_its_built_object(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    verifier.revocation = revocations = RevocationList(3600)
    build, token = CountingBuilder(), issuer.access_token()
    claims = verifier.verify_sync(token)
    verifier.verify_sync(token, build=build)
    assert claims.origin_jti is not None

    revocations.revoke_session(claims.origin_jti)

    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify_sync(token, build=build)
    assert caught.value.code == "revoked"
    assert len(build.calls) == 1


async def test_retired_signing_key_drops_the_built_object_with_the_cached_result(
    make_verifier: MakeVerifier,
) -> None:
    issuer = LocalIssuer()  # its own: this test rotates the keys
    verifier = make_verifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    build, token = CountingBuilder(), issuer.access_token()
    verifier.verify_sync(token, build=build)

    issuer.rotate_keys()
    verifier.cache_jwks(issuer.jwks())

    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify_sync(token, build=build)
    assert caught.value.code == "unknown_kid"
    assert len(build.calls) == 1


async def test_result_cache_size_zero_verifies_every_time(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    # The conftest verifier has result_cache_size=0.
    token = issuer.access_token()

    first = await verifier.verify(token)
    second = await verifier.verify(token)

    assert second is not first
    assert second == first


async def test_result_cache_is_bounded_and_evicts_the_oldest_entry(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings(result_cache_size=3))
    verifier.cache_jwks(issuer.jwks())
    tokens = [issuer.access_token(f"user{i}") for i in range(5)]
    claims = [verifier.verify_sync(token) for token in tokens]

    assert verifier.verify_sync(tokens[4]) is claims[4]  # still cached
    again = verifier.verify_sync(tokens[0])  # evicted: verified afresh

    assert again is not claims[0]
    assert again == claims[0]


async def test_pool_with_result_cache_size_zero_is_never_cached_in_a_multi_pool_verifier(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier([issuer.settings(result_cache_size=0), other_issuer.settings()])
    verifier.cache_jwks(issuer.jwks(), user_pool_id=issuer.user_pool_id)
    verifier.cache_jwks(other_issuer.jwks(), user_pool_id=other_issuer.user_pool_id)
    uncached, cached = issuer.access_token(), other_issuer.access_token()

    assert await verifier.verify(uncached) is not await verifier.verify(uncached)
    assert verifier.verify_sync(uncached) is not verifier.verify_sync(uncached)
    assert await verifier.verify(cached) is await verifier.verify(cached)


async def test_rejected_token_is_rejected_again_on_every_call(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    token = issuer.access_token(client_id="someone-else")

    for _ in range(2):
        with pytest.raises(InvalidTokenError) as caught:
            await verifier.verify(token)
        assert caught.value.code == "wrong_client"


# -- verify_sync ---------------------------------------------------------------------


async def test_verify_sync_without_cached_keys_raises_keys_unavailable_without_fetching(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    transport = RecordingTransport(issuer)
    verifier = make_verifier(issuer.settings(), http_client=httpx.AsyncClient(transport=transport))

    with pytest.raises(KeysUnavailableError):
        verifier.verify_sync(issuer.access_token())

    assert transport.urls == []


async def test_verify_sync_uses_keys_from_cache_jwks(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    transport = RecordingTransport(issuer)
    verifier = make_verifier(issuer.settings(), http_client=httpx.AsyncClient(transport=transport))
    verifier.cache_jwks(issuer.jwks())

    assert verifier.verify_sync(issuer.access_token()).sub
    assert transport.urls == []


async def test_verify_sync_with_an_unknown_kid_does_not_refetch(
    issuer: LocalIssuer, make_verifier: MakeVerifier
) -> None:
    transport = RecordingTransport(issuer)
    verifier = make_verifier(issuer.settings(), http_client=httpx.AsyncClient(transport=transport))
    verifier.cache_jwks(issuer.jwks())
    claims = {"sub": "x", "iss": issuer.issuer, "token_use": "access", "client_id": "test-client"}
    token = issuer.sign({**claims, "exp": 4_000_000_000}, header={"kid": "new", "alg": "RS256"})

    with pytest.raises(InvalidTokenError) as caught:
        verifier.verify_sync(token)

    assert caught.value.code == "unknown_kid"
    assert transport.urls == []


def test_verify_sync_needs_no_event_loop(issuer: LocalIssuer) -> None:
    verifier = CognitoVerifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())

    assert verifier.verify_sync(issuer.access_token("bob")).username == "bob"


# -- aclose --------------------------------------------------------------------------


async def test_aclose_after_use_closes_the_client_the_verifier_created(
    issuer: LocalIssuer,
) -> None:
    with issuer.serve():
        verifier = CognitoVerifier(issuer.settings())
        assert (await verifier.verify(issuer.access_token())).sub

        await verifier.aclose()

    assert verifier._jwks._client is not None
    assert verifier._jwks._client.is_closed


async def test_aclose_of_an_unused_verifier_succeeds(issuer: LocalIssuer) -> None:
    await CognitoVerifier(issuer.settings()).aclose()


async def test_aclose_leaves_a_client_passed_in_open(issuer: LocalIssuer) -> None:
    async with httpx.AsyncClient(transport=issuer.transport) as client:
        verifier = CognitoVerifier(issuer.settings(), http_client=client)
        await verifier.hydrate()

        await verifier.aclose()

        assert not client.is_closed


async def test_settings_built_in_code_work_end_to_end(issuer: LocalIssuer) -> None:
    settings = CognitoSettings(
        user_pool_id=issuer.user_pool_id, client_ids=[issuer.client_id], token_use="any"
    )
    async with httpx.AsyncClient(transport=issuer.transport) as client:
        verifier = CognitoVerifier(settings, http_client=client)
        try:
            assert (await verifier.verify(issuer.access_token())).token_use == "access"
            assert (await verifier.verify(issuer.id_token())).token_use == "id"
        finally:
            await verifier.aclose()


def test_verify_sync_from_many_threads_lets_only_token_errors_escape(issuer: LocalIssuer) -> None:
    """Threads share one small result cache while entries are inserted, evicted, expire
    and are dropped for a retired key; a tiny switch interval forces interleavings."""
    verifier = CognitoVerifier(issuer.settings(result_cache_size=4, leeway_seconds=0))
    verifier.cache_jwks(issuer.jwks())
    now = int(time.time())
    tokens = [issuer.access_token(f"user{i}") for i in range(12)]
    tokens += [issuer.access_token(f"brief{i}", exp=now + 1, iat=now) for i in range(6)]
    tokens.append(tokens[0][:-4] + "AAAA")  # a bad signature
    jwks_url = verifier.settings[0].jwks_url_for(issuer.issuer)
    escaped: list[BaseException] = []
    leaked: list[str] = []
    deadline = time.monotonic() + 2.5

    def hammer(offset: int) -> None:
        i = offset
        while time.monotonic() < deadline:
            token = tokens[i % len(tokens)]
            i += 1
            try:
                verifier.verify_sync(token)
            except (InvalidTokenError, KeysUnavailableError) as err:
                if any(part in str(err) or part in repr(err) for part in token.split(".")):
                    leaked.append(err.code)
            except BaseException as err:  # noqa: BLE001 - what escapes is the finding
                escaped.append(err)
            if offset == 0 and i % 7 == 0:
                verifier._forget_tokens_signed_by(jwks_url, frozenset({issuer.kid}))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=hammer, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        sys.setswitchinterval(interval)
    assert not any(thread.is_alive() for thread in threads)
    assert escaped == []
    assert leaked == []
