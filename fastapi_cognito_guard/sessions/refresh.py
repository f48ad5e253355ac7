"""One refresh in flight per session: in this process, and with ``redis_url``
across every worker and replica.

When many requests of one browser arrive with an access token about to expire,
the first starts the ``refresh_token`` grant and the others wait for it. The
result is remembered for a while by the old refresh token's digest, so requests
that still carry the old cookie (sent before the new one arrived) reuse the new
tokens instead of spending a rotated refresh token a second time.

Across processes (``SharedRefreshes``) the refresh takes a lease in Redis that
outlives the call; the processes that find it taken poll for its result, which
the holder leaves in Redis, sealed, for the lease's lifetime: so with
refresh-token rotation one refresh token is spent once, whichever worker each
request reaches. A request whose access token is still valid never waits for a
refresh running elsewhere: it goes on with the tokens it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from .. import telemetry
from ..errors import CognitoGuardError, OAuthUnavailableError
from ..sealing import Sealer
from ..singleflight import SingleFlight
from ..stores import StoreUnreachableError, StrictStore
from .session import Session

__all__ = [
    "LEASE_SECONDS",
    "RECENT_SECONDS",
    "SessionEndedError",
    "SharedRefreshes",
    "SingleFlightRefresher",
]

logger = logging.getLogger(__name__)

RECENT_SECONDS = 120
"""How long a refresh result answers requests still carrying the old cookie."""

LEASE_SECONDS = 30
"""A fleet refresh's lease (and its result's lifetime in Redis): longer than the
token call (5 s) and the verification of its tokens together."""

POLL_SECONDS = 0.05
"""How often a process waiting for another's refresh looks for its result."""

_ENDED_MARK = b"ended"


class SessionEndedError(Exception):
    """The session cannot go on (``invalid_grant``, refreshed tokens that fail
    verification, or a sign-out meanwhile): sign the browser out."""


_ENDED = object()


class SharedRefreshes:
    """Refresh leases and results in a ``StrictStore`` (Redis), results sealed.

    Keys: ``refresh-lease:{digest}`` (the holder's random token) and
    ``refresh:{digest}`` (the sealed refreshed session, or an "ended" mark), where
    the digest names the old refresh token, never the token itself.
    """

    def __init__(
        self, store: StrictStore, sealer: Sealer, *, lease_seconds: float = LEASE_SECONDS
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._lease = lease_seconds

    async def run(
        self, key: str, refresh: Callable[[], Awaitable[Session]], *, wait: bool
    ) -> Session | None:
        """The refreshed session: another process's result, else ``refresh()`` under
        the lease. None (without ``wait``) when another process holds the lease.
        Raises ``SessionEndedError`` when the refresh ended the session, and
        ``StoreUnreachableError`` only when Redis failed before ``refresh()`` ran
        (nothing spent: the caller may refresh alone); ``refresh()`` must not raise it."""
        lease = "refresh-lease:" + key
        deadline = time.monotonic() + self._lease
        while True:
            known = await self._result(key)
            if known is not None:
                return known
            holder = await self._store.claim(lease, self._lease)
            if holder is not None:
                break
            if not wait:
                return None
            if time.monotonic() >= deadline:
                raise OAuthUnavailableError("another process's session refresh did not finish")
            await asyncio.sleep(POLL_SECONDS)
        try:
            try:
                refreshed = await refresh()
            except SessionEndedError:
                await self._keep(key, _ENDED_MARK)
                raise
            await self._keep(key, refreshed.to_json())
            return refreshed
        finally:
            with contextlib.suppress(StoreUnreachableError):
                await self._store.release(lease, holder)

    async def _result(self, key: str) -> Session | None:
        stored = await self._store.read("refresh:" + key)
        data = (
            self._sealer.open(stored.decode("ascii", "replace"), key.encode())
            if stored is not None
            else None
        )
        if data is None:
            return None
        if data == _ENDED_MARK:
            raise SessionEndedError
        return Session.from_json(data)

    async def _keep(self, key: str, data: bytes) -> None:
        """Leave the outcome for the waiting processes (sealed, for the lease's
        lifetime); Redis failing now only makes them refresh themselves."""
        sealed = self._sealer.seal(data, key.encode()).encode("ascii")
        with contextlib.suppress(StoreUnreachableError):
            await self._store.create("refresh:" + key, sealed, self._lease)


class SingleFlightRefresher:
    """Runs ``refresh(session)`` at most once at a time per session, sharing its
    result (with ``shared``, across processes too)."""

    def __init__(
        self,
        refresh: Callable[[Session], Awaitable[Session]],
        max_sessions: int = 100_000,
        *,
        shared: SharedRefreshes | None = None,
    ) -> None:
        self._refresh = _counted(refresh)
        self._shared = shared
        self._flights = SingleFlight()
        self._recent: TTLCache[str, object] = TTLCache(maxsize=max_sessions, ttl=RECENT_SECONDS)
        self._uncoordinated = False

    async def refresh(self, session: Session, *, wait: bool = True) -> Session:
        """The refreshed session; raises ``SessionEndedError`` or the service error
        (``OAuthUnavailableError``, ``KeysUnavailableError``) of a refresh that failed.
        Without ``wait`` (the access token is still valid) a refresh already running,
        here or elsewhere, is not waited for: ``session`` comes back unchanged."""
        key = session.refresh_key
        recent = self._recent.get(key)
        if recent is _ENDED:
            raise SessionEndedError
        if isinstance(recent, Session):
            return recent
        if not wait and self._flights.running(key):
            return session
        outcome = await self._flights.run(key, lambda: self._run(key, session, wait))
        if outcome is None and wait:  # joined a flight that would not wait: this one must
            outcome = await self._flights.run(key, lambda: self._run(key, session, True))
        return outcome or session

    async def _run(self, key: str, session: Session, wait: bool) -> Session | None:
        try:
            refreshed = await self._across_processes(key, session, wait)
        except SessionEndedError:
            self._recent[key] = _ENDED
            raise
        if refreshed is not None:
            self._recent[key] = refreshed
        return refreshed

    async def _across_processes(self, key: str, session: Session, wait: bool) -> Session | None:
        if self._shared is None:
            return await self._refresh(session)
        try:
            refreshed = await self._shared.run(key, lambda: self._refresh(session), wait=wait)
        except StoreUnreachableError:
            if not self._uncoordinated:  # once per incident
                self._uncoordinated = True
                logger.warning(
                    "session refreshes not coordinated across processes: Redis unreachable",
                    extra=telemetry.log_extra("redis_unavailable"),
                )
            return await self._refresh(session)
        self._uncoordinated = False
        return refreshed


def _counted(
    refresh: Callable[[Session], Awaitable[Session]],
) -> Callable[[Session], Awaitable[Session]]:
    """``refresh`` with each grant this process makes counted in ``fcg.refreshes`` by
    its outcome (``ok``, ``session_ended`` or the service error's code); results of
    another process's refresh are not counted again."""

    async def counted(session: Session) -> Session:
        try:
            refreshed = await refresh(session)
        except SessionEndedError:
            telemetry.refreshed("session_ended")
            raise
        except CognitoGuardError as exc:
            telemetry.refreshed(exc.code)
            raise
        telemetry.refreshed("ok")
        return refreshed

    return counted
