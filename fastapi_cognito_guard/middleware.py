"""Whole-app protection: an ASGI middleware and a Starlette authentication backend.

``CognitoAuthMiddleware`` closes every HTTP and WebSocket route outside its
excluded paths; ``CognitoAuthBackend`` plugs into Starlette's own
``AuthenticationMiddleware`` so ``request.user``, ``request.auth.scopes`` and
``@requires(...)`` work.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI
from starlette.authentication import (
    AuthCredentials,
    AuthenticationBackend,
    AuthenticationError,
    BaseUser,
)
from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from . import telemetry
from .claims import CognitoUser
from .errors import CognitoGuardError, MissingTokenError
from .exclusions import HEALTH_PATH, PathExclusions, docs_paths, route_path
from .sessions.context import session_error
from .web.auth import CognitoAuth
from .web.responses import WS_POLICY_VIOLATION, error_response
from .web.tokens import accepting_bearer_subprotocol, offers_bearer_subprotocol

__all__ = ["AuthenticatedCognitoUser", "CognitoAuthBackend", "CognitoAuthMiddleware"]


class CognitoAuthMiddleware:
    """Requires a valid Cognito token on every HTTP and WebSocket request but the excluded.

    ``exclude_paths`` (see ``PathExclusions``) are matched within the app, after its
    ``root_path``; by default exactly ``/health`` and the FastAPI app's own docs
    paths are open. No method is exempt: add Starlette's ``CORSMiddleware``
    outside this one to answer CORS preflights. The user is put at
    ``request.state.user`` and ``scope["user"]``; WebSocket failures close with
    code 1008.
    """

    __cognito_middleware__ = True  # the route map reads its auth and exclusions

    def __init__(
        self,
        app: ASGIApp,
        *,
        auth: CognitoAuth[Any],
        exclude_paths: Iterable[str] | None = None,
    ) -> None:
        self.app = app
        self.auth = auth
        self.exclude_paths = None if exclude_paths is None else PathExclusions(exclude_paths)

    def _excluded(self, scope: Scope) -> bool:
        path = route_path(scope)
        if self.exclude_paths is not None:
            return path in self.exclude_paths
        if path == HEALTH_PATH:
            return True
        # The FastAPI app is the one this wraps, or (added with add_middleware) the
        # one that put itself into the scope before running its middleware.
        app = self.app if isinstance(self.app, FastAPI) else scope.get("app")
        return path in docs_paths(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or self._excluded(scope):
            await self.app(scope, receive, send)
            return
        if offers_bearer_subprotocol(scope):
            send = accepting_bearer_subprotocol(send)
        auth = self.auth
        token = auth.request_token(HTTPConnection(scope))
        try:
            if token is None:
                raise session_error(scope) or MissingTokenError("Not authenticated")
            user = await auth.request_user(scope, token)
        except CognitoGuardError as error:
            if kind == "websocket":
                telemetry.request_refused(error)  # error_response does it for HTTP
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
                describe = auth.authenticator.resource_metadata
                metadata = None if describe is None else describe(HTTPConnection(scope))
                response = error_response(error, auth.realm, resource_metadata=metadata)
                await response(scope, receive, send)
            return
        scope["user"] = user
        scope.setdefault("state", {})["user"] = user
        await self.app(scope, receive, send)


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
        token = self.auth.request_token(conn)
        if token is None:
            return None
        try:
            user = await self.auth.request_user(conn.scope, token)
        except CognitoGuardError as error:
            raise CognitoAuthError(error, self.auth.realm) from None
        return AuthCredentials([*user.scopes, *user.groups]), AuthenticatedCognitoUser(user)

    @staticmethod
    def on_error(conn: HTTPConnection, exc: AuthenticationError) -> Response:
        """Render a failed authentication as the library's JSON error response."""
        if isinstance(exc, CognitoAuthError):
            return error_response(exc.error, exc.realm)
        return error_response(MissingTokenError(str(exc) or "Not authenticated"), "api")
