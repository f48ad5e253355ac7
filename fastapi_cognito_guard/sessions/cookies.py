"""Session cookie names, attributes and chunking.

Browsers keep about 4 KB per cookie, so a value that would pass that is split
over ``name.0``, ``name.1``, ... . Over https every cookie carries ``Secure``
and the ``__Host-`` prefix (which pins it to this host and ``Path=/``); over
plain http (loopback, or ``allow_insecure_http``) neither can be used.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["CHUNK_CHARS", "ChunkedCookie", "clear_cookie", "cookie_name", "set_cookie"]

CHUNK_CHARS = 3800
"""Value characters per cookie: with its name and attributes a ``Set-Cookie`` stays
under 4096 bytes, the size every browser keeps."""

MAX_CHUNKS = 16
"""More chunks than this is not a session this library wrote (about 60 KB)."""

_SECURE_PREFIX = "__Host-"


def cookie_name(base: str, *, secure: bool) -> str:
    """The cookie's name on this transport (``__Host-`` prefixed over https)."""
    return _SECURE_PREFIX + base if secure else base


def set_cookie(name: str, value: str, *, secure: bool, max_age: int) -> bytes:
    """A ``Set-Cookie`` header value: HttpOnly, SameSite=Lax, Path=/ (Secure over https)."""
    attributes = f"; Max-Age={max(0, max_age)}; Path=/; HttpOnly; SameSite=Lax"
    if secure:
        attributes += "; Secure"
    return f"{name}={value}{attributes}".encode("latin-1")


def clear_cookie(name: str, *, secure: bool) -> bytes:
    """A ``Set-Cookie`` header value that removes the cookie from the browser."""
    return set_cookie(name, "", secure=secure, max_age=0)


class ChunkedCookie:
    """One logical cookie stored over as many browser cookies as its value needs."""

    __slots__ = ("base",)

    def __init__(self, base: str) -> None:
        self.base = base

    def present(self, cookies: Mapping[str, str], *, secure: bool) -> list[str]:
        """The names of this cookie's parts the request carried."""
        name = cookie_name(self.base, secure=secure)
        found = [name] if name in cookies else []
        found += [f"{name}.{i}" for i in range(MAX_CHUNKS + 1) if f"{name}.{i}" in cookies]
        return found

    def read(self, cookies: Mapping[str, str], *, secure: bool) -> str | None:
        """The whole value: the single cookie, else the chunks ``.0``, ``.1``, ... joined."""
        name = cookie_name(self.base, secure=secure)
        single = cookies.get(name)
        if single is not None:
            return single
        parts = []
        for index in range(MAX_CHUNKS):
            part = cookies.get(f"{name}.{index}")
            if part is None:
                break
            parts.append(part)
        return "".join(parts) or None

    def write(
        self, value: str, *, secure: bool, max_age: int, present: Iterable[str] = ()
    ) -> list[bytes]:
        """``Set-Cookie`` values storing ``value``, and clearing parts it no longer uses."""
        name = cookie_name(self.base, secure=secure)
        if len(value) <= CHUNK_CHARS:
            written = {name: value}
        else:
            chunks = [value[i : i + CHUNK_CHARS] for i in range(0, len(value), CHUNK_CHARS)]
            written = {f"{name}.{index}": chunk for index, chunk in enumerate(chunks)}
        headers = [set_cookie(n, v, secure=secure, max_age=max_age) for n, v in written.items()]
        headers += [clear_cookie(n, secure=secure) for n in present if n not in written]
        return headers

    def clear(self, present: Iterable[str], *, secure: bool) -> list[bytes]:
        """``Set-Cookie`` values removing every part the request carried."""
        return [clear_cookie(name, secure=secure) for name in present]
