"""Server-side sessions (``COGNITO_SESSION_STORE=redis``): the tokens live in the
shared store (Redis), sealed with their own key; the cookie holds only the
session's random id, sealed too. Deleting the stored entry ends the session in
every worker, and tokens too large for cookies fit.

Every operation asks Redis itself (a ``StrictStore``): while Redis cannot be
reached they raise ``StoreUnreachableError`` instead of reading this process's
memory, where a session another worker started would look "absent" and its
browser would be signed out for good. A refresh writes back only while the
session still exists (``SET XX``), so one finishing after a sign-out never
brings the session back.
"""

from __future__ import annotations

import hashlib

from ..sealing import Sealer
from ..stores import StrictStore
from .session import Session

__all__ = ["ServerSideSessions"]

_REFERENCE = b"fcg-session-ref-v1"


class ServerSideSessions:
    """Sessions kept in a ``StrictStore`` under a digest of their id."""

    def __init__(self, store: StrictStore, cookie_sealer: Sealer, store_sealer: Sealer) -> None:
        self._store = store
        self._cookie_sealer = cookie_sealer
        self._store_sealer = store_sealer

    @staticmethod
    def _key(sid: str) -> str:
        return "session:" + hashlib.sha256(sid.encode()).hexdigest()

    def reference(self, cookie_value: str) -> str | None:
        """The session id a cookie names; None when the cookie does not open."""
        reference = self._cookie_sealer.open(cookie_value, _REFERENCE)
        return reference.decode("utf-8", "replace") if reference is not None else None

    def cookie_value(self, session: Session) -> str:
        """The cookie value that refers to ``session``."""
        return self._cookie_sealer.seal(session.sid.encode(), _REFERENCE)

    async def load(self, sid: str) -> Session | None:
        """The stored session ``sid``; None when Redis says it was deleted or expired
        (``StoreUnreachableError`` when Redis cannot say)."""
        key = self._key(sid)
        stored = await self._store.read(key)
        if stored is None:
            return None
        data = self._store_sealer.open(stored.decode("ascii", "replace"), key.encode())
        session = Session.from_json(data) if data is not None else None
        return session if session is not None and self._key(session.sid) == key else None

    async def create(self, session: Session, ttl_seconds: int) -> None:
        """Store a new sign-in's session for ``ttl_seconds``."""
        key = self._key(session.sid)
        await self._store.create(key, self._seal(session, key), max(1, ttl_seconds))

    async def update(self, session: Session, ttl_seconds: int) -> bool:
        """Write refreshed tokens, only while the session is still stored: False (and
        nothing written) when it was deleted meanwhile (signed out)."""
        key = self._key(session.sid)
        return await self._store.replace(key, self._seal(session, key), max(1, ttl_seconds))

    async def delete(self, sid: str) -> None:
        await self._store.remove(self._key(sid))

    def _seal(self, session: Session, key: str) -> bytes:
        return self._store_sealer.seal(session.to_json(), key.encode()).encode("ascii")
