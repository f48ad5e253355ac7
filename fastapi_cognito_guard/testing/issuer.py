"""``LocalIssuer``: a local Cognito user pool for tests and local development.

It signs real RS256 tokens shaped like Cognito's, publishes its JWKS through an
``httpx.MockTransport`` or a real HTTP server on loopback, and while
``serve()`` runs it is also a local hosted UI: Cognito's OAuth2 endpoints
(:mod:`.hosted_ui`), so browser sign-in is testable without AWS. Never use it
to protect anything.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, overload

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..partitions import partition_of
from ..settings import CognitoSettings
from .hosted_ui import HostedUI
from .http import Fault, Request
from .server import serve_http
from .users import LocalUser, sub_for

__all__ = ["ENDPOINTS", "Fault", "LocalIssuer"]

JWKS_SUFFIX = "/.well-known/jwks.json"

#: Where ``settings()`` points the JWKS URL while nothing is served: a name under
#: the reserved ``.invalid`` domain never resolves, so only ``issuer.transport``
#: answers it (a verifier without that transport fails fast instead of asking
#: whatever listens on port 80).
UNSERVED_BASE_URL = "https://local-issuer.invalid"

#: The names ``calls`` counts under and ``fail()`` accepts, one per endpoint.
ENDPOINTS = (
    "authorize",  # GET /oauth2/authorize (and GET /login): the sign-in page or a redirect
    "login",  # POST /login: the sign-in form submitted
    "token",  # POST /oauth2/token, every grant
    "revoke",  # POST /oauth2/revoke
    "logout",  # GET /logout
    "userinfo",  # GET or POST /oauth2/userInfo
    "discovery",  # GET /.well-known/openid-configuration
    "jwks",  # GET .../.well-known/jwks.json (and the transport)
    "dev_token",  # GET /dev/token, only with serve(mint_endpoint=True)
)


# The order Cognito writes each token's claims in; LocalIssuer's tokens follow it, and
# are compact JSON as Cognito's are, so the bytes a verifier sees are shaped like real ones.
_ACCESS_LAYOUT = (
    "sub", "cognito:groups", "iss", "version", "client_id", "origin_jti", "event_id",
    "token_use", "scope", "auth_time", "exp", "iat", "jti", "username",
)  # fmt: skip
_ID_LAYOUT = (
    "sub", "cognito:groups", "email_verified", "iss", "cognito:username", "origin_jti", "aud",
    "event_id", "token_use", "auth_time", "exp", "iat", "jti", "email",
)  # fmt: skip
_MACHINE_LAYOUT = (
    "sub", "token_use", "scope", "auth_time", "iss", "exp", "iat", "version", "jti",
    "client_id", "origin_jti", "event_id",
)  # fmt: skip
"""A machine token as Cognito writes it, then the two ids this issuer has always added."""


def _compact_json(value: Mapping[str, Any]) -> bytes:
    return json.dumps(dict(value), separators=(",", ":")).encode()


def b64url(data: bytes) -> str:
    """Unpadded base64url, as JWTs and PKCE spell it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


class _SigningKey:
    def __init__(self, bits: int) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        self.kid = b64url(uuid.uuid4().bytes)

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
    """A local Cognito user pool: mints tokens, publishes keys, runs a hosted UI.

    Tokens carry Cognito's real issuer form
    (``https://cognito-idp.{region}.{partition suffix}/{pool}``) so the default
    issuer checks are exercised. ``settings()`` trusts this issuer: while
    ``serve()`` runs it points ``jwks_url`` and ``oauth_url`` at the local
    server; outside ``serve()`` the JWKS URL is
    ``https://local-issuer.invalid/{pool}/.well-known/jwks.json``, which only
    ``transport`` answers.

    The hosted UI (see :mod:`fastapi_cognito_guard.testing.hosted_ui`) is
    configured through these attributes, all changeable at any time:

    - ``login_as``: ``None`` (default) shows the sign-in page at
      ``/oauth2/authorize``; a username or a :class:`LocalUser` signs that user
      in at once (302 back with a code), as a signed-in Cognito session would.
    - ``client_secret``: makes the app client confidential (HTTP Basic, decoded as RFC
      6749 §2.3.1 says, or ``client_secret`` in the form); ``settings()`` then carries
      it. A list of two is an app client rotating its secret: either is accepted.
    - ``callback_urls`` / ``logout_urls``: the app client's allowed URLs;
      ``None`` (default) allows any, an exact list behaves like Cognito.
    - ``rotate_refresh_tokens``: the ``refresh_token`` grant returns a new
      refresh token and retires the old one (Cognito's refresh-token rotation).
    - ``custom_in_access_tokens``: put users' ``custom:*`` attributes in access
      tokens too, as a V2 pre-token-generation trigger would; Cognito's
      default (False) puts them only in ID tokens.
    - ``code_ttl_seconds`` (300), ``token_ttl_seconds`` (3600, access and
      ID tokens), ``refresh_token_ttl_seconds`` (30 days): lifetimes.

    ``add_client()`` registers more app clients.

    ``calls`` counts requests per endpoint (names in ``ENDPOINTS``), per
    grant (``"token:authorization_code"``, ``"token:refresh_token"``,
    ``"token:client_credentials"``) and per successful client authentication
    at the token and revoke endpoints (``"auth:client_secret_basic"``,
    ``"auth:client_secret_post"``, ``"auth:none"``); ``fail()`` makes an
    endpoint misbehave.
    """

    def __init__(
        self,
        user_pool_id: str = "eu-central-1_Test",
        client_id: str = "test-client",
        *,
        issuer: str | None = None,
        key_bits: int = 2048,
        client_secret: str | Sequence[str] | None = None,
        callback_urls: Sequence[str] | None = None,
        logout_urls: Sequence[str] | None = None,
    ) -> None:
        self.user_pool_id = user_pool_id
        self.client_id = client_id
        self.region = user_pool_id.split("_", 1)[0]
        self.issuer = issuer or self._default_issuer()
        self.client_secret = client_secret
        self.callback_urls = None if callback_urls is None else list(callback_urls)
        self.logout_urls = None if logout_urls is None else list(logout_urls)
        self.calls: Counter[str] = Counter()
        self.faults: dict[str, Fault] = {}
        self._set_defaults()
        self._other_clients: dict[str, str | Sequence[str] | None] = {}
        self._key_bits = key_bits
        self._keys = [_SigningKey(key_bits)]
        self._base_url: str | None = None
        self._lock = threading.Lock()
        self._hosted_ui = HostedUI(self)

    def _default_issuer(self) -> str:
        """Cognito's issuer for the pool, on its partition's host (``amazonaws.com.cn``
        for ``cn-north-1_…``); an emulator-style pool id gets one on the unserved host."""
        partition = partition_of(self.region)
        if partition is None:
            return f"{UNSERVED_BASE_URL}/{self.user_pool_id}"
        return f"https://cognito-idp.{self.region}.{partition.dns_suffix}/{self.user_pool_id}"

    def __repr__(self) -> str:
        kind = "confidential" if self.client_secret else "public"
        where = self._base_url or "not served"
        return (
            f"LocalIssuer(user_pool_id={self.user_pool_id!r}, client_id={self.client_id!r}, "
            f"{kind} client, {where})"
        )

    # -- keys --------------------------------------------------------------------

    @property
    def kid(self) -> str:
        """The kid new tokens are signed with."""
        return self._keys[-1].kid

    def jwks(self) -> dict[str, list[dict[str, str]]]:
        """The JWKS document this issuer publishes."""
        return {"keys": [key.jwk() for key in self._keys]}

    def public_key(self, kid: str) -> rsa.RSAPublicKey | None:
        """The published public key with this kid, if any."""
        for key in self._keys:
            if key.kid == kid:
                return key.private_key.public_key()
        return None

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
        signing_input = f"{b64url(_compact_json(head))}.{b64url(_compact_json(claims))}"
        signature = key.private_key.sign(
            signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
        )
        return f"{signing_input}.{b64url(signature)}"

    def _claims(
        self, sub: str, token_use: str, expires_in: int, layout: tuple[str, ...], **named: Any
    ) -> dict[str, Any]:
        """The claims Cognito puts in every token, with ``named`` ones, in the order of
        ``layout`` (Cognito's for the token type); claims set to None are left out."""
        now = int(time.time())
        values = {
            "sub": sub,
            "iss": self.issuer,
            "token_use": token_use,
            "origin_jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "auth_time": now,
            "exp": now + expires_in,
            "iat": now,
            "jti": str(uuid.uuid4()),
            **named,
        }
        return {name: values[name] for name in layout if values.get(name) is not None}

    # Each minting method has a second signature without the typed options, so
    # claims whose names are not identifiers type-check when passed as
    # ``**{"custom:tier": "gold"}`` (mypy checks a ``**dict`` against every option).
    @overload
    def access_token(
        self,
        username: str = "alice",
        *,
        groups: Sequence[str] = (),
        scopes: Sequence[str] = ("aws.cognito.signin.user.admin",),
        expires_in: int = 3600,
        sub: str | None = None,
        custom: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str: ...

    @overload
    def access_token(self, username: str = "alice", /, **claims: Any) -> str: ...

    def access_token(  # type: ignore[misc]  # ``username`` may come twice only by mistake
        self,
        username: str = "alice",
        *,
        groups: Sequence[str] = (),
        scopes: Sequence[str] = ("aws.cognito.signin.user.admin",),
        expires_in: int = 3600,
        sub: str | None = None,
        custom: Mapping[str, Any] | None = None,
        **claims: Any,
    ) -> str:
        """An access token for a signed-in user; ``claims`` add or override claims.

        Like Cognito's, it carries no ``custom:*`` attributes: real access
        tokens get them only from a pre-token-generation trigger (V2). Pass
        ``custom`` (or ``**{"custom:tier": ...}``) to mint such a token on purpose.
        """
        payload = self._claims(
            sub or sub_for(username),
            "access",
            expires_in,
            _ACCESS_LAYOUT,
            **{"cognito:groups": list(groups) or None},
            version=2,
            client_id=self.client_id,
            scope=" ".join(scopes),
            username=username,
        )
        payload.update(_custom(custom))
        payload.update(claims)
        return self.sign(payload)

    @overload
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
    ) -> str: ...

    @overload
    def id_token(self, username: str = "alice", /, **claims: Any) -> str: ...

    def id_token(  # type: ignore[misc]  # ``username`` may come twice only by mistake
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
        payload = self._claims(
            sub or sub_for(username),
            "id",
            expires_in,
            _ID_LAYOUT,
            **{"cognito:groups": list(groups) or None, "cognito:username": username},
            email_verified=None if email is None else True,
            aud=self.client_id,
            email=email,
        )
        payload.update(_custom(custom))
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
        payload = self._claims(
            client,
            "access",
            expires_in,
            _MACHINE_LAYOUT,
            scope=" ".join(scopes),
            version=2,
            client_id=client,
        )
        payload.update(claims)
        return self.sign(payload)

    # -- the hosted UI's state -----------------------------------------------------

    def fail(
        self,
        endpoint: str,
        *,
        status: int | None = 500,
        body: bytes = b"",
        content_type: str = "text/plain",
        delay: float = 0.0,
    ) -> None:
        """Make ``endpoint`` (a name of ``ENDPOINTS``) misbehave until ``clear_faults()``.

        ``fail("token")`` answers 500; ``fail("token", status=200, body=...,
        content_type="application/json")`` answers a forged document;
        ``fail("token", status=None, delay=30)`` hangs 30 s and then answers
        normally (with ``body``, if given). Faulted calls are still counted.
        """
        if endpoint not in ENDPOINTS:
            raise ValueError(f"unknown endpoint {endpoint!r}; one of {', '.join(ENDPOINTS)}")
        self.faults[endpoint] = Fault(status, body, content_type, delay)

    def clear_faults(self) -> None:
        """Every endpoint answers normally again."""
        self.faults.clear()

    def count(self, name: str) -> None:
        """Add one to ``calls[name]`` (thread-safe)."""
        with self._lock:
            self.calls[name] += 1

    def _set_defaults(self) -> None:
        self.login_as: str | LocalUser | None = None
        self.rotate_refresh_tokens = False
        self.custom_in_access_tokens = False
        self.code_ttl_seconds = 300  # Cognito's codes live 5 minutes
        self.token_ttl_seconds = 3600
        self.refresh_token_ttl_seconds = 30 * 24 * 3600

    def reset(self) -> None:
        """Back to defaults, for an issuer shared between tests: ``calls``,
        faults, ``login_as``, rotation, lifetimes, codes and sessions. Keys,
        app clients and their URLs stay."""
        with self._lock:
            self.calls.clear()
        self.faults.clear()
        self._set_defaults()
        self._hosted_ui.forget()

    def add_client(self, client_id: str, client_secret: str | Sequence[str] | None = None) -> None:
        """Another app client of the pool (confidential with a secret), e.g. to
        check that a code or refresh token of one client is refused to another.
        It shares ``callback_urls`` and ``logout_urls``; ``settings()`` and the
        minting methods keep naming ``client_id``."""
        if client_id == self.client_id:
            raise ValueError("that is the issuer's own client_id")
        self._other_clients[client_id] = client_secret

    def clients(self) -> dict[str, tuple[str, ...]]:
        """Every app client's id and the secrets it accepts (none: a public client)."""
        every = {self.client_id: self.client_secret, **self._other_clients}
        return {
            client: ()
            if secret is None
            else (secret,)
            if isinstance(secret, str)
            else tuple(secret)
            for client, secret in every.items()
        }

    def revoke_sessions(self, username: str | None = None) -> int:
        """End every hosted-UI session (or those of ``username``), as
        ``AdminUserGlobalSignOut`` does: their refresh tokens give
        ``invalid_grant`` and ``/oauth2/userInfo`` refuses their access tokens.
        Returns how many sessions ended."""
        return self._hosted_ui.revoke_sessions(username)

    def refresh_token_is_active(self, refresh_token: str) -> bool:
        """Whether the ``refresh_token`` grant would accept this token now."""
        return self._hosted_ui.refresh_token_is_active(refresh_token)

    # -- publishing --------------------------------------------------------------

    @property
    def jwks_requests(self) -> int:
        """How many JWKS requests were answered (``calls["jwks"]``)."""
        return self.calls["jwks"]

    @property
    def url(self) -> str | None:
        """The local server's base URL while ``serve()`` runs, else None."""
        return self._base_url

    @property
    def jwks_url(self) -> str:
        """Where the verifier fetches keys: the local server while serving."""
        return f"{self._base_url or UNSERVED_BASE_URL}/{self.user_pool_id}{JWKS_SUFFIX}"

    def settings(self, **overrides: Any) -> CognitoSettings:
        """Settings that trust this issuer's tokens (``overrides`` win).

        While ``serve()`` runs they also carry ``oauth_url`` (the local hosted
        UI) and, for a confidential client, ``client_secret``.
        """
        values: dict[str, Any] = {
            "user_pool_id": self.user_pool_id,
            "client_ids": [self.client_id],
            "jwks_url": self.jwks_url,
        }
        if self.issuer != self._default_issuer() or partition_of(self.region) is None:
            values["issuer"] = self.issuer
        if self._base_url is not None:
            values["oauth_url"] = self._base_url
        if self.client_secret is not None:
            values["client_secret"] = (
                self.client_secret
                if isinstance(self.client_secret, str)
                else list(self.client_secret)
            )
        values.update(overrides)
        return CognitoSettings(**values)

    @property
    def transport(self) -> httpx.MockTransport:
        """An httpx transport that answers any ``.../.well-known/jwks.json`` GET."""

        def handle(request: httpx.Request) -> httpx.Response:
            if request.method != "GET" or not request.url.path.endswith(JWKS_SUFFIX):
                return httpx.Response(404)
            self.count("jwks")
            return httpx.Response(
                200,
                content=json.dumps(self.jwks()).encode(),
                headers={"content-type": "application/json"},
            )

        return httpx.MockTransport(handle)

    @contextmanager
    def serve(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        mint_endpoint: bool = False,
        public_url: str | None = None,
    ) -> Iterator[str]:
        """Run the JWKS and the hosted UI over real HTTP; yields the JWKS URL.

        ``issuer.url`` is the base URL meanwhile (``oauth_url`` of
        ``settings()``): ``http://{host}:{port}``, or ``public_url`` for a
        server reached under another name. ``mint_endpoint`` adds
        ``GET /dev/token`` (for the ``dev-issuer`` command).
        """

        def handle(request: Request) -> Any:
            return self._hosted_ui.handle(request, mint_endpoint=mint_endpoint)

        with serve_http(handle, host, port, public_url) as base_url:
            self._base_url = base_url
            try:
                yield self.jwks_url
            finally:
                self._base_url = None


def _custom(attributes: Mapping[str, Any] | None) -> dict[str, Any]:
    return {f"custom:{name}": value for name, value in (attributes or {}).items()}
