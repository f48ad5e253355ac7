"""One refresh in flight per session.

When many requests of one browser arrive with an access token about to expire,
the first starts the ``refresh_token`` grant and the others wait for it. The
result is remembered for a while by the old refresh token's digest, so requests
that still carry the old cookie (sent before the new one arrived) reuse the new
tokens instead of spending a rotated refresh token a second time.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from cachetools import TTLCache

from .. import telemetry
from ..errors import CognitoGuardError
from ..singleflight import SingleFlight
from .session import Session

__all__ = ["RECENT_SECONDS", "SessionEndedError", "SingleFlightRefresher"]

RECENT_SECONDS = 120
"""How long a refresh result answers requests still carrying the old cookie."""


class SessionEndedError(Exception):
    """The session cannot go on (``invalid_grant``, or refreshed tokens that fail
    verification): sign the browser out."""


_ENDED = object()


class SingleFlightRefresher:
    """Runs ``refresh(session)`` at most once at a time per session, sharing its result."""

    def __init__(
        self, refresh: Callable[[Session], Awaitable[Session]], max_sessions: int = 100_000
    ) -> None:
        self._refresh = refresh
        self._flights = SingleFlight()
        self._recent: TTLCache[str, object] = TTLCache(maxsize=max_sessions, ttl=RECENT_SECONDS)

    async def refresh(self, session: Session) -> Session:
        """The refreshed session; raises ``SessionEndedError`` or the service error
        (``OAuthUnavailableError``, ``KeysUnavailableError``) of a refresh that failed."""
        key = session.refresh_key
        recent = self._recent.get(key)
        if recent is _ENDED:
            raise SessionEndedError
        if isinstance(recent, Session):
            return recent
        return await self._flights.run(key, lambda: self._run(key, session))

    async def _run(self, key: str, session: Session) -> Session:
        try:
            refreshed = await self._refresh(session)
        except SessionEndedError:
            telemetry.refreshed("session_ended")
            self._recent[key] = _ENDED
            raise
        except CognitoGuardError as exc:
            telemetry.refreshed(exc.code)
            raise
        telemetry.refreshed("ok")
        self._recent[key] = refreshed
        return refreshed
