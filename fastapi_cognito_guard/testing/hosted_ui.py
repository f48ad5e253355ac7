"""The local hosted UI: Cognito's OAuth2 endpoints, answered the way Cognito answers.

Routes (all under the issuer's base URL):

- ``GET /oauth2/authorize`` (and ``GET /login``): checks ``client_id`` and
  ``redirect_uri`` (a bad one gets a 400 page, never a redirect), then
  ``response_type=code``, PKCE (``S256`` only) and ``scope`` (errors go back to
  the ``redirect_uri`` with ``error=`` and ``state``). With ``login_as`` set on
  the issuer it redirects with a code at once; otherwise it shows a sign-in
  page (username, groups, email) that posts to ``POST /login``, whose
  "Cancel" button returns ``error=access_denied``.
- ``POST /oauth2/token``: ``authorization_code`` (single use, expiring,
  bound to client, ``redirect_uri`` and the PKCE challenge),
  ``refresh_token`` (optionally rotated) and ``client_credentials``
  (confidential clients only). Errors are 400 with ``{"error": code}``, as
  Cognito's: ``invalid_request`` (missing, repeated or non-form parameters),
  ``invalid_client`` (unknown client, wrong or missing secret, a secret sent by
  a public client), ``invalid_grant`` (unknown, used, expired or foreign code
  or refresh token; ``redirect_uri`` or PKCE verifier not the authorize
  request's), ``unauthorized_client`` (a ``redirect_uri`` that is not a
  callback URL; ``client_credentials`` for a public client),
  ``unsupported_grant_type``, ``invalid_scope``.
- ``POST /oauth2/revoke``: revokes a refresh token and its session (200).
- ``GET /logout``: 302 to ``logout_uri`` after checking ``client_id`` (and
  the app client's sign-out URLs).
- ``GET``/``POST /oauth2/userInfo``: the user's attributes for a live access
  token with the ``openid`` scope.
- ``GET /.well-known/openid-configuration`` (also under ``/{pool}/``) and
  ``GET .../.well-known/jwks.json``.

A token from the code flow carries the authorize request's ``nonce`` (ID
token) and, like every token of that sign-in (refreshed ones too), its
``origin_jti``, ``event_id``, ``auth_time``, ``amr`` and ``acr``; refreshed ID
tokens carry no ``nonce``, as Cognito's don't.

Today's Cognito: the authorize request's ``resource`` (RFC 8707, an absolute URI,
else ``invalid_target``) becomes the access tokens' ``aud``; ``acr_values`` sets
``acr`` (the local UI reaches the first level asked); ``max_age`` and
``prompt=login`` make a ``login_as`` user whose hosted-UI session is older
(``LocalUser.auth_time``) authenticate again. Client secrets in HTTP Basic are
form-urldecoded (RFC 6749 §2.3.1), and a client may hold two.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from ..clientauth import parse_basic_authorization
from ..settings import is_absolute_uri
from .devmode import DEV_TOKEN_PARAMETERS, DevTokenError, is_loopback_authority, mint_dev_token
from .http import Fault, Reply, Request
from .users import LocalUser

__all__ = ["HostedUI", "IssuerPort"]

_MAX_FIELDS = 64
_DEFAULT_SCOPES = ("openid", "email", "phone", "profile", "aws.cognito.signin.user.admin")
_OIDC_SCOPES = frozenset(_DEFAULT_SCOPES)


class IssuerPort(Protocol):
    """What the endpoints read of the ``LocalIssuer`` they serve: its configuration
    (changeable at any time), its keys, its token minting and its call counter."""

    @property
    def user_pool_id(self) -> str: ...
    @property
    def issuer(self) -> str: ...
    @property
    def url(self) -> str | None: ...
    @property
    def jwks_url(self) -> str: ...
    @property
    def login_as(self) -> str | LocalUser | None: ...
    @property
    def callback_urls(self) -> Sequence[str] | None: ...
    @property
    def logout_urls(self) -> Sequence[str] | None: ...
    @property
    def faults(self) -> Mapping[str, Fault]: ...
    @property
    def rotate_refresh_tokens(self) -> bool: ...
    @property
    def custom_in_access_tokens(self) -> bool: ...
    @property
    def code_ttl_seconds(self) -> float: ...
    @property
    def token_ttl_seconds(self) -> int: ...
    @property
    def refresh_token_ttl_seconds(self) -> float: ...

    def count(self, name: str) -> None: ...
    def clients(self) -> dict[str, tuple[str, ...]]: ...
    def jwks(self) -> dict[str, list[dict[str, str]]]: ...
    def public_key(self, kid: str) -> rsa.RSAPublicKey | None: ...
    def access_token(self, username: str = ..., /, **claims: Any) -> str: ...
    def id_token(self, username: str = ..., /, **claims: Any) -> str: ...
    def client_credentials_token(self, scopes: Sequence[str] = ..., **claims: Any) -> str: ...


class _OAuthError(Exception):
    """An error answer of the token, revoke or userInfo endpoint."""

    def __init__(self, code: str, status: int = 400) -> None:
        super().__init__(code)
        self.code = code
        self.status = status


class _PageError(Exception):
    """An authorize or logout request that cannot be sent back: a 400 page."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class _SignIn:
    """One sign-in: what every token minted from it (refreshed ones too) shares."""

    user: LocalUser
    client_id: str
    scopes: tuple[str, ...]
    origin_jti: str = field(default_factory=lambda: str(uuid.uuid4()))
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    auth_time: int = field(default_factory=lambda: int(time.time()))
    resource: str | None = None
    """The authorize request's ``resource`` (RFC 8707): the access tokens' ``aud``."""
    acr: str | None = None
    amr: tuple[str, ...] = ("pwd",)


@dataclass(frozen=True)
class _Code:
    sign_in: _SignIn
    redirect_uri: str
    nonce: str | None
    challenge: str | None
    expires_at: float


@dataclass
class _Session:
    sign_in: _SignIn
    expires_at: float
    revoked: bool = False


class HostedUI:
    """The endpoints' logic and state (codes, sessions); the issuer holds the settings."""

    def __init__(self, issuer: IssuerPort) -> None:
        self._issuer = issuer
        self._lock = threading.Lock()
        self._codes: dict[str, _Code] = {}
        self._sessions: dict[str, _Session] = {}  # by refresh token
        self._revoked_origins: set[str] = set()

    # -- state the issuer exposes ------------------------------------------------

    def forget(self) -> None:
        with self._lock:
            self._codes.clear()
            self._sessions.clear()
            self._revoked_origins.clear()

    def revoke_sessions(self, username: str | None) -> int:
        with self._lock:
            ended = [
                session
                for session in self._sessions.values()
                if not session.revoked
                and (username is None or session.sign_in.user.username == username)
            ]
            for session in ended:
                self._end(session)
            return len(ended)

    def refresh_token_is_active(self, refresh_token: str) -> bool:
        with self._lock:
            session = self._sessions.get(refresh_token)
            return session is not None and self._alive(session)

    def _end(self, session: _Session) -> None:
        session.revoked = True
        self._revoked_origins.add(session.sign_in.origin_jti)

    @staticmethod
    def _alive(session: _Session) -> bool:
        return not session.revoked and session.expires_at > time.time()

    # -- dispatch ----------------------------------------------------------------

    def handle(self, request: Request, *, mint_endpoint: bool = False) -> Reply:
        """Answer one request (counted, then subject to the endpoint's fault)."""
        if mint_endpoint and not self._served_host(request.headers.get("host")):
            # A token-minting server answers only the names it is served under: a
            # DNS-rebinding page reaches it under its own.
            return Reply.json(421, {"error": "misdirected_request"})
        routed = self._route(request, mint_endpoint)
        if routed is None:
            return Reply.json(404, {"error": "not_found"})
        name, methods, endpoint = routed
        self._issuer.count(name)
        if request.method not in methods:
            return Reply.json(405, {"error": "invalid_request"}, Allow=", ".join(methods))
        fault = self._issuer.faults.get(name)
        if fault is not None and fault.status is not None:
            return Reply(
                fault.status, fault.body, {"Content-Type": fault.content_type}, fault.delay
            )
        try:
            reply = endpoint(request)
        except _OAuthError as error:
            reply = Reply.json(error.status, {"error": error.code})
        except _PageError as error:
            reply = _error_page(error.code, error.message)
        if fault is not None:
            reply = replace(reply, delay=fault.delay, body=fault.body or reply.body)
        return reply

    def _served_host(self, host: str | None) -> bool:
        """A loopback ``Host``, or the host of the URL the issuer is served under."""
        return is_loopback_authority(host, urlsplit(self._issuer.url or "").hostname)

    def _route(
        self, request: Request, mint_endpoint: bool
    ) -> tuple[str, tuple[str, ...], Callable[[Request], Reply]] | None:
        path = request.path
        pool = self._issuer.user_pool_id
        if path == "/oauth2/authorize":
            return "authorize", ("GET",), self._authorize
        if path == "/login":
            if request.method == "POST":
                return "login", ("POST",), self._login
            return "authorize", ("GET",), self._authorize
        if path == "/oauth2/token":
            return "token", ("POST",), self._token
        if path == "/oauth2/revoke":
            return "revoke", ("POST",), self._revoke
        if path == "/logout":
            return "logout", ("GET",), self._logout
        if path in ("/oauth2/userInfo", "/oauth2/userinfo"):
            return "userinfo", ("GET", "POST"), self._userinfo
        if path in (
            "/.well-known/openid-configuration",
            f"/{pool}/.well-known/openid-configuration",
        ):
            return "discovery", ("GET",), self._discovery
        if path.endswith("/.well-known/jwks.json"):
            return "jwks", ("GET",), lambda _: Reply.json(200, self._issuer.jwks())
        if path == "/dev/token" and mint_endpoint:
            return "dev_token", ("GET",), self._dev_token
        return None

    # -- authorize and the sign-in page --------------------------------------------

    def _checked_authorize(self, query: str) -> dict[str, str]:
        """The authorize parameters, once client_id and redirect_uri are safe to use."""
        try:
            params = _params(query)
        except _OAuthError:
            raise _PageError("invalid_request", "malformed or repeated parameters") from None
        client_id = params.get("client_id", "")
        if not self._is_client(client_id):
            raise _PageError("invalid_client", "unknown client_id")
        redirect_uri = params.get("redirect_uri", "")
        if not _allowed_url(redirect_uri, self._issuer.callback_urls):
            raise _PageError(
                "redirect_mismatch", "redirect_uri is not a callback URL of the client"
            )
        return params

    @staticmethod
    def _back_to_client(params: Mapping[str, str], name: str, value: str) -> Reply:
        """Redirect to the (checked) ``redirect_uri`` with a code or an error, and the state."""
        answer = {name: value}
        if "state" in params:
            answer["state"] = params["state"]
        return Reply.redirect(_with_query(params["redirect_uri"], answer))

    def _authorize_params(self, query: str) -> tuple[dict[str, str], Reply | None]:
        """The checked authorize parameters, and the error redirect if they are unusable."""
        params = self._checked_authorize(query)
        problem = self._authorize_problem(params)
        return params, None if problem is None else self._back_to_client(params, "error", problem)

    @staticmethod
    def _authorize_problem(params: Mapping[str, str]) -> str | None:
        if params.get("response_type") != "code":
            return "unsupported_response_type"
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if challenge is not None and (method != "S256" or not _is_pkce_value(challenge)):
            return "invalid_request"
        if challenge is None and method is not None:
            return "invalid_request"
        if any(scope not in _OIDC_SCOPES and "/" not in scope for scope in _scope_list(params)):
            return "invalid_scope"  # resource-server scopes (``server/scope``) are all allowed
        if "resource" in params and not is_absolute_uri(params["resource"]):
            return "invalid_target"  # RFC 8707 §2
        if "max_age" in params and not params["max_age"].isdigit():
            return "invalid_request"
        return None

    def _authorize(self, request: Request) -> Reply:
        params, refusal = self._authorize_params(request.query)
        if refusal is not None:
            return refusal
        login_as = self._issuer.login_as
        if login_as is not None:
            user = _user(login_as)
            return self._signed_in(params, user, auth_time=self._session_auth_time(params, user))
        return _sign_in_page(request.query, params.get("client_id", ""), 200)

    def _session_auth_time(self, params: Mapping[str, str], user: LocalUser) -> int:
        """When ``login_as``'s user authenticated for this sign-in: the hosted UI session's
        time (``user.auth_time``), unless ``max_age`` finds it too old or ``prompt=login``
        asks for a fresh one (OpenID Connect Core §3.1.2.1): then the user authenticates
        again now (counted as ``calls["authenticate"]``)."""
        now = int(time.time())
        earlier = user.auth_time
        max_age = params.get("max_age")
        fresh = (
            earlier is None
            or "login" in params.get("prompt", "").split()
            or (max_age is not None and now - earlier > int(max_age))
        )
        if not fresh and earlier is not None:
            return earlier
        self._issuer.count("authenticate")
        return now

    def _login(self, request: Request) -> Reply:
        params, refusal = self._authorize_params(request.query)
        if refusal is not None:
            return refusal
        try:
            form = _params(request.body.decode("utf-8", "replace"))
        except _OAuthError:
            return _sign_in_page(request.query, params["client_id"], 400, "Malformed form.")
        if form.get("action") == "cancel":
            return self._back_to_client(params, "error", "access_denied")
        username = form.get("username", "").strip()
        if not username:
            return _sign_in_page(request.query, params["client_id"], 400, "Enter a username.")
        user = LocalUser(
            username,
            groups=tuple(_split(form.get("groups", ""))),
            email=form.get("email", "").strip() or None,
            amr=("pwd", "mfa") if form.get("mfa") else ("pwd",),
        )
        self._issuer.count("authenticate")
        return self._signed_in(params, user, auth_time=int(time.time()))

    def _signed_in(self, params: Mapping[str, str], user: LocalUser, *, auth_time: int) -> Reply:
        scopes = _scope_list(params) or _DEFAULT_SCOPES
        code = secrets.token_urlsafe(32)
        # The local UI reaches whatever level is asked: the first of ``acr_values``.
        requested_acr = params.get("acr_values", "").split()
        sign_in = _SignIn(
            user,
            params["client_id"],
            scopes,
            auth_time=auth_time,
            resource=params.get("resource"),
            acr=requested_acr[0] if requested_acr else user.acr,
            amr=tuple(user.amr),
        )
        grant = _Code(
            sign_in=sign_in,
            redirect_uri=params["redirect_uri"],
            nonce=params.get("nonce"),
            challenge=params.get("code_challenge"),
            expires_at=time.time() + self._issuer.code_ttl_seconds,
        )
        now = time.time()
        with self._lock:
            for stale in [key for key, old in self._codes.items() if old.expires_at <= now]:
                del self._codes[stale]  # a long-running dev issuer must not grow
            self._codes[code] = grant
        return self._back_to_client(params, "code", code)

    # -- token -------------------------------------------------------------------

    def _is_client(self, client_id: str) -> bool:
        return client_id in self._issuer.clients()

    def _client(self, request: Request, form: Mapping[str, str]) -> str:
        """Authenticate the app client: HTTP Basic, ``client_secret`` in the form, or public."""
        basic = _basic_credentials(request.headers.get("authorization"))
        given: str | None
        if basic is not None:
            client_id, given = basic
            if form.get("client_id", client_id) != client_id:
                raise _OAuthError("invalid_client")
        else:
            client_id = form.get("client_id", "")
            given = form.get("client_secret")
        clients = self._issuer.clients()
        if client_id not in clients:
            raise _OAuthError("invalid_client")
        accepted = clients[client_id]  # one secret, or two while the client rotates them
        if not accepted:
            if given is not None:
                raise _OAuthError("invalid_client")
        elif given is None or not any(
            hmac.compare_digest(given.encode(), secret.encode()) for secret in accepted
        ):
            raise _OAuthError("invalid_client")
        if not accepted:
            method = "none"
        else:
            method = "client_secret_basic" if basic is not None else "client_secret_post"
        self._issuer.count(f"auth:{method}")
        return client_id

    def _token(self, request: Request) -> Reply:
        form = _form(request)
        grant_type = form.get("grant_type")
        if grant_type is None:
            raise _OAuthError("invalid_request")
        if grant_type in ("authorization_code", "refresh_token", "client_credentials"):
            self._issuer.count(f"token:{grant_type}")
        client_id = self._client(request, form)
        if grant_type == "authorization_code":
            return self._exchange_code(form, client_id)
        if grant_type == "refresh_token":
            return self._refresh(form, client_id)
        if grant_type == "client_credentials":
            return self._client_credentials(form, client_id)
        raise _OAuthError("unsupported_grant_type")

    def _exchange_code(self, form: Mapping[str, str], client_id: str) -> Reply:
        code, redirect_uri = form.get("code"), form.get("redirect_uri")
        if not code or not redirect_uri:
            raise _OAuthError("invalid_request")
        if not _allowed_url(redirect_uri, self._issuer.callback_urls):
            raise _OAuthError("unauthorized_client")  # Cognito's answer to an unknown callback
        with self._lock:
            grant = self._codes.pop(code, None)  # single use, whatever happens next
        if (
            grant is None
            or grant.expires_at <= time.time()
            or grant.sign_in.client_id != client_id
            or grant.redirect_uri != redirect_uri
        ):
            raise _OAuthError("invalid_grant")
        verifier = form.get("code_verifier")
        if grant.challenge is None:
            if verifier is not None:
                raise _OAuthError("invalid_grant")
        elif verifier is None or not hmac.compare_digest(_s256(verifier), grant.challenge):
            raise _OAuthError("invalid_grant")
        if form.get("resource", grant.sign_in.resource) != grant.sign_in.resource:
            raise _OAuthError("invalid_target")  # RFC 8707 §2.2: not the authorized resource
        refresh_token = self._new_session(grant.sign_in)
        answer = self._tokens(grant.sign_in, nonce=grant.nonce)
        answer["refresh_token"] = refresh_token
        return Reply.json(200, answer)

    def _new_session(self, sign_in: _SignIn) -> str:
        refresh_token = secrets.token_urlsafe(48)
        expires_at = time.time() + self._issuer.refresh_token_ttl_seconds
        with self._lock:
            self._sessions[refresh_token] = _Session(sign_in, expires_at)
        return refresh_token

    def _refresh(self, form: Mapping[str, str], client_id: str) -> Reply:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            raise _OAuthError("invalid_request")
        rotate = self._issuer.rotate_refresh_tokens
        with self._lock:
            session = self._sessions.get(refresh_token)
            if (
                session is None
                or not self._alive(session)
                or session.sign_in.client_id != client_id
            ):
                raise _OAuthError("invalid_grant")
            if rotate:
                del self._sessions[refresh_token]
        answer = self._tokens(session.sign_in, nonce=None)
        if rotate:
            answer["refresh_token"] = self._new_session(session.sign_in)
        return Reply.json(200, answer)

    def _client_credentials(self, form: Mapping[str, str], client_id: str) -> Reply:
        if not self._issuer.clients()[client_id]:
            raise _OAuthError("unauthorized_client")
        scopes = _scope_list(form)
        if _OIDC_SCOPES.intersection(scopes):
            raise _OAuthError("invalid_scope")
        resource = form.get("resource")
        if resource is not None and not is_absolute_uri(resource):
            raise _OAuthError("invalid_target")
        audience = {} if resource is None else {"aud": resource}
        token = self._issuer.client_credentials_token(
            scopes, client_id=client_id, expires_in=self._issuer.token_ttl_seconds, **audience
        )
        return Reply.json(
            200,
            {
                "access_token": token,
                "expires_in": self._issuer.token_ttl_seconds,
                "token_type": "Bearer",
            },
        )

    def _tokens(self, sign_in: _SignIn, *, nonce: str | None) -> dict[str, Any]:
        """Access and (with ``openid``) ID token of a sign-in, as the token endpoint sends them."""
        issuer = self._issuer
        user = sign_in.user
        ttl = issuer.token_ttl_seconds
        shared: dict[str, Any] = {
            "origin_jti": sign_in.origin_jti,
            "event_id": sign_in.event_id,
            "auth_time": sign_in.auth_time,
            "amr": list(sign_in.amr),
        }
        if sign_in.acr is not None:
            shared["acr"] = sign_in.acr
        audience = {} if sign_in.resource is None else {"aud": sign_in.resource}
        custom = dict(user.custom)
        access = issuer.access_token(
            user.username,
            groups=user.groups,
            scopes=sign_in.scopes,
            expires_in=ttl,
            custom=custom if issuer.custom_in_access_tokens else None,
            client_id=sign_in.client_id,
            **shared,
            **audience,
        )
        answer: dict[str, Any] = {"access_token": access, "expires_in": ttl, "token_type": "Bearer"}
        if "openid" in sign_in.scopes:
            extra: dict[str, Any] = {"at_hash": _at_hash(access)}
            if nonce is not None:
                extra["nonce"] = nonce
            answer["id_token"] = issuer.id_token(
                user.username,
                email=user.email,
                groups=user.groups,
                custom=custom,
                expires_in=ttl,
                aud=sign_in.client_id,
                **shared,
                **extra,
            )
        return answer

    # -- revoke, logout, userInfo, discovery ---------------------------------------

    def _revoke(self, request: Request) -> Reply:
        form = _form(request)
        client_id = self._client(request, form)
        token = form.get("token")
        if not token:
            raise _OAuthError("invalid_request")
        if token.count(".") == 2:  # a JWT: only refresh tokens can be revoked
            raise _OAuthError("unsupported_token_type")
        with self._lock:
            session = self._sessions.get(token)
            if session is not None:
                if session.sign_in.client_id != client_id:
                    raise _OAuthError("unauthorized_client")
                self._end(session)
        return Reply(200)

    def _logout(self, request: Request) -> Reply:
        params = _params_or_page(request.query)
        if not self._is_client(params.get("client_id", "")):
            raise _PageError("invalid_client", "unknown client_id")
        logout_uri = params.get("logout_uri")
        if logout_uri is None:
            if "redirect_uri" in params and "response_type" in params:
                return Reply.redirect(_with_query("/oauth2/authorize", params))
            raise _PageError("invalid_request", "logout_uri is required")
        if not _allowed_url(logout_uri, self._issuer.logout_urls):
            raise _PageError("invalid_request", "logout_uri is not a sign-out URL of the client")
        return Reply.redirect(logout_uri)

    def _userinfo(self, request: Request) -> Reply:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _OAuthError("invalid_request", 401)
        claims = self._verified_access_token(token.strip())
        if claims is None:
            raise _OAuthError("invalid_token", 401)
        if "openid" not in str(claims.get("scope", "")).split():
            raise _OAuthError("insufficient_scope", 403)
        info: dict[str, Any] = {"sub": claims.get("sub"), "username": claims.get("username")}
        sign_in = self._sign_in_of(str(claims.get("origin_jti")))
        if sign_in is not None:
            user = sign_in.user
            if user.email is not None:
                info.update(email=user.email, email_verified="true")
            info.update({f"custom:{name}": value for name, value in user.custom.items()})
        return Reply.json(200, info)

    def _sign_in_of(self, origin_jti: str) -> _SignIn | None:
        with self._lock:
            for session in self._sessions.values():
                if session.sign_in.origin_jti == origin_jti:
                    return session.sign_in
        return None

    def _verified_access_token(self, token: str) -> dict[str, Any] | None:
        """The claims of a live access token this issuer signed, else None."""
        try:
            head, body, signature = (_unb64(part) for part in token.split("."))
            header, claims = json.loads(head), json.loads(body)
        except (ValueError, binascii.Error):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        key = self._issuer.public_key(str(header.get("kid")))
        if key is None or header.get("alg") != "RS256":
            return None
        signing_input = token.rsplit(".", 1)[0].encode()
        try:
            key.verify(signature, signing_input, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None
        expires = claims.get("exp")
        if (
            claims.get("token_use") != "access"
            or claims.get("iss") != self._issuer.issuer
            or not isinstance(expires, (int, float))
            or expires <= time.time()
            or claims.get("origin_jti") in self._revoked_origins
        ):
            return None
        return claims

    def _discovery(self, request: Request) -> Reply:
        base = self._issuer.url or ""
        return Reply.json(
            200,
            {
                "issuer": self._issuer.issuer,
                "authorization_endpoint": f"{base}/oauth2/authorize",
                "token_endpoint": f"{base}/oauth2/token",
                "userinfo_endpoint": f"{base}/oauth2/userInfo",
                "revocation_endpoint": f"{base}/oauth2/revoke",
                "end_session_endpoint": f"{base}/logout",
                "jwks_uri": self._issuer.jwks_url,
                "response_types_supported": ["code"],
                "grant_types_supported": [
                    "authorization_code",
                    "refresh_token",
                    "client_credentials",
                ],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "scopes_supported": list(_DEFAULT_SCOPES),
                "token_endpoint_auth_methods_supported": [
                    "client_secret_basic",
                    "client_secret_post",
                ],
                "code_challenge_methods_supported": ["S256"],
            },
        )

    def _dev_token(self, request: Request) -> Reply:
        params = _params(request.query)
        known = {name: params[name] for name in DEV_TOKEN_PARAMETERS if name in params}
        try:
            return Reply.json(200, mint_dev_token(self._issuer, **known))
        except DevTokenError as error:
            return Reply.json(400, {"error": "invalid_request", "error_description": str(error)})


# -- helpers ---------------------------------------------------------------------------


def _params(text: str) -> dict[str, str]:
    """Form or query parameters; repeated or too many parameters are ``invalid_request``."""
    try:
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        raise _OAuthError("invalid_request") from None
    params = dict(pairs)
    if len(params) != len(pairs):
        raise _OAuthError("invalid_request")
    return params


def _form(request: Request) -> dict[str, str]:
    """The form of a token or revoke request, which must be url-encoded."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        raise _OAuthError("invalid_request")
    return _params(request.body.decode("utf-8", "replace"))


def _params_or_page(text: str) -> dict[str, str]:
    try:
        return _params(text)
    except _OAuthError:
        raise _PageError("invalid_request", "malformed or repeated parameters") from None


def _split(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def _scope_list(params: Mapping[str, str]) -> tuple[str, ...]:
    """The requested scopes in order, each once."""
    return tuple(dict.fromkeys(params.get("scope", "").split()))


def _user(login_as: str | LocalUser) -> LocalUser:
    if isinstance(login_as, str):
        return LocalUser(login_as)
    return login_as


def _allowed_url(url: str, allowed: Sequence[str] | None) -> bool:
    """An absolute http(s) URL, and one of ``allowed`` when the client lists them."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return allowed is None or url in allowed


def _with_query(url: str, params: Mapping[str, str]) -> str:
    joiner = "&" if urlsplit(url).query else "?"
    return f"{url}{joiner}{urlencode(params)}"


def _basic_credentials(header: str | None) -> tuple[str, str] | None:
    """``(client_id, secret)`` from ``Authorization: Basic``; malformed is ``invalid_client``."""
    if header is None:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic":
        raise _OAuthError("invalid_client")
    credentials = parse_basic_authorization(value)  # form-urldecoded, RFC 6749 §2.3.1
    if credentials is None:
        raise _OAuthError("invalid_client")
    return credentials


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _is_pkce_value(value: str) -> bool:
    allowed = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"
    return 43 <= len(value) <= 128 and all(char in allowed for char in value)


def _at_hash(access_token: str) -> str:
    digest = hashlib.sha256(access_token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def _unb64(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _error_page(code: str, message: str) -> Reply:
    return Reply.page(
        400,
        "An error was encountered",
        f"<h1>An error was encountered</h1><p><code>{html.escape(code)}</code>: "
        f"{html.escape(message)}</p>",
    )


def _sign_in_page(query: str, client_id: str, status: int, problem: str = "") -> Reply:
    action = html.escape(f"/login?{query}", quote=True)
    notice = f"<p role='alert'>{html.escape(problem)}</p>" if problem else ""
    return Reply.page(
        status,
        "Sign in",
        f"<h1>Sign in</h1><p>Local test issuer, app client <code>{html.escape(client_id)}</code>."
        f" Any username signs in; nothing here is secure.</p>{notice}"
        f"<form method='post' action='{action}'>"
        "<label>Username <input name='username' autocomplete='username' required autofocus>"
        "</label><br>"
        "<label>Groups <input name='groups' placeholder='premium, admin'></label><br>"
        "<label>Email <input name='email' type='email'></label><br>"
        "<label><input name='mfa' type='checkbox' value='1'> Second factor (MFA)</label><br>"
        "<button type='submit' name='action' value='sign_in'>Sign in</button> "
        "<button type='submit' name='action' value='cancel' formnovalidate>Cancel</button>"
        "</form>",
    )
