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
it back on the same port). The start/stop/restart machinery is
``tests.loopback_server.LoopbackServer``.

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import base64
import contextlib
import json
import time
import uuid
from collections import Counter
from typing import Any

from tests.loopback_server import DISCONNECTS, LoopbackHandler, LoopbackServer

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


def _sub_of(token: str) -> str:
    """The ``sub`` of a JWT, unverified (the real service checks it; this one need not)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return str(claims["sub"])
    except (IndexError, ValueError, KeyError, TypeError):
        return token


class _Handler(LoopbackHandler["IdentityServer"]):
    content_type = AMZ_JSON

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        target = self.headers.get("X-Amz-Target", "")
        owner = self.owner
        action = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        fault = owner._record(action)
        with contextlib.suppress(*DISCONNECTS):  # the client gave up (timeout)
            owner._respond(self, fault, action, raw)
        self.close_connection = True


class IdentityServer(LoopbackServer):
    """A loopback Cognito Identity endpoint with switchable faults.

    Use as a context manager; ``url`` is the endpoint (``identity_endpoint``),
    ``calls[action]`` counts requests per action, ``fault`` picks the
    misbehaviour (``None`` is normal) and may be changed at any time.
    """

    FAULTS = FAULTS
    handler_class = _Handler

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
        super().__init__(host=host, port=port)
        self.slow_seconds = slow_seconds
        self.slow_interval = slow_interval
        self.huge_bytes = huge_bytes
        self.redirect_to = redirect_to
        #: Requests per action (``""`` for a request without a Cognito target).
        self.calls: Counter[str] = Counter()
        #: The JSON body of every request, in arrival order (secrets are the caller's).
        self.bodies: list[tuple[str, dict[str, Any]]] = []

    # -- state -------------------------------------------------------------------

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
    def url(self) -> str:
        """The endpoint, as ``identity_endpoint`` expects it."""
        return f"{self.base_url}/"

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
                handler.send_trickled(
                    status, body, seconds=self.slow_seconds, interval=self.slow_interval
                )
        elif fault == "status_500":
            handler.send(500, b"<html><body>Internal Server Error</body></html>", "text/html")
        elif fault == "status_429":
            answer = {"__type": "TooManyRequestsException", "message": "slow down"}
            handler.send(429, json.dumps(answer).encode(), headers={"Retry-After": "7"})
        elif fault == "not_authorized":
            answer = {"__type": "NotAuthorizedException", "message": "Invalid login token."}
            handler.send(400, json.dumps(answer).encode())
        elif fault == "huge":
            status, answer = self._answer(action, raw)
            handler.send_padded(status, json.dumps(answer).encode(), self.huge_bytes)
        elif fault == "redirect":
            location = self.redirect_to or f"{self.base_url}/elsewhere"
            handler.send(307, b"", "text/plain", headers={"Location": location})
        else:  # pragma: no cover - the setter validates
            raise AssertionError(fault)

    def __repr__(self) -> str:
        where = self.url if self._server is not None else "closed"
        return f"IdentityServer({where}, fault={self._fault!r}, calls={dict(self.calls)})"
