"""``CognitoVerifier``: every check a Cognito token must pass, in order, offline.

Usable without FastAPI (a Lambda, a worker). One verifier serves one or more
user pools; the pool is chosen by exact match of the token's ``iss``.

The signature is checked before the claims are decoded, so that no forged token
costs much more than the RSA check it fails. The pool, not the issuer form, is
what a ``kid`` identifies: a pool's issuers (both of Cognito's forms, replica
regions) share its keys, so a ``kid`` among the fresh keys of exactly one pool
picks that pool without reading the payload. Otherwise (a key not fetched yet, a
``kid`` two pools hold) the route (pool and JWKS URL) is picked by the ``iss``
scan: the first ``"iss":"<issuer>"`` of the payload bytes as Cognito writes it
(no JSON decode), else the route whose fresh keys hold the ``kid``, else ``iss``
decoded alone. After the signature, the full type-checked decode re-checks that
``iss`` is exactly one of that pool's issuers, then every other rule.

A verified token is kept in a bounded result cache together with the objects
built from its claims (``verify(token, build=...)``, e.g. the user of a web
framework's auth), so a repeated token costs one lookup; revocation is checked on
every hit, and a key leaving the JWKS drops its tokens with everything built
from them.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol, TypeVar, overload

import httpx

from . import telemetry
from .claims import AccessTokenClaims, TokenClaims, decode_claims, decode_issuer
from .errors import CognitoGuardError, InvalidTokenError
from .jwks import JWKSCache, JWKSPolicy
from .jwt import Header, split
from .keys import VerifyingKey
from .settings import CognitoSettings, env_name

__all__ = ["CognitoVerifier", "RevocationCheck"]

BuiltT = TypeVar("BuiltT")


class RevocationCheck(Protocol):
    """What the verifier asks after every successful verification (cache hits too):
    an in-memory lookup, never a network call."""

    def is_revoked(self, claims: TokenClaims) -> bool:
        """True when the session or user behind ``claims`` was revoked."""
        ...


_REVOKED = "token has been revoked"
_NOTHING: Any = object()


def _names_one_of(aud: str | list[str] | None, audiences: frozenset[str]) -> bool:
    """Whether an access token's ``aud`` (a string or a list) names one of ``audiences``."""
    if aud is None:
        return False
    if isinstance(aud, str):
        return aud in audiences
    return not audiences.isdisjoint(aud)


logger = logging.getLogger(__name__)


def _warn_about_insecure_http(all_settings: Sequence[CognitoSettings]) -> None:
    """One warning at construction when ``allow_insecure_http`` lets a URL use plain http
    to a non-loopback host: keys, tokens and credentials then travel unencrypted."""
    insecure = [
        f"{field} ({env_name(field)}) of {pool.user_pool_id}"
        for pool in all_settings
        for field in pool.insecure_http_fields
    ]
    if insecure:
        logger.warning(
            "allow_insecure_http (COGNITO_ALLOW_INSECURE_HTTP) is on and plain http reaches a "
            "non-loopback host for %s: meant for emulators (http://localstack:4566), never "
            "for production",
            ", ".join(insecure),
        )


class _Pool:
    """What one user pool accepts, precomputed for the hot path."""

    __slots__ = (
        "audiences",
        "client_ids",
        "issuers",
        "leeway",
        "settings",
        "token_uses",
        "use_result_cache",
        "user_pool_id",
    )

    def __init__(self, settings: CognitoSettings) -> None:
        self.settings = settings
        self.user_pool_id = settings.user_pool_id
        self.client_ids = frozenset(settings.client_ids)
        self.audiences = frozenset(settings.audiences) if settings.audiences else None
        """An access token must name one of these in ``aud`` (None: no such rule)."""
        self.issuers = frozenset(settings.issuers)
        self.token_uses = (
            frozenset({"access", "id"})
            if settings.token_use == "any"
            else frozenset({settings.token_use})
        )
        self.leeway = settings.leeway_seconds
        self.use_result_cache = settings.result_cache_size > 0


_Parts = tuple[Header, bytes, bytes, bytes]
"""A token split by ``jwt.split``: header, payload, signing input, signature."""


class _Route(NamedTuple):
    """Where a token with a given ``iss`` goes: its pool and its JWKS URL."""

    pool: _Pool
    jwks_url: str


class _Verified:
    """A result-cache entry: the claims, when they stop being valid, the signing key,
    and what callers built from the claims (by the callable that built it)."""

    __slots__ = ("built", "claims", "jwks_url", "kid", "valid_until")

    def __init__(self, claims: TokenClaims, valid_until: float, jwks_url: str, kid: str):
        self.claims = claims
        self.valid_until = valid_until
        self.jwks_url = jwks_url
        self.kid = kid
        self.built: dict[Callable[[TokenClaims], Any], Any] = {}


class _ResultCache:
    """Verified tokens by token: bounded, oldest insertion evicted first, thread-safe.

    A plain dict plus a deque of insertion order rather than ``cachetools.LRUCache``:
    a miss that inserts and evicts costs about half (benchmarks/verify.py), a hit is
    one ``dict.get`` with no reordering, and ``cachetools`` caches are not safe
    across threads (``verify_sync`` from a thread pool raised ``KeyError`` or
    ``RuntimeError``). Reads are single dict operations, atomic in CPython; every
    write holds a lock. Evicting the oldest insertion instead of the least recently
    used entry costs a hot token one more RSA check per ``size`` new tokens.
    """

    __slots__ = ("_entries", "_lock", "_order", "_size")

    def __init__(self, size: int) -> None:
        self._entries: dict[str, _Verified] = {}
        self._order: deque[str] = deque()  # may hold tokens already dropped
        self._lock = threading.Lock()
        self._size = size

    def valid(self, token: str) -> _Verified | None:
        """The entry for ``token`` while it is valid; an expired one is dropped and
        refused (``expired``), so it is never served past its ``exp``."""
        if type(token) is not str:
            return None
        entry = self._entries.get(token)
        if entry is None or time.time() < entry.valid_until:
            return entry
        self.discard(token)
        raise InvalidTokenError("expired", "token has expired")

    def put(self, token: str, entry: _Verified) -> None:
        with self._lock:
            entries, order = self._entries, self._order
            while len(entries) >= self._size and order:
                entries.pop(order.popleft(), None)
            entries[token] = entry
            order.append(token)
            if len(order) > 2 * self._size:  # many tokens dropped before their turn
                self._order = deque(entries)

    def discard(self, token: str) -> None:
        with self._lock:
            self._entries.pop(token, None)

    def discard_signed_by(self, jwks_url: str, kids: frozenset[str]) -> None:
        with self._lock:
            entries = self._entries
            stale = [
                token
                for token, entry in entries.items()
                if entry.jwks_url == jwks_url and entry.kid in kids
            ]
            for token in stale:
                del entries[token]

    def __len__(self) -> int:
        return len(self._entries)


class CognitoVerifier:
    """Verifies Cognito access and ID tokens for one or more user pools.

    Pass one ``CognitoSettings`` or a list of them (one per user pool). Signing
    keys are fetched with ``http_client`` (a new ``httpx.AsyncClient`` if none is
    given) and cached per JWKS URL; verified tokens are cached until they expire
    so a client that repeats its token pays for the RSA check once.
    """

    def __init__(
        self,
        settings: CognitoSettings | Sequence[CognitoSettings],
        *,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        all_settings = [settings] if isinstance(settings, CognitoSettings) else list(settings)
        if not all_settings:
            raise ValueError("CognitoVerifier needs the settings of at least one user pool")
        _warn_about_insecure_http(all_settings)
        self._jwks = JWKSCache(http_client, on_keys_retired=self._forget_tokens_signed_by)
        self._routes: dict[str, _Route] = {}
        self._pools: dict[str, _Pool] = {}
        for pool_settings in all_settings:
            pool = _Pool(pool_settings)
            if pool.user_pool_id in self._pools:
                raise ValueError(f"user pool {pool.user_pool_id} is configured twice")
            self._pools[pool.user_pool_id] = pool
            policy = JWKSPolicy(
                ttl=pool_settings.jwks_ttl_seconds,
                cooldown=pool_settings.jwks_cooldown_seconds,
                timeout=pool_settings.jwks_timeout_seconds,
                max_stale=pool_settings.jwks_max_stale_seconds,
            )
            for issuer in pool_settings.issuers:
                if issuer in self._routes:
                    raise ValueError(f"issuer {issuer} belongs to two configured user pools")
                url = pool_settings.jwks_url_for(issuer)
                self._routes[issuer] = _Route(pool, url)
                self._jwks.register(url, policy)
        self._issuer_bytes = {issuer.encode(): route for issuer, route in self._routes.items()}
        self._key_routes = self._one_route_per_key_set()
        self._pool_count = len(self._pools)
        self._only_key_route = self._key_routes[0] if len(self._key_routes) == 1 else None
        """One pool with one key set (both issuer forms, no replica): the usual case."""
        size = max(s.result_cache_size for s in all_settings)
        self._results = _ResultCache(size) if size else None
        self.revocation: RevocationCheck | None = None
        """Consulted after every verification; a revoked token fails with ``revoked``."""

    def _one_route_per_key_set(self) -> tuple[_Route, ...]:
        """Per pool, one route for each distinct key set its issuers use (a pool's two
        issuer forms share one; a replica region has its own): where a ``kid`` is
        looked up to pick the pool without reading the payload."""
        routes: dict[tuple[str, int], _Route] = {}
        for route in self._routes.values():
            key_set = (route.pool.user_pool_id, self._jwks.key_set_id(route.jwks_url))
            routes.setdefault(key_set, route)
        return tuple(routes.values())

    @property
    def settings(self) -> list[CognitoSettings]:
        """The settings of every configured user pool, in order."""
        return [pool.settings for pool in self._pools.values()]

    # -- verification ------------------------------------------------------------

    @overload
    async def verify(self, token: str) -> TokenClaims: ...

    @overload
    async def verify(self, token: str, *, build: Callable[[TokenClaims], BuiltT]) -> BuiltT: ...

    async def verify(self, token: str, *, build: Callable[[TokenClaims], Any] | None = None) -> Any:
        """Verify ``token`` completely, fetching signing keys if needed.

        Returns the claims, or with ``build`` what ``build(claims)`` returns, built
        once per token and kept with the token's cached result (keyed by ``build``
        itself: pass the same callable every time, e.g. a user model's
        ``from_claims``), so a repeated token costs one lookup.

        Raises ``InvalidTokenError`` (with a ``.code``) for a token that must not
        be trusted, and ``KeysUnavailableError`` when no keys can be obtained.
        """
        started, route = 0.0, None
        try:
            results = self._results
            if results is not None:
                cached = results.valid(token)
                if cached is not None:
                    self._jwks.revalidate(cached.jwks_url)
                    return telemetry.cache_hit(
                        cached.claims, self._deliver(cached.claims, cached, build)
                    )
            started = telemetry.clock()
            parts = split(token)
            kid = parts[0].kid
            route, key = self._route(kid, parts[1])
            if key is None:
                key = await self._jwks.get_key(route.jwks_url, kid)
            claims, entry = self._finish(token, parts, route, key)
            if build is None and self.revocation is None:
                return telemetry.verified(started, claims, claims)
            result = self._deliver(claims, entry, build)
        except CognitoGuardError as exc:
            telemetry.refused(started, exc, route and route.pool.user_pool_id)
            raise
        return telemetry.verified(started, claims, result)

    @overload
    def verify_sync(self, token: str) -> TokenClaims: ...

    @overload
    def verify_sync(self, token: str, *, build: Callable[[TokenClaims], BuiltT]) -> BuiltT: ...

    def verify_sync(self, token: str, *, build: Callable[[TokenClaims], Any] | None = None) -> Any:
        """Verify ``token`` with the keys already cached; never touches the network.

        Keys must have been loaded by ``hydrate()``, ``cache_jwks()`` or an
        earlier ``verify()``; otherwise ``KeysUnavailableError`` is raised. Safe to
        call from several threads at once. ``build`` as for ``verify``.
        """
        started, route = 0.0, None
        try:
            results = self._results
            if results is not None:
                cached = results.valid(token)
                if cached is not None:
                    return telemetry.cache_hit(
                        cached.claims, self._deliver(cached.claims, cached, build)
                    )
            started = telemetry.clock()
            parts = split(token)
            kid = parts[0].kid
            route, key = self._route(kid, parts[1])
            if key is None:
                key = self._jwks.cached_key(route.jwks_url, kid)
            claims, entry = self._finish(token, parts, route, key)
            if build is None and self.revocation is None:
                return telemetry.verified(started, claims, claims)
            result = self._deliver(claims, entry, build)
        except CognitoGuardError as exc:
            telemetry.refused(started, exc, route and route.pool.user_pool_id)
            raise
        return telemetry.verified(started, claims, result)

    # The two verify methods above differ only in how a key not cached fresh is
    # obtained (an awaited fetch, or the cached stale key); everything else they do is
    # one call each: ``split``, ``_route``, ``_finish``.

    def _deliver(
        self,
        claims: TokenClaims,
        entry: _Verified | None,
        build: Callable[[TokenClaims], Any] | None,
    ) -> Any:
        """The claims (or what ``build`` made of them) unless revoked, checked on every
        call, cache hits included. Built objects are kept with the cached ``entry`` (none:
        the result cache is off, so built afresh); two threads may both build one, and
        either result is kept."""
        revocation = self.revocation
        if revocation is not None and revocation.is_revoked(claims):
            raise InvalidTokenError("revoked", _REVOKED)
        if build is None:
            return claims
        if entry is None:
            return build(claims)
        built = entry.built
        made = built.get(build, _NOTHING)
        if made is _NOTHING:
            made = built[build] = build(claims)
        return made

    def _route(self, kid: str, payload: bytes) -> tuple[_Route, VerifyingKey | None]:
        """The token's route (and its fresh key, when there is one), before the
        signature and without decoding the claims.

        A ``kid`` among the fresh keys of one pool settles it without reading the
        payload (``iss`` is checked after the signature all the same); else the
        ``iss`` scan."""
        only = self._only_key_route
        if only is not None:  # the usual pool: both issuer forms, one key set
            key = self._jwks.fresh_key(only.jwks_url, kid)
            if key is not None:
                return only, key
        elif self._pool_count == 1:  # a pool with replica regions: a key set each
            fresh_key = self._jwks.fresh_key
            for route in self._key_routes:
                key = fresh_key(route.jwks_url, kid)
                if key is not None:
                    return route, key
        else:
            owner = self._kid_owner(kid)
            if owner is not None:
                return owner
        return self._route_by_issuer(payload, kid)

    def _kid_owner(self, kid: str) -> tuple[_Route, VerifyingKey] | None:
        """With several pools: the one pool whose fresh keys hold ``kid``, known only
        when every pool's keys are fresh (emulators sign every pool with one key, so a
        pool not fetched yet may hold it too); else None, and ``iss`` decides."""
        fresh_keys = self._jwks.fresh_keys
        found: tuple[_Route, VerifyingKey] | None = None
        for route in self._key_routes:
            keys = fresh_keys(route.jwks_url)
            if keys is None:
                return None
            key = keys.get(kid)
            if key is not None:
                if found is not None and found[0].pool is not route.pool:
                    return None  # two pools hold this kid: only iss can tell
                found = (route, key)
        return found

    def _route_by_issuer(self, payload: bytes, kid: str) -> tuple[_Route, VerifyingKey | None]:
        """The ``iss`` scan: the route of the payload's issuer and its fresh key, if any."""
        fresh_key = self._jwks.fresh_key
        route = self._quick_route(payload)
        if route is not None:
            return route, fresh_key(route.jwks_url, kid)
        # any other spelling: the route whose fresh keys hold the kid
        for route in self._routes.values():
            key = fresh_key(route.jwks_url, kid)
            if key is not None:
                return route, key
        found = self._routes.get(decode_issuer(payload))
        if found is None:
            raise InvalidTokenError("wrong_issuer", "token issuer is not a configured user pool")
        return found, None

    def _quick_route(self, payload: bytes) -> _Route | None:
        """The route of the first ``"iss":"..."`` in the payload, as Cognito writes it
        (a space after the colon allowed); None for any other spelling. A short
        needle: CPython's search for a long one can take 30 µs on a crafted payload."""
        at = payload.find(b'"iss":')
        if at < 0:
            return None
        start = at + 6
        if payload[start : start + 1] == b" ":
            start += 1
        if payload[start : start + 1] != b'"':
            return None
        end = payload.find(b'"', start + 1)
        return self._issuer_bytes.get(payload[start + 1 : end])

    def _finish(
        self, token: str, parts: _Parts, route: _Route, key: VerifyingKey
    ) -> tuple[TokenClaims, _Verified | None]:
        """Check the signature, then every claim rule; the claims and, when the pool's
        results are cached, their new cache entry."""
        header, payload, signing_input, signature = parts
        if not key.verify(signing_input, signature):
            raise InvalidTokenError("bad_signature", "token signature does not verify")
        pool = route.pool
        claims = decode_claims(payload, pool.user_pool_id)
        if claims.iss not in pool.issuers:
            raise InvalidTokenError("wrong_issuer", "token issuer is not a configured user pool")
        if claims.token_use not in pool.token_uses:
            names = " or ".join(sorted(pool.token_uses))
            raise InvalidTokenError("wrong_token_use", f"only {names} tokens are accepted")
        if type(claims) is AccessTokenClaims:
            if claims.client_id not in pool.client_ids:
                raise InvalidTokenError("wrong_client", "token was issued to another app client")
            if pool.audiences is not None and not _names_one_of(claims.aud, pool.audiences):
                raise InvalidTokenError(
                    "wrong_audience", "token is not bound to an audience of this API"
                )
        elif claims.aud not in pool.client_ids:
            raise InvalidTokenError("wrong_audience", "token audience is not an allowed app client")
        now = time.time()
        leeway = pool.leeway
        valid_until = claims.exp + leeway
        if now >= valid_until:
            raise InvalidTokenError("expired", "token has expired")
        nbf = claims.nbf
        if nbf is not None and nbf > now + leeway:
            raise InvalidTokenError("not_yet_valid", "token is not valid yet (nbf)")
        iat = claims.iat
        if iat is not None and iat > now + leeway:
            raise InvalidTokenError("not_yet_valid", "token was issued in the future (iat)")
        results = self._results
        if results is None or not pool.use_result_cache:
            return claims, None
        entry = _Verified(claims, valid_until, route.jwks_url, header.kid)
        results.put(token, entry)
        return claims, entry

    def _forget_tokens_signed_by(self, jwks_url: str, kids: frozenset[str]) -> None:
        """Drop cached results whose signing key left (or changed in) the JWKS."""
        if self._results is not None:
            self._results.discard_signed_by(jwks_url, kids)

    # -- keys --------------------------------------------------------------------

    def _urls(self, user_pool_id: str | None = None) -> list[str]:
        """Every JWKS URL (of one pool, or all), once each, in configuration order."""
        return list(
            dict.fromkeys(
                route.jwks_url
                for route in self._routes.values()
                if user_pool_id is None or route.pool.user_pool_id == user_pool_id
            )
        )

    async def hydrate(self) -> None:
        """Fetch every pool's JWKS now, so the first requests need not wait.

        A pool's two issuer forms share one key set and one fetch: whichever
        form answers serves both, so a pool that answers 403 on the form it does
        not use (DESIGN §3) hydrates without a warning. Raises
        ``KeysUnavailableError`` if any key set could not be fetched (the
        verifier stays usable and retries on demand).
        """
        results = await asyncio.gather(
            *(self._jwks.refresh(url) for url in self._urls()), return_exceptions=True
        )
        for result in results:
            if isinstance(result, BaseException):
                raise result

    def keys_usable(self) -> dict[str, bool]:
        """Per user pool: whether its signing keys can verify tokens now (the JWKS
        of any of its issuers, fresh or stale within ``jwks_max_stale_seconds``)."""
        return {
            pool_id: any(self._jwks.usable(url) for url in self._urls(pool_id))
            for pool_id in self._pools
        }

    def prefetch_missing(self) -> None:
        """Start background fetches of the keys of pools that have none usable (when
        an event loop runs; one fetch per URL, failures retried after the cooldown)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return
        for pool_id, usable in self.keys_usable().items():
            if not usable:
                for url in self._urls(pool_id):
                    self._jwks.prefetch(url)

    def cache_jwks(self, jwks: Mapping[str, Any], user_pool_id: str | None = None) -> None:
        """Seed a pool's signing keys without HTTP (for every one of its issuers).

        ``user_pool_id`` may be left out when only one pool is configured.
        """
        if user_pool_id is None:
            if len(self._pools) != 1:
                raise ValueError("several user pools are configured: name the user_pool_id")
        elif user_pool_id not in self._pools:
            raise ValueError(f"user pool {user_pool_id} is not configured")
        for url in self._urls(user_pool_id):
            self._jwks.seed(url, jwks)

    async def aclose(self) -> None:
        """Release the HTTP client (when the verifier created it)."""
        await self._jwks.aclose()
