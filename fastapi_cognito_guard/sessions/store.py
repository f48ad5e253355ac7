"""Server-side sessions (``COGNITO_SESSION_STORE=redis``): the tokens live in the
shared store (Redis), sealed with their own key; the cookie holds only the
session's random id, sealed too. Deleting the stored entry ends the session in
every worker, and tokens too large for cookies fit.
"""

from __future__ import annotations

import hashlib

from ..sealing import Sealer
from ..stores import KeyValueStore
from .session import Session

__all__ = ["ServerSideSessions"]

_REFERENCE = b"fcg-session-ref-v1"


class ServerSideSessions:
    """Sessions kept in a ``KeyValueStore`` under a digest of their id."""

    def __init__(self, store: KeyValueStore, cookie_sealer: Sealer, store_sealer: Sealer) -> None:
        self._store = store
        self._cookie_sealer = cookie_sealer
        self._store_sealer = store_sealer

    @staticmethod
    def _key(sid: str) -> str:
        return "session:" + hashlib.sha256(sid.encode()).hexdigest()

    async def load(self, cookie_value: str) -> Session | None:
        """The session a cookie refers to; None when the cookie does not open or the
        session was deleted or expired."""
        reference = self._cookie_sealer.open(cookie_value, _REFERENCE)
        if reference is None:
            return None
        key = self._key(reference.decode("utf-8", "replace"))
        stored = await self._store.get(key)
        if stored is None:
            return None
        data = self._store_sealer.open(stored.decode("ascii", "replace"), key.encode())
        session = Session.from_json(data) if data is not None else None
        return session if session is not None and self._key(session.sid) == key else None

    async def save(self, session: Session, ttl_seconds: int) -> str:
        """Store ``session`` for ``ttl_seconds``; the cookie value that refers to it."""
        key = self._key(session.sid)
        sealed = self._store_sealer.seal(session.to_json(), key.encode())
        await self._store.set(key, sealed.encode("ascii"), max(1, ttl_seconds))
        return self._cookie_sealer.seal(session.sid.encode(), _REFERENCE)

    async def delete(self, session: Session) -> None:
        await self._store.delete(self._key(session.sid))
