"""Test helpers: a local Cognito-shaped token issuer and the ``cognito_issuer`` fixture.

``LocalIssuer`` signs real RS256 tokens shaped like Cognito's and publishes its
JWKS through an ``httpx.MockTransport`` or a real HTTP server on 127.0.0.1, so
applications can test their guarded routes without AWS. Never use it to
protect anything: it exists for tests and local development.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .settings import CognitoSettings

__all__ = ["LocalIssuer", "cognito_issuer"]

_JWKS_SUFFIX = "/.well-known/jwks.json"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return _b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class _SigningKey:
    def __init__(self, bits: int) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.kid = _b64url(uuid.uuid4().bytes)

    def jwk(self) -> dict[str, str]:
        numbers = self.private_key.public_key().public_numbers()
        return {
            "alg": "RS256",
            "e": _b64url_uint(numbers.e),
            "kid": self.kid,
            "kty": "RSA",
            "n": _b64url_uint(numbers.n),
            "use": "sig",
        }


class LocalIssuer:
    """Mints Cognito-shaped access, ID and client-credentials tokens for tests.

    Tokens carry Cognito's real issuer form
    (``https://cognito-idp.{region}.amazonaws.com/{pool}``) so the default
    issuer checks are exercised; ``settings()`` points the JWKS URL at this
    issuer (its local server while ``serve()`` runs).
    """

    def __init__(
        self,
        user_pool_id: str = "eu-central-1_Test",
        client_id: str = "test-client",
        *,
        issuer: str | None = None,
        key_bits: int = 2048,
    ) -> None:
        self.user_pool_id = user_pool_id
        self.client_id = client_id
        self.region = user_pool_id.split("_", 1)[0]
        self.issuer = issuer or f"https://cognito-idp.{self.region}.amazonaws.com/{user_pool_id}"
        self._key_bits = key_bits
        self._keys = [_SigningKey(key_bits)]
        self.jwks_requests = 0
        self._served_url: str | None = None
        self._lock = threading.Lock()

    # -- keys --------------------------------------------------------------------

    @property
    def kid(self) -> str:
        """The kid new tokens are signed with."""
        return self._keys[-1].kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document this issuer publishes."""
        return {"keys": [key.jwk() for key in self._keys]}

    def rotate_keys(self, *, keep_old: bool = False) -> str:
        """Sign with a fresh key from now on; the old key leaves the JWKS unless kept."""
        new_key = _SigningKey(self._key_bits)
        with self._lock:
            self._keys = [*self._keys, new_key] if keep_old else [new_key]
        return new_key.kid

    # -- tokens ------------------------------------------------------------------

    def sign(self, claims: Mapping[str, Any], header: Mapping[str, Any] | None = None) -> str:
        """Sign arbitrary claims with the current key (header defaults to Cognito's)."""
        key = self._keys[-1]
        head = {"kid": key.kid, "alg": "RS256"} if header is None else dict(header)
        signing_input = (
            f"{_b64url(json.dumps(head).encode())}.{_b64url(json.dumps(dict(claims)).encode())}"
        )
        signature = key.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{_b64url(signature)}"

    def _base_claims(self, token_use: str, sub: str, expires_in: int) -> dict[str, Any]:
        now = int(time.time())
        return {
            "sub": sub,
            "iss": self.issuer,
            "token_use": token_use,
            "origin_jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "auth_time": now,
            "iat": now,
            "exp": now + expires_in,
            "jti": str(uuid.uuid4()),
        }

    def access_token(
        self,
        username: str = "alice",
        *,
        groups: Sequence[str] = (),
        scopes: Sequence[str] = ("aws.cognito.signin.user.admin",),
        expires_in: int = 3600,
        sub: str | None = None,
        **claims: Any,
    ) -> str:
        """An access token for a signed-in user; ``claims`` add or override claims."""
        payload = self._base_claims("access", sub or _sub_for(username), expires_in)
        if groups:
            payload["cognito:groups"] = list(groups)
        payload.update(
            client_id=self.client_id, scope=" ".join(scopes), username=username, version=2
        )
        payload.update(claims)
        return self.sign(payload)

    def id_token(
        self,
        username: str = "alice",
        *,
        email: str | None = None,
        groups: Sequence[str] = (),
        custom: Mapping[str, Any] | None = None,
        expires_in: int = 3600,
        sub: str | None = None,
        **claims: Any,
    ) -> str:
        """An ID token; ``custom`` becomes ``custom:*`` attributes."""
        payload = self._base_claims("id", sub or _sub_for(username), expires_in)
        if groups:
            payload["cognito:groups"] = list(groups)
        payload.update({"aud": self.client_id, "cognito:username": username})
        if email is not None:
            payload.update(email=email, email_verified=True)
        payload.update({f"custom:{name}": value for name, value in (custom or {}).items()})
        payload.update(claims)
        return self.sign(payload)

    def client_credentials_token(
        self,
        scopes: Sequence[str] = (),
        *,
        client_id: str | None = None,
        expires_in: int = 3600,
        **claims: Any,
    ) -> str:
        """A machine-to-machine access token: scopes, no user."""
        client = client_id or self.client_id
        payload = self._base_claims("access", client, expires_in)
        payload.update(client_id=client, scope=" ".join(scopes), version=2)
        payload.update(claims)
        return self.sign(payload)

    # -- publishing --------------------------------------------------------------

    @property
    def jwks_url(self) -> str:
        """Where the verifier fetches keys: the local server while serving."""
        if self._served_url is not None:
            return self._served_url
        return f"http://127.0.0.1/{self.user_pool_id}{_JWKS_SUFFIX}"

    def settings(self, **overrides: Any) -> CognitoSettings:
        """Settings that trust this issuer's tokens (``overrides`` win)."""
        values: dict[str, Any] = {
            "user_pool_id": self.user_pool_id,
            "client_ids": [self.client_id],
            "jwks_url": self.jwks_url,
        }
        if self.issuer != f"https://cognito-idp.{self.region}.amazonaws.com/{self.user_pool_id}":
            values["issuer"] = self.issuer
        values.update(overrides)
        return CognitoSettings(**values)

    def _jwks_body(self) -> bytes:
        with self._lock:
            self.jwks_requests += 1
            return json.dumps(self.jwks()).encode()

    @property
    def transport(self) -> httpx.MockTransport:
        """An httpx transport that answers any ``.../.well-known/jwks.json`` GET."""

        def handle(request: httpx.Request) -> httpx.Response:
            if request.method != "GET" or not request.url.path.endswith(_JWKS_SUFFIX):
                return httpx.Response(404)
            return httpx.Response(
                200, content=self._jwks_body(), headers={"content-type": "application/json"}
            )

        return httpx.MockTransport(handle)

    @contextmanager
    def serve(self, host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
        """Publish the JWKS over real HTTP on loopback; yields the JWKS URL."""
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not self.path.endswith(_JWKS_SUFFIX):
                    self.send_error(404)
                    return
                body = issuer._jwks_body()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Stay quiet: tests read their own output."""

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="LocalIssuer", daemon=True
        )
        thread.start()
        bound_port = server.server_address[1]
        self._served_url = f"http://{host}:{bound_port}/{self.user_pool_id}{_JWKS_SUFFIX}"
        try:
            yield self._served_url
        finally:
            self._served_url = None
            server.shutdown()
            server.server_close()
            thread.join()


def _sub_for(username: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, username))


try:
    import pytest
except ModuleNotFoundError:  # pytest is a test-time dependency only
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def cognito_issuer() -> Iterator[LocalIssuer]:
        """A ``LocalIssuer`` serving its JWKS on 127.0.0.1 for the test's duration."""
        issuer = LocalIssuer()
        with issuer.serve():
            yield issuer
