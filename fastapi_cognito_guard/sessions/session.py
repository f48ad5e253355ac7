"""What a browser session holds, and how it is sealed into its cookie.

The cookie is the session's tokens and times as compact JSON, sealed with
AES-256-GCM under a key derived from ``session_secret`` for this purpose only
(``sealing.Sealer``): the browser can neither read nor change it, and a cookie
sealed with a retired key still opens while that key is listed.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, replace
from typing import Any

from cachetools import LRUCache

from ..sealing import Sealer

__all__ = ["Session", "SessionCodec"]

_FIELDS = {
    "sid": str,
    "sub": str,
    "id": str,
    "at": str,
    "exp": int,
    "start": int,
}
_ASSOCIATED = b"fcg-session-v1"


def new_session_id() -> str:
    """A random identifier for one sign-in (a new one at every sign-in)."""
    return secrets.token_urlsafe(16)


@dataclass(frozen=True, slots=True)
class Session:
    """One signed-in browser: its tokens, when the access token expires
    (``expires_at``) and when the user signed in (``started_at``, for the absolute
    lifetime). Immutable: a refresh makes a new one."""

    sid: str
    sub: str
    id_token: str
    access_token: str
    refresh_token: str | None
    expires_at: int
    started_at: int

    def __repr__(self) -> str:
        return f"Session(sid={self.sid!r}, sub={self.sub!r}, expires_at={self.expires_at})"

    @property
    def refresh_key(self) -> str:
        """Names this session's current refresh (a digest: the token itself stays out
        of every key and log)."""
        material = (self.refresh_token or self.access_token).encode("ascii", "replace")
        return hashlib.sha256(material).hexdigest()

    def refreshed(
        self, *, id_token: str, access_token: str, refresh_token: str | None, expires_at: int
    ) -> Session:
        """The same sign-in with new tokens."""
        return replace(
            self,
            id_token=id_token,
            access_token=access_token,
            refresh_token=refresh_token,
            expires_at=expires_at,
        )

    def to_json(self) -> bytes:
        payload: dict[str, Any] = {
            "sid": self.sid,
            "sub": self.sub,
            "id": self.id_token,
            "at": self.access_token,
            "exp": self.expires_at,
            "start": self.started_at,
        }
        if self.refresh_token is not None:
            payload["rt"] = self.refresh_token
        return json.dumps(payload, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Session | None:
        """The session in ``data``, or None when it is not one this library wrote."""
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError):
            return None
        if not isinstance(payload, dict):
            return None
        for name, kind in _FIELDS.items():
            value = payload.get(name)
            if not isinstance(value, kind) or isinstance(value, bool):
                return None
        refresh = payload.get("rt")
        if refresh is not None and not isinstance(refresh, str):
            return None
        return cls(
            sid=payload["sid"],
            sub=payload["sub"],
            id_token=payload["id"],
            access_token=payload["at"],
            refresh_token=refresh,
            expires_at=payload["exp"],
            started_at=payload["start"],
        )


class SessionCodec:
    """Seals sessions into cookie values and opens them again.

    Opened values are remembered (by their sealed text, which is immutable), so a
    browser repeating its cookie pays for the decryption once.
    """

    def __init__(self, sealer: Sealer, cache_size: int = 1024) -> None:
        self._sealer = sealer
        self._opened: LRUCache[str, Session] = LRUCache(cache_size)

    def seal(self, session: Session) -> str:
        return self._sealer.seal(session.to_json(), _ASSOCIATED)

    def open(self, sealed: str) -> Session | None:
        """The session, or None for a damaged, tampered or foreign-key value."""
        session = self._opened.get(sealed)
        if session is not None:
            return session
        data = self._sealer.open(sealed, _ASSOCIATED)
        session = Session.from_json(data) if data is not None else None
        if session is not None:
            self._opened[sealed] = session
        return session
