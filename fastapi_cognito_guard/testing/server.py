"""The local issuer's HTTP server: a stdlib ``ThreadingHTTPServer`` in a daemon thread.

It only moves bytes: each request becomes a :class:`~.hosted_ui.Request`, the
handler's :class:`~.hosted_ui.Reply` goes back (after its delay, cut short when
the server stops). Bodies over 64 KiB are refused with 413, a malformed
``Content-Length`` with 400.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .http import Reply, Request

__all__ = ["MAX_BODY_BYTES", "serve_http"]

MAX_BODY_BYTES = 64 * 1024


@contextmanager
def serve_http(
    handle: Callable[[Request], Reply], host: str, port: int, public_url: str | None = None
) -> Iterator[str]:
    """Serve ``handle`` on ``host:port`` (0: a free port); yields the base URL.

    The base URL is ``public_url`` when given (a server bound to ``0.0.0.0``
    is reached under another name), else ``http://{host}:{port}``.
    """
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def _dispatch(self) -> None:
            length = self.headers.get("Content-Length", "0")
            if not length.isdigit():
                reply = Reply.json(400, {"error": "invalid_request"})
            elif int(length) > MAX_BODY_BYTES:
                reply = Reply.json(413, {"error": "invalid_request"})
            else:
                path, _, query = self.path.partition("?")
                body = self.rfile.read(int(length))
                headers = {name.lower(): value for name, value in self.headers.items()}
                reply = handle(Request(self.command, path, query, headers, body))
            if reply.delay and stopping.wait(reply.delay):
                return
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(reply.body)

        do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = _dispatch

        def log_message(self, format: str, *args: Any) -> None:
            """Stay quiet: tests read their own output, and URLs may carry codes."""

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    # No poll interval: the loop sleeps in select() until a connection comes. A loop
    # waking every 50 ms took the GIL from the process it runs in often enough to make
    # its Python code about 10% slower and far noisier (benchmarks/verify.py); stopping
    # wakes it with a connection instead.
    thread = threading.Thread(
        target=server.serve_forever, args=(None,), name="LocalIssuer", daemon=True
    )
    thread.start()
    bound_port = server.server_address[1]
    try:
        yield (public_url or f"http://{host}:{bound_port}").rstrip("/")
    finally:
        stopping.set()
        _stop(server)
        server.server_close()
        thread.join()


def _stop(server: ThreadingHTTPServer) -> None:
    """``server.shutdown()``, waking its ``select()`` with empty connections until the
    loop has seen the request to stop (the first wake may come before it)."""
    address, port = server.server_address[:2]
    host = str(address)
    if ipaddress.ip_address(host).is_unspecified:  # bound to every interface
        host = "127.0.0.1"
    stopper = threading.Thread(target=server.shutdown, name="LocalIssuer-stop", daemon=True)
    stopper.start()
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=1).close()
        stopper.join(0.05)
