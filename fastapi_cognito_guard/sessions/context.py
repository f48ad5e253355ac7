"""What one request knows about its browser session.

``SessionMiddleware`` puts a ``SessionContext`` in the request's state before the
route runs; the dependencies read the bearer token it offers (``session_token``)
or the reason it offers none (``session_error``); the login routes start and end
sessions through it; the middleware writes the resulting cookies on the response.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import Scope

from ..errors import CognitoGuardError
from .session import Session

__all__ = ["CONTEXT_KEY", "SessionContext", "session_context", "session_error", "session_token"]

CONTEXT_KEY = "cognito_session"


class SessionContext:
    """The session of one request and the cookie changes its response must carry.

    ``session`` is the signed-in session (refreshed if it was about to expire);
    ``token`` the bearer token it offers the dependencies (None when the request
    failed the origin check, then ``error`` says why).
    """

    __slots__ = (
        "_changed",
        "cookies",
        "ended",
        "error",
        "explicit",
        "extra_cookies",
        "secure",
        "session",
        "sid",
        "token",
    )

    def __init__(self, cookies: Mapping[str, str], *, secure: bool, explicit: bool) -> None:
        self.cookies = cookies
        self.secure = secure
        self.explicit = explicit
        """The request named its own token (``Authorization``, ...): the cookie is unused."""
        self.session: Session | None = None
        self.token: str | None = None
        self.error: CognitoGuardError | None = None
        self.extra_cookies: list[bytes] = []
        self.ended: Session | None = None
        """The session this request ended (server-side sessions delete it)."""
        self.sid: str | None = None
        """The id of the server-side session the cookie names, known even while the
        store cannot be read (then ``error`` is ``sessions_unavailable``)."""
        self._changed = False

    def __repr__(self) -> str:
        return f"SessionContext(session={self.session!r}, error={self.error!r})"

    @property
    def changed(self) -> bool:
        """True when the session cookie must be written (or cleared) on the response."""
        return self._changed

    def store(self, session: Session) -> None:
        """Keep ``session`` (a new sign-in or refreshed tokens) in the browser; a
        different sign-in's session it replaces counts as ended."""
        if self.session is not None and self.session.sid != session.sid:
            self.ended = self.session
        self.session = session
        self._changed = True

    def end(self) -> None:
        """Sign out: the session cookie is cleared on the response."""
        self.ended = self.session or self.ended
        self.session = None
        self.token = None
        self._changed = True


def session_context(scope: Scope) -> SessionContext | None:
    state = scope.get("state")
    return state.get(CONTEXT_KEY) if state else None


def session_token(scope: Scope) -> str | None:
    """The bearer token of the request's session (None without a usable session)."""
    context = session_context(scope)
    return context.token if context is not None else None


def session_error(scope: Scope) -> CognitoGuardError | None:
    """Why a request with a session cookie offers no token (e.g. ``csrf_rejected``)."""
    context = session_context(scope)
    return context.error if context is not None else None
