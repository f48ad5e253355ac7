"""``SessionMiddleware``: loads the browser session before the route runs and puts
its cookies on whatever the route returns (plain values, ``Response`` objects,
streaming bodies, WebSocket accepts).

``CognitoAuth.init_app`` (and its ``lifespan``) installs it when browser sign-in
is configured. Requests that carry their own credentials (an ``Authorization``
header; for WebSockets also the ``cognito-bearer`` subprotocol or
``?access_token=``) skip the session entirely.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .context import CONTEXT_KEY
from .manager import BrowserSessions

__all__ = ["SessionMiddleware", "has_explicit_credentials"]


def has_explicit_credentials(scope: Scope) -> bool:
    """True when the request names its own token rather than relying on the cookie."""
    websocket = scope["type"] == "websocket"
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return True
        if websocket and name == b"sec-websocket-protocol" and b"cognito-bearer" in value:
            return True
    if websocket and b"access_token" in scope.get("query_string", b""):
        query = scope["query_string"].decode("latin-1")
        return any(name == "access_token" for name, _ in parse_qsl(query))
    return False


class SessionMiddleware:
    """ASGI middleware putting a ``SessionContext`` in every HTTP/WebSocket request."""

    def __init__(self, app: ASGIApp, *, sessions: BrowserSessions) -> None:
        self.app = app
        self.sessions = sessions

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        sessions = self.sessions
        context = await sessions.load(scope, explicit_credentials=has_explicit_credentials(scope))
        scope.setdefault("state", {})[CONTEXT_KEY] = context
        first = "http.response.start" if kind == "http" else "websocket.accept"

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == first:
                cookies = await sessions.response_cookies(context)
                if cookies:
                    headers = list(message.get("headers", ()))
                    headers += [(b"set-cookie", value) for value in cookies]
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookies)
