"""A real HTTP stand-in for Cognito's user-pool API (``GetUser``, ``GlobalSignOut``)
on 127.0.0.1, for the access tokens a ``LocalIssuer`` signs.

moto serves these calls too, but only for its own tokens; browser sessions in the
suite sign in at the ``LocalIssuer``'s hosted UI, so their access tokens need a
user-pool API that knows that issuer. ``UserPoolApi(issuer)`` answers like Cognito:
the token must carry the ``aws.cognito.signin.user.admin`` scope and be alive
(signed by the issuer, not expired, its user not signed out globally since it was
issued), else ``400 NotAuthorizedException``. ``calls`` counts the actions it got;
``fault = "status_500"`` makes every call fail.

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256

from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import claims_of
from tests.loopback_server import LoopbackHandler, LoopbackServer

__all__ = ["UserPoolApi"]

_PREFIX = "AWSCognitoIdentityProviderService."
_ADMIN = "aws.cognito.signin.user.admin"


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class _Handler(LoopbackHandler["UserPoolApi"]):
    content_type = "application/x-amz-json-1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        action = self.headers.get("x-amz-target", "").removeprefix(_PREFIX)
        status, body = self.owner.answer(action, raw)
        self.send(status, json.dumps(body).encode())


class UserPoolApi(LoopbackServer):
    """``GetUser`` and ``GlobalSignOut`` for one ``LocalIssuer``'s access tokens."""

    handler_class = _Handler
    FAULTS = frozenset({None, "status_500"})

    def __init__(self, issuer: LocalIssuer) -> None:
        super().__init__()
        self.issuer = issuer
        self.calls: Counter[str] = Counter()
        self.signed_out: dict[str, int] = {}
        """``sub`` -> when ``GlobalSignOut`` ended its sessions."""
        self._guard = threading.Lock()

    @property
    def url(self) -> str:
        return self.base_url + "/"

    def sign_out_everywhere(self, sub: str) -> None:
        """What another app's ``GlobalSignOut`` does: every token of ``sub`` issued
        up to now is dead here."""
        with self._guard:
            self.signed_out[sub] = int(time.time())

    def answer(self, action: str, raw: bytes) -> tuple[int, dict[str, Any]]:
        with self._guard:
            self.calls[action] += 1
        if self.fault == "status_500":
            return 500, {"__type": "InternalErrorException"}
        token = json.loads(raw).get("AccessToken", "")
        claims = self._alive(token)
        if claims is None:
            return 400, {"__type": "NotAuthorizedException", "message": "Invalid token"}
        if action == "GlobalSignOut":
            self.sign_out_everywhere(claims["sub"])
            return 200, {}
        if action == "GetUser":
            return 200, {"Username": claims.get("username"), "UserAttributes": []}
        return 400, {"__type": "InvalidParameterException"}

    def _alive(self, token: str) -> dict[str, Any] | None:
        """The claims of a live access token with the admin scope, else None."""
        try:
            head, body, signature = token.split(".")
            key = self.issuer.public_key(json.loads(_unb64(head)).get("kid"))
            if key is None:
                return None
            key.verify(_unb64(signature), f"{head}.{body}".encode(), PKCS1v15(), SHA256())
            claims = claims_of(token)
        except (ValueError, InvalidSignature):
            return None
        if claims.get("token_use") != "access" or claims.get("iss") != self.issuer.issuer:
            return None
        if _ADMIN not in str(claims.get("scope", "")).split() or claims["exp"] <= time.time():
            return None
        ended = self.signed_out.get(claims["sub"])
        if ended is not None and claims.get("iat", 0) <= ended:
            return None
        return claims
