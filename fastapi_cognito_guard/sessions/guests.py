"""A visitor's guest identity id (identity pools, DESIGN §9), kept in the browser.

A visitor who has not signed in has no session, so the id lives in its own small
sealed cookie (``fcg_guest``): one visitor keeps one guest identity across
requests and workers, and cannot present another visitor's id (a value that
does not open is ignored and a new identity is made).
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from ..sealing import Sealer
from .context import session_context
from .cookies import cookie_name, set_cookie

__all__ = ["GUEST_COOKIE", "SessionGuestIdentities"]

GUEST_COOKIE = "fcg_guest"
_ASSOCIATED = b"fcg-guest-identity-v1"


class SessionGuestIdentities:
    """``GuestIdentities`` for ``CognitoAuth.guest_credentials`` over a sealed cookie."""

    def __init__(self, sealer: Sealer, max_age: int) -> None:
        self._sealer = sealer
        self._max_age = max_age

    async def get(self, conn: HTTPConnection) -> str | None:
        context = session_context(conn.scope)
        if context is None:
            return None
        sealed = context.cookies.get(cookie_name(GUEST_COOKIE, secure=context.secure))
        opened = self._sealer.open(sealed, _ASSOCIATED) if sealed else None
        return opened.decode("utf-8", "replace") if opened is not None else None

    async def set(self, conn: HTTPConnection, identity_id: str) -> None:
        context = session_context(conn.scope)
        if context is None:  # the session middleware is not installed: nothing to keep
            return
        sealed = self._sealer.seal(identity_id.encode(), _ASSOCIATED)
        name = cookie_name(GUEST_COOKIE, secure=context.secure)
        context.extra_cookies.append(
            set_cookie(name, sealed, secure=context.secure, max_age=self._max_age)
        )
