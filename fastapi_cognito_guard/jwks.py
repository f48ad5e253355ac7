"""The JWKS cache: signing keys per JWKS URL, fetched once and kept fresh.

Per URL there is at most one fetch in flight; concurrent callers await it.
Keys are refreshed after their TTL (in the background while the old ones still
serve), refetched once when an unknown ``kid`` shows up (then not again for
that URL until a cooldown has passed, so a flood of made-up kids costs one
fetch), and kept serving for a bounded time while refreshes fail. When no keys
can be had, callers get :class:`KeysUnavailableError`, never a false reject.

Fetches never follow redirects, whatever the HTTP client is configured to do:
a redirect could hand the verifier someone else's keys.

Cognito publishes a pool's keys under both of its issuer forms
(``cognito-idp.{region}`` and ``issuer-cognito-idp.{region}``), but a pool
answers 403 on the form it does not use. When both forms of one pool are
registered they are alternatives sharing one key set: one fetch serves both,
from whichever form answers (quietly; the form that answered is tried first
next time), and only both failing is a failed fetch.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from . import telemetry
from .capped import ACCEPT_ENCODING, BodyTooLarge, UnreadableBody, read_capped
from .errors import InvalidTokenError, KeysUnavailableError
from .keys import VerifyingKey, build_keys

__all__ = [
    "MAX_JWKS_BYTES",
    "JWKSCache",
    "JWKSFetchError",
    "JWKSPolicy",
    "download_jwks",
    "issuer_form_twin",
]

MAX_JWKS_BYTES = 64 * 1024
"""A JWKS response larger than this is a failed fetch."""

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class JWKSPolicy:
    """How one JWKS URL is cached (all durations in seconds)."""

    ttl: float = 3600
    cooldown: float = 10
    timeout: float = 3
    max_stale: float = 86400


class JWKSFetchError(Exception):
    """A JWKS fetch that produced no usable document; the message says why."""


_COGNITO_JWKS = re.compile(
    r"https://(?P<form>cognito-idp|issuer-cognito-idp)\.(?P<rest>[a-z0-9-]+\.amazonaws\.com/"
    r"[^/]+/\.well-known/jwks\.json)"
)
_OTHER_FORM = {"cognito-idp": "issuer-cognito-idp", "issuer-cognito-idp": "cognito-idp"}


def issuer_form_twin(url: str) -> str | None:
    """The same pool's JWKS URL under Cognito's other issuer form, or None.

    Only URLs of Cognito's own shape have a twin; a configured ``jwks_url``
    elsewhere (a local issuer, an emulator) has none.
    """
    match = _COGNITO_JWKS.fullmatch(url)
    if match is None:
        return None
    return f"https://{_OTHER_FORM[match['form']]}.{match['rest']}"


async def download_jwks(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """GET one JWKS document: no redirects, at most ``MAX_JWKS_BYTES`` read, a JSON object.

    Raises :class:`JWKSFetchError` (or an ``httpx.HTTPError`` for transport
    failures); a hostile body is never read past the limit.
    """
    if client.is_closed:
        raise JWKSFetchError("the HTTP client is closed")
    headers = {"Accept": "application/json", "Accept-Encoding": ACCEPT_ENCODING}
    async with client.stream("GET", url, headers=headers, follow_redirects=False) as response:
        if response.status_code != 200:
            raise JWKSFetchError(f"HTTP {response.status_code}")
        declared = response.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_JWKS_BYTES:
            raise JWKSFetchError(f"response is larger than {MAX_JWKS_BYTES} bytes")
        try:  # counted decompressed, as it arrives
            body = await read_capped(response, MAX_JWKS_BYTES)
        except BodyTooLarge:
            raise JWKSFetchError(f"response is larger than {MAX_JWKS_BYTES} bytes") from None
        except UnreadableBody as exc:
            raise JWKSFetchError(str(exc)) from None
    try:
        document = json.loads(body)
    except RecursionError:
        raise JWKSFetchError("response is JSON nested too deeply") from None
    except ValueError:
        raise JWKSFetchError("response is not JSON") from None
    if not isinstance(document, dict):
        raise JWKSFetchError("response is not a JSON object")
    return document


class _KeySet:
    """The cached state of one JWKS URL."""

    __slots__ = (
        "failed_at",
        "failing",
        "fetched_at",
        "inflight",
        "keys",
        "miss_refetch_at",
        "policy",
        "sources",
    )

    def __init__(self, policy: JWKSPolicy, url: str) -> None:
        self.policy = policy
        #: The URLs this key set serves, in the order a fetch tries them: one, or
        #: a pool's two issuer forms.
        self.sources: tuple[str, ...] = (url,)
        self.keys: dict[str, VerifyingKey] | None = None
        self.fetched_at = 0.0
        self.failed_at: float | None = None
        self.failing = False
        self.miss_refetch_at: float | None = None
        self.inflight: asyncio.Task[None] | None = None


RetiredKeysCallback = Callable[[str, frozenset[str]], None]


class JWKSCache:
    """Signing keys by JWKS URL and ``kid``, with single-flight fetches."""

    def __init__(
        self,
        http_client: httpx.AsyncClient | None = None,
        *,
        on_keys_retired: RetiredKeysCallback | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = http_client
        self._owns_client = http_client is None
        self._on_keys_retired = on_keys_retired
        self._clock = clock
        self._sets: dict[str, _KeySet] = {}

    def register(self, url: str, policy: JWKSPolicy | None = None) -> None:
        """Declare a JWKS URL and how it is cached (the first policy for a URL wins).

        The same pool's URL under the other issuer form shares one key set with
        it: one fetch serves both, from whichever form answers.
        """
        if url in self._sets:
            return
        twin = issuer_form_twin(url)
        twin_keyset = self._sets.get(twin) if twin is not None else None
        if twin_keyset is not None:
            twin_keyset.sources = (*twin_keyset.sources, url)
            self._sets[url] = twin_keyset
        else:
            self._sets[url] = _KeySet(policy or JWKSPolicy(), url)

    def key_set_id(self, url: str) -> int:
        """Equal for URLs that share one key set (a pool's two issuer forms), distinct
        otherwise: how the verifier looks a ``kid`` up once per key set."""
        return id(self._keyset(url))

    def _keyset(self, url: str) -> _KeySet:
        keyset = self._sets.get(url)
        if keyset is None:
            keyset = self._sets[url] = _KeySet(JWKSPolicy(), url)
        return keyset

    # -- lookups ---------------------------------------------------------------

    def fresh_key(self, url: str, kid: str) -> VerifyingKey | None:
        """The key if it is cached and within its TTL; the hot path, no awaiting
        (``fresh_keys`` written out: this runs on every uncached verification)."""
        keyset = self._sets.get(url)
        if keyset is None or keyset.keys is None:
            return None
        if self._clock() - keyset.fetched_at >= keyset.policy.ttl:
            return None
        return keyset.keys.get(kid)

    def fresh_keys(self, url: str) -> Mapping[str, VerifyingKey] | None:
        """The URL's keys by ``kid`` while within their TTL; None when none are cached
        or they are older (whether a ``kid`` is missing is then unknown)."""
        keyset = self._sets.get(url)
        if keyset is None or keyset.keys is None:
            return None
        if self._clock() - keyset.fetched_at >= keyset.policy.ttl:
            return None
        return keyset.keys

    def cached_key(self, url: str, kid: str) -> VerifyingKey:
        """The key from what is cached, stale keys included; never fetches."""
        keyset = self._keyset(url)
        if keyset.keys is None:
            raise KeysUnavailableError(
                "no signing keys are cached for this issuer yet (hydrate() or cache_jwks() first)"
            )
        age = self._clock() - keyset.fetched_at
        if age >= keyset.policy.ttl + keyset.policy.max_stale:
            raise KeysUnavailableError("the cached signing keys are too old to use")
        return self._known(keyset, kid)

    def usable(self, url: str) -> bool:
        """Whether the URL's cached keys may verify tokens now (fresh, or stale within
        ``max_stale``): what readiness means."""
        keyset = self._sets.get(url)
        if keyset is None or keyset.keys is None:
            return False
        return self._clock() - keyset.fetched_at < keyset.policy.ttl + keyset.policy.max_stale

    def prefetch(self, url: str) -> None:
        """Start a background fetch of the URL's JWKS unless one is in flight or the
        last one failed within the cooldown (needs a running event loop)."""
        self._refresh_in_background(self._keyset(url))

    async def get_key(self, url: str, kid: str) -> VerifyingKey:
        """The key for ``kid``, fetching or refreshing the URL's JWKS as needed."""
        keyset = self._keyset(url)
        if keyset.keys is not None:
            policy = keyset.policy
            age = self._clock() - keyset.fetched_at
            if age < policy.ttl + policy.max_stale:
                key = keyset.keys.get(kid)
                if key is None:
                    return await self._after_miss(keyset, kid)
                if age >= policy.ttl:
                    self._refresh_in_background(keyset)
                return key
        await self._refresh(keyset, respect_backoff=True)
        return self._known(keyset, kid)

    def _known(self, keyset: _KeySet, kid: str) -> VerifyingKey:
        assert keyset.keys is not None
        key = keyset.keys.get(kid)
        if key is None:
            raise InvalidTokenError("unknown_kid", "token kid is not in the issuer's JWKS")
        return key

    async def _after_miss(self, keyset: _KeySet, kid: str) -> VerifyingKey:
        """An unknown kid: refetch once, then not again until the cooldown ends."""
        if keyset.inflight is not None:
            await self._await_inflight(keyset)
        elif self._may_refetch_for_miss(keyset):
            keyset.miss_refetch_at = self._clock()
            await self._refresh(keyset, respect_backoff=False)
        elif keyset.failing:
            raise self._unavailable(keyset)
        return self._known(keyset, kid)

    def _may_refetch_for_miss(self, keyset: _KeySet) -> bool:
        """One kid-miss refetch per cooldown, and none within a cooldown of a failure.

        Routine fetches (cold start, TTL, hydrate) do not count: a key that Cognito
        published just after them is still picked up by the first token using it.
        """
        last_miss = keyset.miss_refetch_at
        if last_miss is not None and self._clock() - last_miss < keyset.policy.cooldown:
            return False
        return not self._in_backoff(keyset)

    def _in_backoff(self, keyset: _KeySet) -> bool:
        """Within a cooldown of a failed fetch: no new attempt yet."""
        failed_at = keyset.failed_at
        return failed_at is not None and self._clock() - failed_at < keyset.policy.cooldown

    # -- fetching --------------------------------------------------------------

    def _unavailable(self, keyset: _KeySet) -> KeysUnavailableError:
        wait = keyset.policy.cooldown
        if keyset.failed_at is not None:
            wait = keyset.failed_at + keyset.policy.cooldown - self._clock()
        return KeysUnavailableError("the issuer's signing keys cannot be fetched", retry_after=wait)

    async def _refresh(self, keyset: _KeySet, *, respect_backoff: bool) -> None:
        """Fetch the URL's JWKS, joining a fetch already in flight."""
        if keyset.inflight is None:
            if respect_backoff and self._in_backoff(keyset):
                raise self._unavailable(keyset)
            self._start_fetch(keyset)
        await self._await_inflight(keyset)

    async def _await_inflight(self, keyset: _KeySet) -> None:
        """Wait for the fetch in flight without being cancelled by its end.

        ``asyncio.wait`` (unlike awaiting the task or a shield of it) returns when
        the fetch was cancelled by ``aclose()``; a caller that was not cancelled
        itself then gets ``KeysUnavailableError``, not ``CancelledError``.
        """
        task = keyset.inflight
        assert task is not None
        await asyncio.wait((task,))
        if task.cancelled():
            raise KeysUnavailableError("the signing-key fetch was stopped: the verifier closed")
        task.result()

    def _refresh_in_background(self, keyset: _KeySet) -> None:
        if keyset.inflight is None and not self._in_backoff(keyset):
            self._start_fetch(keyset)

    def _start_fetch(self, keyset: _KeySet) -> None:
        task = asyncio.get_running_loop().create_task(self._fetch(keyset))
        keyset.inflight = task

        def _done(done: asyncio.Task[None]) -> None:
            keyset.inflight = None
            if not done.cancelled():
                done.exception()  # retrieved here, raised to the callers that awaited it

        task.add_done_callback(_done)

    async def refresh(self, url: str) -> None:
        """Fetch the URL's JWKS now (joining a fetch in flight); used to prefetch."""
        await self._refresh(self._keyset(url), respect_backoff=False)

    async def _fetch(self, keyset: _KeySet) -> None:
        started = telemetry.clock()
        try:
            document = await asyncio.wait_for(self._download(keyset), keyset.policy.timeout)
            keys = build_keys(document)
            if not keys:
                raise JWKSFetchError("the JWKS has no usable RS256 signing key")
        except (
            httpx.HTTPError,
            JWKSFetchError,
            ValueError,  # build_keys: no "keys" list
            asyncio.TimeoutError,
        ) as exc:
            telemetry.jwks_fetched(started, telemetry.fetch_outcome(exc))
            keyset.failed_at = self._clock()
            if not keyset.failing:
                keyset.failing = True
                logger.warning(
                    "JWKS fetch from %s failed: %s",
                    keyset.sources[0],
                    _describe(exc),
                    extra=telemetry.log_extra("keys_unavailable", _pool_of(keyset.sources[0])),
                )
            raise self._unavailable(keyset) from None
        telemetry.jwks_fetched(started, "ok")
        self._store(keyset, keys)

    def _http(self) -> httpx.AsyncClient:
        """The HTTP client; one this cache owns is (re)made on demand, so a closed
        cache can serve again (an app whose lifespan runs twice, as in tests)."""
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient(follow_redirects=False)
        return self._client

    async def _download(self, keyset: _KeySet) -> dict[str, Any]:
        """The JWKS from the first of the key set's sources that answers.

        A source that answered is tried first from then on, so a pool's unused
        issuer form costs one request per process, not one per refresh.
        """
        failures: list[tuple[str, httpx.HTTPError | JWKSFetchError]] = []
        for source in keyset.sources:
            try:
                document = await download_jwks(self._http(), source)
            except (httpx.HTTPError, JWKSFetchError) as exc:
                failures.append((source, exc))
                continue
            if failures:
                logger.debug(
                    "JWKS from the other issuer form %s (%s)", source, _describe(failures[0][1])
                )
                keyset.sources = (source, *(s for s in keyset.sources if s != source))
            return document
        first = failures[0][1]
        if len(failures) == 1:
            raise first
        others = "; ".join(f"{url}: {_describe(exc)}" for url, exc in failures[1:])
        raise JWKSFetchError(f"{_describe(first)} (other issuer form {others})")

    def _store(self, keyset: _KeySet, keys: dict[str, VerifyingKey]) -> None:
        previous = keyset.keys or {}
        keyset.keys = keys
        keyset.fetched_at = self._clock()
        keyset.failed_at = None
        if keyset.failing:
            keyset.failing = False
            logger.warning(
                "JWKS fetch from %s recovered",
                keyset.sources[0],
                extra=telemetry.log_extra("keys_recovered", _pool_of(keyset.sources[0])),
            )
        retired = frozenset(
            kid
            for kid, old in previous.items()
            if kid not in keys or keys[kid].numbers != old.numbers
        )
        if retired and self._on_keys_retired is not None:
            for source in keyset.sources:
                self._on_keys_retired(source, retired)

    def seed(self, url: str, jwks: Mapping[str, Any]) -> None:
        """Store a JWKS document for ``url`` as if it had just been fetched."""
        keys = build_keys(jwks)
        if not keys:
            raise ValueError("the JWKS has no usable RS256 signing key")
        self._store(self._keyset(url), keys)

    def revalidate(self, url: str) -> None:
        """Start a background refresh if the URL's keys are past their TTL.

        Called on result-cache hits, so a client that only repeats one token
        still notices when its key leaves the JWKS.
        """
        keyset = self._sets.get(url)
        if keyset is not None and self._clock() - keyset.fetched_at >= keyset.policy.ttl:
            self._refresh_in_background(keyset)

    async def aclose(self) -> None:
        """Cancel fetches in flight and close the HTTP client if this cache made it.

        Callers waiting on a cancelled fetch get ``KeysUnavailableError``.
        """
        for keyset in self._sets.values():
            if keyset.inflight is not None:
                keyset.inflight.cancel()
        if self._owns_client and self._client is not None:
            await self._client.aclose()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc)
    if isinstance(exc, JWKSFetchError):
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _pool_of(url: str) -> str | None:
    """The user pool id of a JWKS URL of Cognito's shape (``.../{pool}/.well-known/...``),
    for log lines; None for another URL."""
    head, found, _ = url.partition("/.well-known/")
    return head.rsplit("/", 1)[-1] if found else None
