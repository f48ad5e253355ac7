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

The same endpoint also plays STS for the basic flow: ``GetOpenIdToken`` answers
``{"IdentityId", "Token"}``, and a form-encoded ``Action=AssumeRoleWithWebIdentity``
POST (no target) answers STS's XML with role credentials (counted as
``AssumeRoleWithWebIdentity``). ``GetId`` without ``Logins`` makes a new guest
identity while ``allow_guests`` is true, and answers ``NotAuthorizedException``
(as Cognito does for a pool without guest access) otherwise. ``delete_identity(id)``
does what ``DeleteIdentities`` does: calls naming that id answer
``ResourceNotFoundException``, and ``GetId`` for its user makes a new identity.
STS-only faults:
``"access_denied"`` (403 ``AccessDenied``), ``"invalid_identity_token"`` (400
``InvalidIdentityToken``), ``"throttling"`` (400 ``Throttling``). ``fault_action``
limits a fault to one action (None: every action).

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
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from fastapi_cognito_guard.identity import IdentityPoolClient
from fastapi_cognito_guard.settings import CognitoSettings
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.verifier import CognitoVerifier
from tests.jwks_server import JWKSServer
from tests.loopback_server import DISCONNECTS, LoopbackHandler, LoopbackServer

__all__ = [
    "ACCESS_KEY_ID",
    "FAULTS",
    "GET_CREDENTIALS",
    "GET_ID",
    "GET_OPEN_ID_TOKEN",
    "SECRET_KEY",
    "SESSION_TOKEN",
    "STS_ASSUME",
    "IdentityServer",
]

TARGET_PREFIX = "AWSCognitoIdentityService."
GET_ID = "GetId"
GET_CREDENTIALS = "GetCredentialsForIdentity"
GET_OPEN_ID_TOKEN = "GetOpenIdToken"
STS_ASSUME = "AssumeRoleWithWebIdentity"
STS_XMLNS = "https://sts.amazonaws.com/doc/2011-06-15/"
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
        "access_denied",
        "invalid_identity_token",
        "throttling",
    }
)
_STS_ERRORS = {
    "access_denied": (403, "AccessDenied"),
    "invalid_identity_token": (400, "InvalidIdentityToken"),
    "throttling": (400, "Throttling"),
}


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
        if not target and ("Action", STS_ASSUME) in parse_qsl(raw.decode("latin-1")):
            action = STS_ASSUME
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
        allow_guests: bool = True,
    ) -> None:
        super().__init__(host=host, port=port)
        #: Whether ``GetId`` without ``Logins`` makes a guest identity.
        self.allow_guests = allow_guests
        #: The only action ``fault`` applies to (None: every action).
        self.fault_action: str | None = None
        self.slow_seconds = slow_seconds
        self.slow_interval = slow_interval
        self.huge_bytes = huge_bytes
        self.redirect_to = redirect_to
        #: Requests per action (``""`` for a request without a Cognito target).
        self.calls: Counter[str] = Counter()
        #: The JSON body of every request, in arrival order (secrets are the caller's).
        self.bodies: list[tuple[str, dict[str, Any]]] = []
        #: Identity ids deleted with ``delete_identity``.
        self.deleted: set[str] = set()

    # -- state -------------------------------------------------------------------

    def count(self, action: str) -> int:
        """Requests of one action so far."""
        with self._lock:
            return self.calls[action]

    def counts(self) -> tuple[int, int]:
        """``(GetId calls, GetCredentialsForIdentity calls)`` so far."""
        with self._lock:
            return self.calls[GET_ID], self.calls[GET_CREDENTIALS]

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(self.calls.values())

    def delete_identity(self, identity_id: str) -> None:
        """Forget one identity, as ``DeleteIdentities`` does."""
        with self._lock:
            self.deleted.add(identity_id)

    def _record(self, action: str) -> str | None:
        with self._lock:
            self.calls[action] += 1
            if self.fault_action is not None and action != self.fault_action:
                return None
            return self._fault

    # -- addresses ---------------------------------------------------------------

    @property
    def url(self) -> str:
        """The endpoint, as ``identity_endpoint`` expects it."""
        return f"{self.base_url}/"

    # -- answering ---------------------------------------------------------------

    def _answer(self, action: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        if action == STS_ASSUME:
            form = dict(parse_qsl(raw.decode()))
            with self._lock:
                self.bodies.append((action, form))
            return 200, form
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            return 400, {"__type": "SerializationException", "message": "bad JSON"}
        with self._lock:
            self.bodies.append((action, body))
        if action == GET_ID and "Logins" not in body:
            if not self.allow_guests:
                message = "Unauthenticated access is not supported for this identity pool."
                return 400, {"__type": "NotAuthorizedException", "message": message}
            return 200, {"IdentityId": f"eu-central-1:{uuid.uuid4()}"}
        if action == GET_ID:
            logins = body.get("Logins") or {}
            token = next(iter(logins.values()), "") if isinstance(logins, dict) else ""
            identity = uuid.uuid5(uuid.NAMESPACE_URL, _sub_of(str(token)))
            with self._lock:
                while f"eu-central-1:{identity}" in self.deleted:  # the user's next identity
                    identity = uuid.uuid5(uuid.NAMESPACE_URL, str(identity))
            return 200, {"IdentityId": f"eu-central-1:{identity}"}
        with self._lock:
            deleted = str(body.get("IdentityId")) in self.deleted
        if deleted:
            message = f"Identity '{body.get('IdentityId')}' not found."
            return 400, {"__type": "ResourceNotFoundException", "message": message}
        if action == GET_CREDENTIALS:
            credentials = {
                "AccessKeyId": ACCESS_KEY_ID,
                "SecretKey": SECRET_KEY,
                "SessionToken": SESSION_TOKEN,
                "Expiration": time.time() + 3600,
            }
            return 200, {"IdentityId": body.get("IdentityId"), "Credentials": credentials}
        if action == GET_OPEN_ID_TOKEN:
            identity_id = str(body.get("IdentityId"))
            return 200, {"IdentityId": identity_id, "Token": f"openid-token-for-{identity_id}"}
        return 400, {"__type": "UnknownOperationException", "message": "unknown operation"}

    def _respond(self, handler: _Handler, fault: str | None, action: str, raw: bytes) -> None:
        if fault == "hang":
            if self._stop.wait(self.slow_seconds):
                return
            fault = None
        if action == STS_ASSUME and fault in _STS_ERRORS:
            status, code = _STS_ERRORS[str(fault)]
            handler.send(status, _sts_error(code), "text/xml")
            return
        if fault in _STS_ERRORS:
            fault = None  # an STS-only fault: Cognito answers normally
        if fault is None or fault in ("slow_body", "wrong_content_type", "truncated_json"):
            status, answer = self._answer(action, raw)
            body = _sts_answer(answer) if action == STS_ASSUME else json.dumps(answer).encode()
            if fault is None:
                handler.send(status, body, "text/xml" if action == STS_ASSUME else None)
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


def _sts_answer(form: dict[str, Any]) -> bytes:
    """STS's XML answer to ``AssumeRoleWithWebIdentity`` for the role in ``form``."""
    role = str(form.get("RoleArn", ""))
    session = str(form.get("RoleSessionName", ""))
    account, _, name = role.removeprefix("arn:aws:iam::").partition(":role/")
    expiration = datetime.fromtimestamp(time.time() + 3600, tz=timezone.utc)
    return (
        f'<AssumeRoleWithWebIdentityResponse xmlns="{STS_XMLNS}">'
        "<AssumeRoleWithWebIdentityResult><Credentials>"
        f"<AccessKeyId>{ACCESS_KEY_ID}</AccessKeyId>"
        f"<SecretAccessKey>{SECRET_KEY}</SecretAccessKey>"
        f"<SessionToken>{SESSION_TOKEN}</SessionToken>"
        f"<Expiration>{expiration.strftime('%Y-%m-%dT%H:%M:%SZ')}</Expiration>"
        "</Credentials><AssumedRoleUser>"
        f"<Arn>arn:aws:sts::{account}:assumed-role/{name}/{session}</Arn>"
        "</AssumedRoleUser></AssumeRoleWithWebIdentityResult>"
        "</AssumeRoleWithWebIdentityResponse>"
    ).encode()


def _sts_error(code: str) -> bytes:
    return (
        f'<ErrorResponse xmlns="{STS_XMLNS}"><Error><Type>Sender</Type>'
        f"<Code>{code}</Code><Message>simulated {code}</Message></Error>"
        "<RequestId>local</RequestId></ErrorResponse>"
    ).encode()


IDENTITY_POOL_ID = "eu-central-1:11111111-2222-3333-4444-555555555555"


@dataclass
class IdentityLoopback:
    """An issuer's JWKS server and a loopback identity endpoint (also playing STS), with
    settings for an identity pool that points at both."""

    issuer: LocalIssuer
    idp: IdentityServer
    settings: CognitoSettings

    def client(self, **kwargs: Any) -> IdentityPoolClient:
        """An identity-pool client whose verifier has the issuer's keys seeded."""
        verifier = CognitoVerifier(self.issuer.settings(token_use="id"))
        verifier.cache_jwks(self.issuer.jwks())
        return IdentityPoolClient(self.settings, verifier=verifier, **kwargs)


@contextlib.contextmanager
def identity_loopback(issuer: LocalIssuer) -> Iterator[IdentityLoopback]:
    """Serve ``issuer``'s JWKS and an identity endpoint for the duration; afterwards
    the endpoint must have seen no malformed request."""
    with JWKSServer(issuer) as jwks, IdentityServer() as idp:
        settings = jwks.settings(
            token_use="id",
            identity_pool_id=IDENTITY_POOL_ID,
            identity_endpoint=idp.url,
            sts_endpoint=idp.url,
        )
        yield IdentityLoopback(issuer, idp, settings)
        if idp.errors:
            raise AssertionError(f"the identity endpoint saw bad requests: {idp.errors}")
