"""A real Cognito Identity endpoint on 127.0.0.1 that can misbehave on command.

``IdentityServer()`` speaks the JSON 1.1 protocol of ``cognito-identity`` (a
stdlib ``ThreadingHTTPServer`` in a daemon thread, random port): a ``POST /``
with ``X-Amz-Target: AWSCognitoIdentityService.GetId`` answers
``{"IdentityId": ...}`` (one identity per ``sub`` of the login token), and
``...GetCredentialsForIdentity`` answers ``{"Credentials": {"AccessKeyId",
"SecretKey", "SessionToken", "Expiration": <epoch seconds, now + 3600>},
"IdentityId": ...}``. Calls are counted per action (thread-safe), whatever was
answered. While ``server.fault`` names a fault, every action is answered the way
a broken or hostile endpoint would:

- ``None``: the normal answer, ``200 application/x-amz-json-1.1``.
- ``"status_500"``: an HTML error page; ``"status_429"``: ``Retry-After: 7``
  and Cognito's ``TooManyRequestsException``.
- ``"not_authorized"``: ``400 NotAuthorizedException`` (a denial, not an outage).
- ``"slow_body"``: the normal answer, but its body trickles out one byte every
  ``slow_interval`` seconds for ``slow_seconds`` in all: each read is quick, the
  whole response is not.
- ``"hang"``: nothing at all for ``slow_seconds``, then the normal answer.
- ``"huge"``: the normal answer padded with leading whitespace to 10 MB
  (``Content-Length`` set), so only a size limit rejects it.
- ``"truncated_json"``: the first half of the normal answer.
- ``"wrong_content_type"``: the normal answer as ``text/html``.
- ``"redirect"``: ``307`` to ``redirect_to`` (another server: following it would
  show up there as a call).

A refused connection needs no fault: ``close()`` the server (``start()`` brings
it back on the same port).

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import base64
import contextlib
import json
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

__all__ = [
    "ACCESS_KEY_ID",
    "FAULTS",
    "GET_CREDENTIALS",
    "GET_ID",
    "SECRET_KEY",
    "SESSION_TOKEN",
    "IdentityServer",
]

TARGET_PREFIX = "AWSCognitoIdentityService."
GET_ID = "GetId"
GET_CREDENTIALS = "GetCredentialsForIdentity"
AMZ_JSON = "application/x-amz-json-1.1"
ACCESS_KEY_ID = "ASIALOCALIDENTITY001"
SECRET_KEY = "local-SECRET-key-never-logged-4d1e"
SESSION_TOKEN = "local-SESSION-token-never-logged-9a7c"
HUGE_BYTES = 10 * 1024 * 1024
_CHUNK = 64 * 1024

FAULTS: frozenset[str | None] = frozenset(
    {
        None,
        "status_500",
        "status_429",
        "not_authorized",
        "slow_body",
        "hang",
        "huge",
        "truncated_json",
        "wrong_content_type",
        "redirect",
    }
)

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


def _sub_of(token: str) -> str:
    """The ``sub`` of a JWT, unverified (the real service checks it; this one need not)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["sub"])
    except (IndexError, ValueError, KeyError, TypeError):
        return token


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128
    owner: IdentityServer

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if exc is not None and not isinstance(exc, _DISCONNECTS):
            self.owner.errors.append(exc)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "")
        owner = self.server.owner
        action = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        fault = owner._record(action)
        with contextlib.suppress(*_DISCONNECTS):  # the client gave up (timeout)
            owner._respond(self, fault, action, raw)
        self.close_connection = True

    def send(
        self,
        status: int,
        body: bytes,
        content_type: str = AMZ_JSON,
        headers: dict[str, str] | None = None,
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


class IdentityServer:
    """A loopback Cognito Identity endpoint with switchable faults.

    Use as a context manager; ``url`` is the endpoint (``identity_endpoint``),
    ``calls[action]`` counts requests per action, ``fault`` picks the
    misbehaviour (``None`` is normal) and may be changed at any time.
    """

    FAULTS = FAULTS

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        slow_seconds: float = 1.0,
        slow_interval: float = 0.05,
        huge_bytes: int = HUGE_BYTES,
        redirect_to: str | None = None,
    ) -> None:
        self.host = host
        self._port = port
        self.slow_seconds = slow_seconds
        self.slow_interval = slow_interval
        self.huge_bytes = huge_bytes
        self.redirect_to = redirect_to
        #: Requests per action (``""`` for a request without a Cognito target).
        self.calls: Counter[str] = Counter()
        #: The JSON body of every request, in arrival order (secrets are the caller's).
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        #: Unexpected exceptions raised in request handlers (should stay empty).
        self.errors: list[BaseException] = []
        self._fault: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- state -------------------------------------------------------------------

    @property
    def fault(self) -> str | None:
        return self._fault

    @fault.setter
    def fault(self, value: str | None) -> None:
        if value not in FAULTS:
            raise ValueError(f"unknown fault {value!r}; known: {sorted(map(str, FAULTS))}")
        self._fault = value

    def counts(self) -> tuple[int, int]:
        """``(GetId calls, GetCredentialsForIdentity calls)`` so far."""
        with self._lock:
            return self.calls[GET_ID], self.calls[GET_CREDENTIALS]

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def _record(self, action: str) -> str | None:
        with self._lock:
            self.calls[action] += 1
            return self._fault

    # -- addresses ---------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port == 0:
            raise RuntimeError("IdentityServer was never started (use it as a context manager)")
        return self._port

    @property
    def url(self) -> str:
        """The endpoint, as ``identity_endpoint`` expects it."""
        return f"http://{self.host}:{self.port}/"

    # -- answering ---------------------------------------------------------------

    def _answer(self, action: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"__type": "SerializationException", "message": "bad JSON"}
        with self._lock:
            self.bodies.append((action, body))
        if action == GET_ID:
            logins = body.get("Logins") or {}
            token = next(iter(logins.values()), "") if isinstance(logins, dict) else ""
            identity = uuid.uuid5(uuid.NAMESPACE_URL, _sub_of(str(token)))
            return 200, {"IdentityId": f"eu-central-1:{identity}"}
        if action == GET_CREDENTIALS:
            credentials = {
                "AccessKeyId": ACCESS_KEY_ID,
                "SecretKey": SECRET_KEY,
                "SessionToken": SESSION_TOKEN,
                "Expiration": time.time() + 3600,
            }
            return 200, {"IdentityId": body.get("IdentityId"), "Credentials": credentials}
        return 400, {"__type": "UnknownOperationException", "message": "unknown operation"}

    def _respond(self, handler: _Handler, fault: str | None, action: str, raw: bytes) -> None:
        if fault == "hang":
            if self._stop.wait(self.slow_seconds):
                return
            fault = None
        if fault is None or fault in ("slow_body", "wrong_content_type", "truncated_json"):
            status, answer = self._answer(action, raw)
            body = json.dumps(answer).encode()
            if fault is None:
                handler.send(status, body)
            elif fault == "wrong_content_type":
                handler.send(status, body, "text/html; charset=utf-8")
            elif fault == "truncated_json":
                handler.send(status, body[: len(body) // 2])
            else:
                self._trickle(handler, status, body)
        elif fault == "status_500":
            handler.send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        elif fault == "status_429":
            answer = {"__type": "TooManyRequestsException", "message": "slow down"}
            handler.send(429, json.dumps(answer).encode(), headers={"Retry-After": "7"})
        elif fault == "not_authorized":
            answer = {"__type": "NotAuthorizedException", "message": "Invalid login token."}
            handler.send(400, json.dumps(answer).encode())
        elif fault == "huge":
            self._send_huge(handler, action, raw)
        elif fault == "redirect":
            location = self.redirect_to or f"http://{self.host}:{self.port}/elsewhere"
            handler.send(307, b"", "text/plain", headers={"Location": location})
        else:  # pragma: no cover - the setter validates
            raise AssertionError(fault)

    def _trickle(self, handler: _Handler, status: int, body: bytes) -> None:
        """Send the headers now and the body a byte at a time over ``slow_seconds``
        (the rest at once when that time is up)."""
        handler.send_response(status)
        handler.send_header("Content-Type", AMZ_JSON)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.flush()
        deadline = time.monotonic() + self.slow_seconds
        sent = 0
        while sent < len(body) - 1 and time.monotonic() < deadline:
            handler.wfile.write(body[sent : sent + 1])
            handler.wfile.flush()
            sent += 1
            if self._stop.wait(self.slow_interval):
                return
        handler.wfile.write(body[sent:])

    def _send_huge(self, handler: _Handler, action: str, raw: bytes) -> None:
        status, answer = self._answer(action, raw)
        body = json.dumps(answer).encode()
        padding = max(0, self.huge_bytes - len(body))
        handler.send_response(status)
        handler.send_header("Content-Type", AMZ_JSON)
        handler.send_header("Content-Length", str(padding + len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        piece = b" " * _CHUNK
        while padding > 0 and not self._stop.is_set():
            handler.wfile.write(piece[: min(padding, _CHUNK)])
            padding -= _CHUNK
        handler.wfile.write(body)

    # -- lifecycle ---------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> IdentityServer:
        """Listen (again): after ``close()`` on the same port, so ``url`` still works."""
        if self._server is not None:
            return self
        self._stop.clear()
        server = _Server((self.host, self._port), _Handler)
        server.owner = self
        self._server = server
        self._port = int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="IdentityServer",
            daemon=True,
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop listening: connections are refused until ``start()``."""
        server, thread = self._server, self._thread
        if server is None:
            return
        self._stop.set()
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> IdentityServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "closed"
        return f"IdentityServer({where}, fault={self._fault!r}, calls={dict(self.calls)})"
