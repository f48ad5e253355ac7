"""How a failed check answers: HTTP errors with RFC 6750 challenges, WebSocket closes.

A step-up refusal is RFC 9470's challenge (``error="insufficient_user_authentication"``
with the ``max_age`` / ``acr_values`` to sign in again with); once the app serves RFC
9728 metadata, every 401 challenge names it (``resource_metadata="…"``).

Every error carries its stable ``code``; the JSON body is ``{"detail", "code"}``.
``install_error_handlers`` makes an app render the library's exceptions that way
(FastAPI's own handler still gives the right status and headers without it).
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketException
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketState

from .. import telemetry
from ..errors import (
    CognitoGuardError,
    InsufficientScopeError,
    InsufficientUserAuthenticationError,
    InvalidTokenError,
    MissingTokenError,
    ServiceUnavailableError,
)

__all__ = [
    "WS_INTERNAL_ERROR",
    "WS_POLICY_VIOLATION",
    "CognitoHTTPException",
    "CognitoWebSocketException",
    "challenge_headers",
    "error_response",
    "http_error",
    "install_error_handlers",
    "step_up_challenge",
]

WS_POLICY_VIOLATION = 1008
"""The WebSocket close code for a connection refused for its token."""

WS_INTERNAL_ERROR = 1011
"""The WebSocket close code for a connection the server cannot authenticate at all."""


class CognitoHTTPException(HTTPException):
    """An HTTP error from a Cognito check, carrying the stable error ``code``.

    Rendered as ``{"detail": ..., "code": ...}`` once ``CognitoAuth.init_app`` (or
    its ``lifespan``) has registered the handler; FastAPI's own handler still
    gives the right status and headers without it.
    """

    def __init__(
        self, error: CognitoGuardError, realm: str, *, resource_metadata: str | None = None
    ) -> None:
        headers = challenge_headers(error, realm, resource_metadata=resource_metadata)
        super().__init__(error.status_code, error.message, headers)
        self.code = error.code


class CognitoWebSocketException(WebSocketException):
    """A WebSocket refused for its token: closed with 1008 and the error code as reason."""


def http_error(
    error: CognitoGuardError,
    conn: HTTPConnection | None,
    realm: str,
    *,
    resource_metadata: str | None = None,
) -> CognitoHTTPException | CognitoWebSocketException:
    """The exception a dependency raises for ``error``: an HTTP error with its
    challenge, or a 1008 close on a WebSocket."""
    telemetry.request_refused(error)
    if conn is not None and conn.scope["type"] == "websocket":
        return CognitoWebSocketException(WS_POLICY_VIOLATION, reason=error.code)
    return CognitoHTTPException(error, realm, resource_metadata=resource_metadata)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def challenge_headers(
    error: CognitoGuardError, realm: str, *, resource_metadata: str | None = None
) -> dict[str, str]:
    """The RFC 6750 ``WWW-Authenticate`` (or ``Retry-After``) headers for an error;
    401 challenges name ``resource_metadata`` (RFC 9728 §5.1) when given."""
    if isinstance(error, ServiceUnavailableError):
        return {"Retry-After": str(error.retry_after)}
    metadata = (
        "" if resource_metadata is None else f', resource_metadata="{_quote(resource_metadata)}"'
    )
    if isinstance(error, InsufficientUserAuthenticationError):
        return {"WWW-Authenticate": step_up_challenge(error) + metadata}
    challenge = f'Bearer realm="{_quote(realm)}"'
    if isinstance(error, MissingTokenError):
        return {"WWW-Authenticate": challenge + metadata}
    if isinstance(error, InvalidTokenError):
        description = _quote(error.message)
        challenge += f', error="invalid_token", error_description="{description}"'
        return {"WWW-Authenticate": challenge + metadata}
    if isinstance(error, InsufficientScopeError):
        scope = _quote(" ".join(error.scopes))
        return {"WWW-Authenticate": f'{challenge}, error="insufficient_scope", scope="{scope}"'}
    return {}


def step_up_challenge(error: InsufficientUserAuthenticationError) -> str:
    """RFC 9470 §3: ``Bearer error="insufficient_user_authentication",
    error_description="…"``, then ``max_age="…"`` and/or ``acr_values="…"`` (space
    separated, in the order the route lists them)."""
    challenge = (
        'Bearer error="insufficient_user_authentication", '
        f'error_description="{_quote(error.message)}"'
    )
    if error.max_age is not None:
        challenge += f', max_age="{error.max_age}"'
    if error.acr_values:
        challenge += f', acr_values="{_quote(" ".join(error.acr_values))}"'
    return challenge


def error_response(
    error: CognitoGuardError, realm: str, *, resource_metadata: str | None = None
) -> JSONResponse:
    """The JSON response for a Cognito check that failed."""
    telemetry.request_refused(error)
    return JSONResponse(
        {"detail": error.message, "code": error.code},
        status_code=error.status_code,
        headers=challenge_headers(error, realm, resource_metadata=resource_metadata),
    )


async def _render_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CognitoHTTPException)
    return JSONResponse(
        {"detail": exc.detail, "code": exc.code}, status_code=exc.status_code, headers=exc.headers
    )


async def _close_websocket(websocket: WebSocket, exc: Exception) -> None:
    """Accept, then close with the policy-violation code, so the client sees 1008
    (closing before the handshake completes would reach it as an HTTP 403)."""
    assert isinstance(exc, CognitoWebSocketException)
    if websocket.application_state == WebSocketState.CONNECTING:
        await websocket.accept()
    await websocket.close(code=exc.code, reason=exc.reason)


def install_error_handlers(app: FastAPI) -> None:
    """Render the library's HTTP errors as ``{detail, code}`` and close refused
    WebSockets with 1008."""
    app.add_exception_handler(CognitoHTTPException, _render_http_error)
    app.add_exception_handler(CognitoWebSocketException, _close_websocket)
