"""The trusted-origin check for cookie-authenticated requests (cross-site request
forgery and cross-site WebSocket hijacking).

A browser attaches the session cookie to requests other sites make it send.
Unsafe methods and WebSocket handshakes authenticated by the cookie must show
where they come from: the ``Origin`` header; else ``Sec-Fetch-Site:
same-origin``; else the origin of the ``Referer``. A request with none of the
three is refused too. The trusted origins are ``trusted_origins``, or the app's
own origin (the scheme and ``Host`` the request arrived with).
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import Scope

__all__ = [
    "SAFE_METHODS",
    "needs_origin_check",
    "own_origin",
    "rejection_message",
    "trusted_request",
]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_DEFAULT_PORTS = {"http": "80", "https": "443"}
_WEB_SCHEMES = {"ws": "http", "wss": "https"}
_SHOWN_ORIGIN = 100


def needs_origin_check(scope: Scope) -> bool:
    """WebSocket handshakes and unsafe HTTP methods."""
    return scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS


def _origin(scheme: str, netloc: str) -> str | None:
    """``scheme://host[:port]`` with the default port dropped; None when ``netloc`` is
    not exactly a host and an optional port (no user info, no second port)."""
    scheme = _WEB_SCHEMES.get(scheme.lower(), scheme.lower())
    try:
        parts = urlsplit(f"//{netloc}")
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if not host or "@" in netloc or parts.path or parts.query or parts.fragment:
        return None
    if ":" in host:
        host = f"[{host}]"
    if port is None or str(port) == _DEFAULT_PORTS.get(scheme):
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_of(url: str) -> str | None:
    """The origin of a URL (``Origin`` or ``Referer``); None if it has none."""
    scheme, separator, rest = url.partition("://")
    if not separator or not scheme:
        return None
    return _origin(scheme, rest.split("/", 1)[0])


def own_origin(scope: Scope, headers: dict[bytes, bytes]) -> str | None:
    """The origin this request was addressed to (its scheme and ``Host``)."""
    host = headers.get(b"host")
    if not host:
        return None
    return _origin(scope.get("scheme", "http"), host.decode("latin-1"))


def trusted_request(scope: Scope, trusted: Collection[str]) -> bool:
    """True when the request shows it comes from a trusted origin (or, with no
    configured ``trusted``, from the app's own origin)."""
    headers: dict[bytes, bytes] = dict(scope.get("headers", ()))
    allowed = trusted or [own for own in (own_origin(scope, headers),) if own]
    origin = headers.get(b"origin")
    if origin is not None:
        value = origin_of(origin.decode("latin-1"))
        return value is not None and value in allowed
    fetch_site = headers.get(b"sec-fetch-site")
    if fetch_site is not None:
        return fetch_site == b"same-origin"  # the browser vouches: the app's own page
    referer = headers.get(b"referer")
    if referer is not None:
        value = origin_of(referer.decode("latin-1"))
        return value is not None and value in allowed
    return False


def _evidence(headers: dict[bytes, bytes]) -> str:
    """Where the request said it came from, as shown in a rejection: the origin of its
    ``Origin`` or ``Referer`` (cut, printable only), or that it showed none."""
    for name in (b"origin", b"referer"):
        raw = headers.get(name)
        if raw is not None:
            text = raw.decode("latin-1")
            value = origin_of(text) or text
            shown = "".join(ch if ch.isprintable() else "?" for ch in value[:_SHOWN_ORIGIN])
            return f"{name.decode().capitalize()} {shown!r}"
    site = headers.get(b"sec-fetch-site")
    if site is not None:
        return f"Sec-Fetch-Site {site.decode('latin-1')[:20]!r}"
    return "no Origin, Sec-Fetch-Site or Referer"


def rejection_message(scope: Scope, trusted: Collection[str]) -> str:
    """Why ``trusted_request`` refused this request, naming the origin it saw, the
    trusted ones and ``COGNITO_TRUSTED_ORIGINS`` (the setting that adds one)."""
    headers: dict[bytes, bytes] = dict(scope.get("headers", ()))
    allowed = list(trusted) or [own for own in (own_origin(scope, headers),) if own]
    listed = ", ".join(allowed) or "none"
    return (
        f"cookie-authenticated {scope.get('method', 'WebSocket')} request from an untrusted "
        f"origin ({_evidence(headers)}); trusted: {listed}. Add the page's origin to "
        "COGNITO_TRUSTED_ORIGINS if it is yours"
    )
