"""The token of a connection: where a request carries its bearer token, read once.

HTTP requests carry it in ``Authorization: Bearer``; WebSockets may also offer it as
the ``cognito-bearer`` subprotocol pair or the ``access_token`` query parameter
(browsers cannot set headers on a WebSocket). Without any of those, a browser
session (§13) offers its token. Every dependency, the middleware and the sign-in
routes read the token here, so a query token leaves the scope on first read and
nothing logs it afterwards.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from starlette.types import Message, Scope, Send

from ..sessions.context import session_token

__all__ = [
    "BEARER_SUBPROTOCOL",
    "RequestAuth",
    "accepting_bearer_subprotocol",
    "bearer_token",
    "connection_token",
    "offers_bearer_subprotocol",
    "request_auth",
]

BEARER_SUBPROTOCOL = "cognito-bearer"
"""Browsers cannot set headers on a WebSocket: they offer ``Sec-WebSocket-Protocol:
cognito-bearer, <token>`` instead, and the accept must name ``cognito-bearer``."""

_SCOPE_KEY = "fastapi_cognito_guard"


class RequestAuth:
    """What the library learned about one request, kept in its ASGI scope.

    The token is read once (a query token leaves the scope on that first read, so
    nothing logs it afterwards); ``users`` holds the user each verifying part (one per
    ``CognitoAuth`` and one per middleware) accepted for this token, so every auth
    decides for itself and only once.
    """

    __slots__ = ("token", "users")

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.users: dict[object, tuple[str, Any]] = {}


def request_auth(scope: Scope) -> RequestAuth:
    """The request's ``RequestAuth``, created (and its token read) on first use."""
    found: RequestAuth | None = scope.get(_SCOPE_KEY)
    if found is None:
        found = RequestAuth(_read_token(scope))
        scope[_SCOPE_KEY] = found
    return found


def _read_token(scope: Scope) -> str | None:
    """The bearer token. HTTP: the ``Authorization`` header only.
    WebSocket: that header, else the ``cognito-bearer`` subprotocol pair, else
    ``?access_token=`` (which is always removed from the scope's query string)."""
    header = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            header = bearer_token(value.decode("latin-1"))
            break
    if scope["type"] != "websocket":
        return header
    query = _take_query_token(scope)
    if header is not None:
        return header
    offered = list(scope.get("subprotocols", ()))
    if BEARER_SUBPROTOCOL in offered:
        position = offered.index(BEARER_SUBPROTOCOL) + 1
        if position < len(offered) and offered[position]:
            return str(offered[position])
    return query


def _take_query_token(scope: Scope) -> str | None:
    """Remove every ``access_token`` parameter from the query string (whatever its
    encoding); the first one's value."""
    parts = scope.get("query_string", b"").split(b"&")
    kept = [part for part in parts if not _is_token_parameter(part)]
    if len(kept) == len(parts):
        return None
    scope["query_string"] = b"&".join(kept)
    first = next(part for part in parts if _is_token_parameter(part))
    return unquote_plus(first.partition(b"=")[2].decode("latin-1")) or None


def _is_token_parameter(part: bytes) -> bool:
    return unquote_plus(part.partition(b"=")[0].decode("latin-1")) == "access_token"


def connection_token(scope: Scope) -> str | None:
    """The bearer token of a request: the ``Authorization`` header; WebSockets may
    also use the ``cognito-bearer`` subprotocol pair or ``?access_token=`` (browsers
    cannot set headers on a WebSocket). Read once per request. Without any of
    those, the browser session's token (§13) when the request has one."""
    return request_auth(scope).token or session_token(scope)


def offers_bearer_subprotocol(scope: Scope) -> bool:
    """Whether a WebSocket client offered the ``cognito-bearer`` subprotocol."""
    return scope["type"] == "websocket" and BEARER_SUBPROTOCOL in scope.get("subprotocols", ())


def accepting_bearer_subprotocol(send: Send) -> Send:
    """``send``, but a WebSocket accept that names no subprotocol names ``cognito-bearer``
    (a browser drops a connection whose accept does not name the one it offered)."""
    if getattr(send, "_names_bearer_subprotocol", False):
        return send

    async def send_naming_subprotocol(message: Message) -> None:
        if message["type"] == "websocket.accept" and message.get("subprotocol") is None:
            message = {**message, "subprotocol": BEARER_SUBPROTOCOL}
        await send(message)

    send_naming_subprotocol._names_bearer_subprotocol = True  # type: ignore[attr-defined]
    return send_naming_subprotocol


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip(" \t") or None
