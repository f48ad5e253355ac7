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
  10 MB chunked, no ``Content-Length``; ``"gzip_bomb"``: ``huge_bytes`` once
  inflated, about 10 KB gzip-compressed on the wire. The bodies are the valid
  JWKS padded with leading whitespace, so only a size limit rejects them.
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

The start/stop/restart machinery is ``tests.loopback_server.LoopbackServer``.

PYTEST_DONT_REWRITE (no asserts here): test modules import this module and also
register it as a plugin.
"""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urlsplit

import pytest

from fastapi_cognito_guard.settings import CognitoSettings
from fastapi_cognito_guard.testing import LocalIssuer
from tests.loopback_server import DISCONNECTS, LoopbackHandler, LoopbackServer

__all__ = ["FAULTS", "JWKS_SUFFIX", "JWKSServer", "closed_port_url", "jwks_server"]

JWKS_SUFFIX = "/.well-known/jwks.json"
HUGE_BYTES = 10 * 1024 * 1024
_REDIRECTED = "/redirected"

FAULTS: frozenset[str | None] = frozenset(
    {
        None,
        "status_500",
        "status_429",
        "hang",
        "huge",
        "huge_chunked",
        "gzip_bomb",
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


class _Handler(LoopbackHandler["JWKSServer"]):
    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if not path.endswith(JWKS_SUFFIX):
            self.send(404, b"not found", "text/plain")
            return
        owner = self.owner
        fault = owner._record(path)
        if path.startswith(_REDIRECTED + "/"):
            fault = None  # the redirect target always answers
        with contextlib.suppress(*DISCONNECTS):  # the client gave up (timeout, size limit)
            owner._respond(self, fault, path)
        self.close_connection = True


class JWKSServer(LoopbackServer):
    """A loopback JWKS endpoint for ``issuer`` with switchable faults.

    Use as a context manager; ``url`` is a JWKS URL on it, ``requests`` counts
    JWKS requests received (whatever was answered), ``fault`` picks the
    misbehaviour (``None`` is normal) and may be changed at any time.
    """

    FAULTS = FAULTS
    handler_class = _Handler

    def __init__(
        self,
        issuer: LocalIssuer,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        hang_seconds: float = 30.0,
        huge_bytes: int = HUGE_BYTES,
    ) -> None:
        super().__init__(host=host, port=port)
        self.issuer = issuer
        self.hang_seconds = hang_seconds
        self.huge_bytes = huge_bytes
        #: When set, served instead of ``issuer.jwks()``.
        self.document: Mapping[str, Any] | None = None
        #: Paths of every JWKS request, in arrival order.
        self.paths: list[str] = []
        self._requests = 0

    # -- state -------------------------------------------------------------------

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

    def _respond(self, handler: _Handler, fault: str | None, path: str) -> None:
        if fault == "hang":
            if self._stop.wait(self.hang_seconds):
                return  # shutting down: drop the connection unanswered
            fault = None
        if fault is None:
            handler.send(200, self._jwks_body())
        elif fault == "wrong_content_type":
            handler.send(200, self._jwks_body(), "text/html; charset=utf-8")
        elif fault == "status_500":
            handler.send(500, b'{"message": "internal error"}')
        elif fault == "status_429":
            handler.send(429, b'{"message": "slow down"}', headers={"Retry-After": "5"})
        elif fault == "redirect":
            location = f"{self.base_url}{_REDIRECTED}{path}"
            handler.send(302, b"", "text/plain", headers={"Location": location})
        elif fault == "not_json":
            handler.send(200, b"<html><body>Service Unavailable</body></html>")
        elif fault == "truncated_json":
            body = self._jwks_body()
            handler.send(200, body[: len(body) // 2])
        elif fault == "no_keys":
            handler.send(200, b'{"foo": []}')
        elif fault == "keys_not_list":
            handler.send(200, json.dumps({"keys": {"0": self.issuer.jwks()["keys"][0]}}).encode())
        elif fault == "empty_keys":
            handler.send(200, b'{"keys": []}')
        elif fault == "deep_json":
            handler.send(200, b'{"keys": ' + b"[" * 5000 + b"]" * 5000 + b"}")
        elif fault == "huge":
            handler.send_padded(200, self._jwks_body(), self.huge_bytes)
        elif fault == "huge_chunked":
            handler.send_padded(200, self._jwks_body(), self.huge_bytes, chunked=True)
        elif fault == "gzip_bomb":
            handler.send_gzip_bomb(200, self._jwks_body(), self.huge_bytes)
        else:  # pragma: no cover - the setter validates
            raise AssertionError(fault)

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
