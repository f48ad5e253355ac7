"""A real HTTP JWKS server on 127.0.0.1 that can misbehave on command.

``JWKSServer(issuer)`` publishes a ``LocalIssuer``'s current ``jwks()`` at any
path ending ``/.well-known/jwks.json`` (stdlib ``ThreadingHTTPServer`` in a
daemon thread, random port), counts the requests it gets (thread-safe) and,
while ``server.fault`` names a fault, answers the way a broken or hostile
JWKS endpoint would. It exercises the verifier's real HTTP path (httpx over a
socket), which ``httpx.MockTransport`` and respx cannot: timeouts, streamed
bodies, connection errors.

Faults (``JWKSServer.FAULTS``):

- ``None``: the issuer's JWKS, ``200 application/json``.
- ``"status_500"`` / ``"status_429"`` (with ``Retry-After: 5``).
- ``"hang"``: answers (normally) only after ``hang_seconds``, longer than any
  client timeout; the wait ends at once when the server shuts down.
- ``"huge"``: a 10 MB body with a correct ``Content-Length``; ``"huge_chunked"``:
  10 MB chunked, no ``Content-Length``. Both bodies are the valid JWKS padded
  with leading whitespace, so only a size limit rejects them.
- ``"not_json"``, ``"truncated_json"`` (the first half of the JWKS),
  ``"no_keys"`` (``{"foo": []}``), ``"keys_not_list"`` (``{"keys": {...}}``),
  ``"empty_keys"`` (``{"keys": []}``), ``"deep_json"`` (``{"keys": [[[...]]]}``
  nested 5,000 deep: 10 KB that ``json.loads`` cannot parse without a
  ``RecursionError``).
- ``"wrong_content_type"``: the valid JWKS as ``text/html``.
- ``"redirect"``: ``302`` to ``{base}/redirected/...jwks.json``, which this
  server answers with the valid JWKS (so following the redirect would succeed
  and show up as a second request).

A refused connection needs no fault: ``close()`` the server (``start()`` brings
it back on the same port and URL), or use ``closed_port_url()``.
``server.document`` overrides what is served (e.g. a key replaced under the same
kid). Every test module can use the ``jwks_server`` fixture (a fresh
``LocalIssuer`` per test) by listing this module in ``pytest_plugins``.

PYTEST_DONT_REWRITE (no asserts here): test modules import this module and also
register it as a plugin.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import pytest

from fastapi_cognito_guard.settings import CognitoSettings
from fastapi_cognito_guard.testing import LocalIssuer

__all__ = ["FAULTS", "JWKS_SUFFIX", "JWKSServer", "closed_port_url", "jwks_server"]

JWKS_SUFFIX = "/.well-known/jwks.json"
HUGE_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024
_REDIRECTED = "/redirected"

FAULTS: frozenset[str | None] = frozenset(
    {
        None,
        "status_500",
        "status_429",
        "hang",
        "huge",
        "huge_chunked",
        "not_json",
        "truncated_json",
        "no_keys",
        "keys_not_list",
        "empty_keys",
        "deep_json",
        "wrong_content_type",
        "redirect",
    }
)

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # a burst of clients must not be refused by the backlog
    owner: JWKSServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Record unexpected handler errors instead of printing tracebacks."""
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, _DISCONNECTS):
            self.owner.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # needed for chunked bodies
    server: _Server

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if not path.endswith(JWKS_SUFFIX):
            self._send(404, b"not found", "text/plain")
            return
        owner = self.server.owner
        fault = owner._record(path)
        if path.startswith(_REDIRECTED + "/"):
            fault = None  # the redirect target always answers
        with contextlib.suppress(*_DISCONNECTS):  # the client gave up (timeout, size limit)
            owner._respond(self, fault, path)
        self.close_connection = True

    def _send(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: tests read their own output."""


class JWKSServer:
    """A loopback JWKS endpoint for ``issuer`` with switchable faults.

    Use as a context manager; ``url`` is a JWKS URL on it, ``requests`` counts
    JWKS requests received (whatever was answered), ``fault`` picks the
    misbehaviour (``None`` is normal) and may be changed at any time.
    """

    FAULTS = FAULTS

    def __init__(
        self,
        issuer: LocalIssuer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 30.0,
        huge_bytes: int = HUGE_BYTES,
    ) -> None:
        self.issuer = issuer
        self.host = host
        self._port = port
        self.hang_seconds = hang_seconds
        self.huge_bytes = huge_bytes
        #: When set, served instead of ``issuer.jwks()``.
        self.document: Mapping[str, Any] | None = None
        #: Paths of every JWKS request, in arrival order.
        self.paths: list[str] = []
        #: Unexpected exceptions raised in request handlers (should stay empty).
        self.errors: list[BaseException] = []
        self._fault: str | None = None
        self._requests = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- state -------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        """The current misbehaviour (``None``: answer normally)."""
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {sorted(map(str, FAULTS))}")
        self._fault = value

    @property
    def requests(self) -> int:
        """How many JWKS requests arrived so far."""
        with self._lock:
            return self._requests

    def reset_requests(self) -> None:
        """Start counting from zero again."""
        with self._lock:
            self._requests = 0
            self.paths.clear()

    def _record(self, path: str) -> str | None:
        with self._lock:
            self._requests += 1
            self.paths.append(path)
            return self._fault

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port; it stays the same across ``close()`` and ``start()``."""
        if self._port == 0:
            raise RuntimeError("JWKSServer was never started (use it as a context manager)")
        return self._port

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The issuer's JWKS URL on this server."""
        return self.url_for(self.issuer.user_pool_id)

    def url_for(self, prefix: str) -> str:
        """Another JWKS URL on this server (served the same way), e.g. per pool."""
        return f"{self.base_url}/{prefix.strip('/')}{JWKS_SUFFIX}"

    def settings(self, **overrides: Any) -> CognitoSettings:
        """The issuer's settings with ``jwks_url`` pointing here (``overrides`` win)."""
        values: dict[str, Any] = {"jwks_url": self.url}
        values.update(overrides)
        return self.issuer.settings(**values)

    # -- answering ---------------------------------------------------------------

    def _jwks_body(self) -> bytes:
        document = self.document if self.document is not None else self.issuer.jwks()
        return json.dumps(document).encode()

    def _padded_body(self) -> bytes:
        body = self._jwks_body()
        return b" " * max(0, self.huge_bytes - len(body)) + body

    def _respond(self, handler: _Handler, fault: str | None, path: str) -> None:
        if fault == "hang":
            if self._stop.wait(self.hang_seconds):
                return  # shutting down: drop the connection unanswered
            fault = None
        if fault is None:
            handler._send(200, self._jwks_body())
        elif fault == "wrong_content_type":
            handler._send(200, self._jwks_body(), "text/html; charset=utf-8")
        elif fault == "status_500":
            handler._send(500, b'{"message": "internal error"}')
        elif fault == "status_429":
            handler._send(429, b'{"message": "slow down"}', headers={"Retry-After": "5"})
        elif fault == "redirect":
            location = f"{self.base_url}{_REDIRECTED}{path}"
            handler._send(302, b"", "text/plain", headers={"Location": location})
        elif fault == "not_json":
            handler._send(200, b"<html><body>Service Unavailable</body></html>")
        elif fault == "truncated_json":
            body = self._jwks_body()
            handler._send(200, body[: len(body) // 2])
        elif fault == "no_keys":
            handler._send(200, b'{"foo": []}')
        elif fault == "keys_not_list":
            handler._send(200, json.dumps({"keys": {"0": self.issuer.jwks()["keys"][0]}}).encode())
        elif fault == "empty_keys":
            handler._send(200, b'{"keys": []}')
        elif fault == "deep_json":
            handler._send(200, b'{"keys": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        elif fault == "huge":
            self._send_huge(handler, chunked=False)
        elif fault == "huge_chunked":
            self._send_huge(handler, chunked=True)
        else:  # pragma: no cover - the setter validates
            raise AssertionError(fault)

    def _send_huge(self, handler: _Handler, *, chunked: bool) -> None:
        body = self._padded_body()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        if chunked:
            handler.send_header("Transfer-Encoding", "chunked")
        else:
            handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        view = memoryview(body)
        for start in range(0, len(body), _CHUNK):
            if self._stop.is_set():
                return
            piece = view[start : start + _CHUNK]
            if chunked:
                handler.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            else:
                handler.wfile.write(piece)
        if chunked:
            handler.wfile.write(b"0\r\n\r\n")

    # -- lifecycle ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> JWKSServer:
        """Listen (again): after ``close()`` on the same port, so ``url`` still works."""
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server((self.host, self._port), _Handler)
        server.owner = self
        self._server = server
        self._port = int(server.server_address[1])  # a restart keeps the port (and URL)
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="JWKSServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening: connections to ``url`` are refused until ``start()``."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()  # ends hangs and huge bodies at once
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> JWKSServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.base_url if self._server is not None else "closed"
        return f"JWKSServer({where}, fault={self._fault!r}, requests={self.requests})"


def closed_port_url(path: str = f"/pool{JWKS_SUFFIX}") -> str:
    """A loopback URL on a port nothing listens on (connections are refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


@pytest.fixture
def jwks_server() -> Iterator[JWKSServer]:
    """A running ``JWKSServer`` for a fresh ``LocalIssuer`` (its own RSA key)."""
    with JWKSServer(LocalIssuer()) as server:
        yield server
