"""Whole-app protection: an ASGI middleware and a Starlette authentication backend.

``CognitoAuthMiddleware`` closes every HTTP and WebSocket route outside its
excluded paths; ``CognitoAuthBackend`` plugs into Starlette's own
``AuthenticationMiddleware`` so ``request.user``, ``request.auth.scopes`` and
``@requires(...)`` work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .claims import CognitoUser
from .errors import CognitoGuardError, MissingTokenError
from .fastapi import WS_POLICY_VIOLATION, CognitoAuth, connection_token, error_response
from .sessions.context import session_error

__all__ = ["AuthenticatedCognitoUser", "CognitoAuthBackend", "CognitoAuthMiddleware"]

DEFAULT_EXCLUDED = ("/health", "/docs", "/openapi.json")


class CognitoAuthMiddleware:
    """Requires a valid Cognito token on every HTTP and WebSocket route but the excluded.

    ``exclude_paths`` entries match a path exactly or as a prefix followed by
    ``/`` (``/docs`` also opens ``/docs/oauth2-redirect``). CORS preflight
    requests pass. The user is put at ``request.state.user`` and
    ``scope["user"]``; WebSocket failures close with code 1008.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: CognitoAuth[Any],
        exclude_paths: Iterable[str] = DEFAULT_EXCLUDED,
    ) -> None:
        self.app = app
        self.auth = auth
        self.exclude_paths = tuple(path.rstrip("/") or "/" for path in exclude_paths)

    def _excluded(self, path: str) -> bool:
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.exclude_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self._excluded(scope["path"]):
            await self.app(scope, receive, send)
            return
        if kind == "http" and _is_preflight(scope):
            await self.app(scope, receive, send)
            return
        token = connection_token(scope)
        try:
            if token is None:
                raise session_error(scope) or MissingTokenError("Not authenticated")
            user = await self.auth.authenticate(token)
        except CognitoGuardError as error:
            if kind == "websocket":
                # Complete the handshake first so the client sees the 1008 close
                # code rather than an HTTP 403 handshake rejection.
                if (await receive())["type"] == "websocket.connect":
                    await send({"type": "websocket.accept"})
                    await send(
                        {
                            "type": "websocket.close",
                            "code": WS_POLICY_VIOLATION,
                            "reason": error.code,
                        }
                    )
            else:
                await error_response(error, self.auth.realm)(scope, receive, send)
            return
        scope["user"] = user
        state = scope.setdefault("state", {})
        state["user"] = user
        state["cognito_user"] = (token, user)  # route dependencies reuse it
        await self.app(scope, receive, send)


def _is_preflight(scope: Scope) -> bool:
    if scope["method"] != "OPTIONS":
        return False
    names = {name for name, _ in scope.get("headers", ())}
    return b"origin" in names and b"access-control-request-method" in names


class AuthenticatedCognitoUser(BaseUser):
    """Starlette's view of a verified Cognito user; ``.cognito`` is the full user."""

    def __init__(self, user: CognitoUser) -> None:
        self.cognito = user

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def display_name(self) -> str:
        return self.cognito.username or self.cognito.sub

    @property
    def identity(self) -> str:
        return self.cognito.sub


class CognitoAuthError(AuthenticationError):
    """Starlette's authentication error, carrying the Cognito failure behind it."""

    def __init__(self, error: CognitoGuardError, realm: str) -> None:
        super().__init__(error.message)
        self.error = error
        self.realm = realm


class CognitoAuthBackend(AuthenticationBackend):
    """A Starlette authentication backend over ``CognitoAuth``.

    Use it as ``AuthenticationMiddleware(app, backend=CognitoAuthBackend(auth),
    on_error=CognitoAuthBackend.on_error)`` so failures answer 401/503 with the
    library's JSON body. ``request.auth.scopes`` holds the token's scopes and
    the user's groups.
    """

    def __init__(self, auth: CognitoAuth[Any]) -> None:
        self.auth = auth

    async def authenticate(
        self, conn: HTTPConnection
    ) -> tuple[AuthCredentials, AuthenticatedCognitoUser] | None:
        token = connection_token(conn.scope)
        if token is None:
            return None
        try:
            user = await self.auth.authenticate(token)
        except CognitoGuardError as error:
            raise CognitoAuthError(error, self.auth.realm) from None
        return AuthCredentials([*user.scopes, *user.groups]), AuthenticatedCognitoUser(user)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """Render a failed authentication as the library's JSON error response."""
        if isinstance(exc, CognitoAuthError):
            return error_response(exc.error, exc.realm)
        return error_response(MissingTokenError(str(exc) or "Not authenticated"), "api")
