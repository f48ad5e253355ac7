"""How a failed check answers: HTTP errors with RFC 6750 challenges, WebSocket closes.

Every error carries its stable ``code``; the JSON body is ``{"detail", "code"}``.
``install_error_handlers`` makes an app render the library's exceptions that way
(FastAPI's own handler still gives the right status and headers without it).
"""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketException
from fastapi.responses import JSONResponse
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketState

from ..errors import (
    CognitoGuardError,
    InsufficientScopeError,
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

    def __init__(self, error: CognitoGuardError, realm: str) -> None:
        super().__init__(error.status_code, error.message, challenge_headers(error, realm))
        self.code = error.code


class CognitoWebSocketException(WebSocketException):
    """A WebSocket refused for its token: closed with 1008 and the error code as reason."""


def http_error(
    error: CognitoGuardError, conn: HTTPConnection | None, realm: str
) -> CognitoHTTPException | CognitoWebSocketException:
    """The exception a dependency raises for ``error``: an HTTP error with its
    challenge, or a 1008 close on a WebSocket."""
    if conn is not None and conn.scope["type"] == "websocket":
        return CognitoWebSocketException(WS_POLICY_VIOLATION, reason=error.code)
    return CognitoHTTPException(error, realm)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def challenge_headers(error: CognitoGuardError, realm: str) -> dict[str, str]:
    """The RFC 6750 ``WWW-Authenticate`` (or ``Retry-After``) headers for an error."""
    if isinstance(error, ServiceUnavailableError):
        return {"Retry-After": str(error.retry_after)}
    challenge = f'Bearer realm="{_quote(realm)}"'
    if isinstance(error, MissingTokenError):
        return {"WWW-Authenticate": challenge}
    if isinstance(error, InvalidTokenError):
        description = _quote(error.message)
        challenge += f', error="invalid_token", error_description="{description}"'
        return {"WWW-Authenticate": challenge}
    if isinstance(error, InsufficientScopeError):
        scope = _quote(" ".join(error.scopes))
        return {"WWW-Authenticate": f'{challenge}, error="insufficient_scope", scope="{scope}"'}
    return {}


def error_response(error: CognitoGuardError, realm: str) -> JSONResponse:
    """The JSON response for a Cognito check that failed."""
    return JSONResponse(
        {"detail": error.message, "code": error.code},
        status_code=error.status_code,
        headers=challenge_headers(error, realm),
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
