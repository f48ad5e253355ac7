"""The machinery of the suite's loopback HTTP servers: start, stop, restart on one port.

``LoopbackServer`` runs a stdlib ``ThreadingHTTPServer`` on 127.0.0.1 (random
port) in a daemon thread. Use it as a context manager; ``close()`` stops
listening (connections are refused) and ``start()`` listens again on the same
port, so URLs stay valid across a restart. ``fault`` names the current
misbehaviour, one of the class's ``FAULTS`` (``None``: answer normally), and may
be changed at any time; ``errors`` collects unexpected exceptions raised in
request handlers. A subclass sets ``handler_class`` to a ``LoopbackHandler``
subclass, which reaches the server object as ``self.owner``.

``LoopbackHandler`` speaks HTTP/1.1 quietly and answers with a whole body
(``send``), a body behind megabytes of leading whitespace (``send_padded``, or
``send_gzip_bomb`` compressed to a few kilobytes) or a
body that trickles out (``send_trickled``); every answer closes the connection,
and the slow ones stop as soon as the server shuts down.

Used by ``tests.jwks_server.JWKSServer``, ``tests.identity_server.IdentityServer``
and the small servers of single test modules.

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import gzip
import io
import sys
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, ClassVar, Generic, TypeVar, cast

__all__ = ["DISCONNECTS", "LoopbackHandler", "LoopbackServer", "gzip_bomb"]

#: What a client that gave up (timeout, size limit) raises in a handler.
DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)
_PIECE = 64 * 1024

_Owner = TypeVar("_Owner", bound="LoopbackServer")
_Self = TypeVar("_Self", bound="LoopbackServer")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of clients must not be refused by the backlog
    owner: LoopbackServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record unexpected handler errors instead of printing tracebacks."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, DISCONNECTS):
            self.owner.errors.append(exc)


class LoopbackHandler(BaseHTTPRequestHandler, Generic[_Owner]):
    """A quiet HTTP/1.1 request handler of a ``LoopbackServer``."""

    protocol_version = "HTTP/1.1"  # needed for chunked bodies
    #: The ``Content-Type`` of answers that do not name one.
    content_type = "application/json"
    server: _Server

    @property
    def owner(self) -> _Owner:
        """The ``LoopbackServer`` this handler answers for."""
        return cast(_Owner, self.server.owner)

    def send_head(
        self,
        status: int,
        content_type: str | None = None,
        length: int | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """The status line, ``Content-Type``, ``Content-Length`` (unless ``length`` is
        None), ``Connection: close`` and ``headers``."""
        if content_type is None:
            content_type = self.content_type
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """A complete answer."""
        self.send_head(status, content_type, len(body), headers)
        self.wfile.write(body)

    def send_padded(self, status: int, body: bytes, size: int, *, chunked: bool = False) -> None:
        """``body`` behind enough leading spaces to make ``size`` bytes, written 64 KiB at
        a time, with a correct ``Content-Length`` or (``chunked``) as chunks without one."""
        data = memoryview(b" " * max(0, size - len(body)) + body)
        if chunked:
            self.send_head(status, headers={"Transfer-Encoding": "chunked"})
        else:
            self.send_head(status, length=len(data))
        stop = self.owner._stop
        for start in range(0, len(data), _PIECE):
            if stop.is_set():
                return
            piece = data[start : start + _PIECE]
            if chunked:
                self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                self.wfile.write(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    def send_gzip_bomb(self, status: int, body: bytes, size: int) -> None:
        """``body`` behind enough leading spaces to make ``size`` bytes once inflated,
        sent gzip-compressed (``Content-Encoding: gzip``): a few kilobytes on the wire."""
        packed = gzip_bomb(body, size)
        self.send(status, packed, headers={"Content-Encoding": "gzip"})

    def send_trickled(
        self, status: int, body: bytes, *, seconds: float, interval: float, step: int = 1
    ) -> None:
        """The headers now, then ``body`` ``step`` bytes every ``interval`` seconds for
        ``seconds`` in all (the rest at once when that time is up): each read is
        quick, the whole response is not."""
        self.send_head(status, length=len(body))
        self.wfile.flush()
        stop = self.owner._stop
        deadline = time.monotonic() + seconds
        sent = 0
        while sent + step < len(body) and time.monotonic() < deadline:
            self.wfile.write(body[sent : sent + step])
            self.wfile.flush()
            sent += step
            if stop.wait(interval):
                return
        self.wfile.write(body[sent:])

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read their own output."""


def gzip_bomb(body: bytes, size: int) -> bytes:
    """``body`` padded with leading spaces to ``size`` bytes, gzip-compressed (about
    a thousandth of ``size``), built piece by piece: the server holds no inflated copy."""
    packed = io.BytesIO()
    with gzip.GzipFile(fileobj=packed, mode="wb", compresslevel=9) as out:
        padding = max(0, size - len(body))
        piece = b" " * min(padding, _PIECE)
        for _ in range(padding // _PIECE):
            out.write(piece)
        out.write(piece[: padding % _PIECE] + body)
    return packed.getvalue()


class LoopbackServer:
    """A threaded HTTP server on loopback that keeps its port across ``close()``/``start()``."""

    #: The request handler; a subclass sets it.
    handler_class: ClassVar[type[LoopbackHandler[Any]]]
    #: The values ``fault`` accepts.
    FAULTS: ClassVar[frozenset[str | None]] = frozenset({None})

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._port = port
        #: Unexpected exceptions raised in request handlers (should stay empty).
        self.errors: list[BaseException] = []
        self._fault: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()  # set while shutting down: ends slow answers at once
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def fault(self) -> str | None:
        """The current misbehaviour (``None``: answer normally)."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value not in self.FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {sorted(map(str, self.FAULTS))}")
        self._fault = value

    @property
    def port(self) -> int:
        """The bound port; it stays the same across ``close()`` and ``start()``."""
        if self._port == 0:
            name = type(self).__name__
            raise RuntimeError(f"{name} was never started (use it as a context manager)")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self: _Self) -> _Self:
        """Listen (again): after ``close()`` on the same port, so URLs still work."""
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server((self.host, self._port), self.handler_class)
        server.owner = self
        self._server = server
        self._port = int(server.server_address[1])  # a restart keeps the port (and URLs)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=type(self).__name__,
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening: connections are refused until ``start()``."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()  # ends hangs, trickles and huge bodies at once
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self: _Self) -> _Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
