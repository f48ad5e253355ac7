"""FastAPI integration: ``CognitoAuth``, the route dependencies and the OpenAPI scheme.

``current_user``, ``optional_user``, ``require_group`` and ``require_scope`` exist
on every ``CognitoAuth`` and at module level; the module-level ones use the
app's ``CognitoAuth`` (the one whose ``lifespan`` the app runs, or that
``init_app`` registered), else one built from the ``COGNITO_*`` environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx
from cachetools import LRUCache
from fastapi import (
    FastAPI,
    Header,
    HTTPException,
    Request,
    Security,
    WebSocket,
    WebSocketException,
)
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowAuthorizationCode, OAuthFlows
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from fastapi.responses import JSONResponse
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection
from starlette.routing import NoMatchFound
from starlette.types import Scope
from starlette.websockets import WebSocketState

from .claims import CognitoUser, IdTokenClaims, TokenClaims
from .errors import (
    CognitoGuardError,
    CredentialsDeniedError,
    IdentityPoolConfigError,
    InsufficientScopeError,
    InvalidTokenError,
    KeysUnavailableError,
    MissingGroupError,
    MissingTokenError,
    ServiceUnavailableError,
)
from .identity import AwsCredentials, IdentityPoolClient
from .sessions.context import session_error, session_token
from .sessions.manager import BrowserSessions, sessions_for
from .settings import CognitoSettings
from .verifier import CognitoVerifier

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = [
    "CognitoAuth",
    "CognitoHTTPException",
    "CognitoWebSocketException",
    "bearer_token",
    "connection_token",
    "current_user",
    "login_required",
    "optional_user",
    "require_group",
    "require_pool",
    "require_scope",
]

logger = logging.getLogger("fastapi_cognito_guard")

UserT = TypeVar("UserT", bound=CognitoUser)
Dependency = Callable[..., Awaitable[Any]]

USER_CACHE_SIZE = 1024
"""Users kept for the most recent tokens (a user object is shared by the requests
that carry the same token, which is why it is immutable)."""

WS_POLICY_VIOLATION = 1008
"""The WebSocket close code for a connection refused for its token."""

_DEFAULT_OAUTH_SCOPES = {"openid": "OpenID Connect sign-in", "email": "Email", "profile": "Profile"}


def connection_token(scope: Scope) -> str | None:
    """The bearer token of a request; WebSockets may also pass ``?access_token=``
    (browsers cannot set headers on a WebSocket). Without an ``Authorization``
    header, the browser session's token (§13) when the request has one."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            token = bearer_token(value.decode("latin-1"))
            if token is not None or scope["type"] != "websocket":
                return token
            break
    if scope["type"] == "websocket":
        for name, value in parse_qsl(scope.get("query_string", b"").decode("latin-1")):
            if name == "access_token":
                return value or None
    return session_token(scope)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip(" \t") or None


class CognitoHTTPException(HTTPException):
    """An HTTP error from a Cognito check, carrying the stable error ``code``.

    Rendered as ``{"detail": ..., "code": ...}`` once ``CognitoAuth.init_app`` (or
    its ``lifespan``) has registered the handler; FastAPI's own handler still
    gives the right status and headers without it.
    """

    def __init__(self, error: CognitoGuardError, realm: str) -> None:
        super().__init__(error.status_code, error.message, challenge_headers(error, realm))
        self.code = error.code


class CognitoWebSocketException(WebSocketException):
    """A WebSocket refused for its token: closed with 1008 and the error code as reason."""


async def _close_websocket(websocket: WebSocket, exc: Exception) -> None:
    """Accept, then close with the policy-violation code, so the client sees 1008
    (closing before the handshake completes would reach it as an HTTP 403)."""
    assert isinstance(exc, CognitoWebSocketException)
    if websocket.application_state == WebSocketState.CONNECTING:
        await websocket.accept()
    await websocket.close(code=exc.code, reason=exc.reason)


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def challenge_headers(error: CognitoGuardError, realm: str) -> dict[str, str]:
    """The RFC 6750 ``WWW-Authenticate`` (or ``Retry-After``) headers for an error."""
    if isinstance(error, ServiceUnavailableError):
        return {"Retry-After": str(error.retry_after)}
    challenge = f'Bearer realm="{_quote(realm)}"'
    if isinstance(error, MissingTokenError):
        return {"WWW-Authenticate": challenge}
    if isinstance(error, InvalidTokenError):
        description = _quote(error.message)
        challenge += f', error="invalid_token", error_description="{description}"'
        return {"WWW-Authenticate": challenge}
    if isinstance(error, InsufficientScopeError):
        scope = _quote(" ".join(error.scopes))
        return {"WWW-Authenticate": f'{challenge}, error="insufficient_scope", scope="{scope}"'}
    return {}


def error_response(error: CognitoGuardError, realm: str) -> JSONResponse:
    """The JSON response for a Cognito check that failed."""
    return JSONResponse(
        {"detail": error.message, "code": error.code},
        status_code=error.status_code,
        headers=challenge_headers(error, realm),
    )


def _declare_required_scopes(schema: dict[str, Any]) -> None:
    """Add each scope named in an operation's security requirement to its OAuth2 flow."""
    schemes = schema.get("components", {}).get("securitySchemes", {})
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            for requirement in operation.get("security", ()) if isinstance(operation, dict) else ():
                for name, scopes in requirement.items():
                    flow = schemes.get(name, {}).get("flows", {}).get("authorizationCode")
                    if flow is not None:
                        for scope in scopes:
                            flow.setdefault("scopes", {}).setdefault(scope, scope)


async def _handle_cognito_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CognitoHTTPException)
    return JSONResponse(
        {"detail": exc.detail, "code": exc.code}, status_code=exc.status_code, headers=exc.headers
    )


class _DescribedScheme(SecurityBase):
    """A security scheme whose OpenAPI model is looked up when the schema is built."""

    def __init__(self, describe: Callable[[], tuple[str, SecurityBaseModel]]) -> None:
        self._describe = describe

    @property
    def model(self) -> SecurityBaseModel:  # type: ignore[override]
        return self._describe()[1]

    @property
    def scheme_name(self) -> str:  # type: ignore[override]
        return self._describe()[0]


class _BearerScheme(_DescribedScheme):
    """Reads the bearer token; its OpenAPI model says how Swagger UI obtains one."""

    async def __call__(self, conn: HTTPConnection) -> str | None:
        return connection_token(conn.scope)


Resolve = Callable[[HTTPConnection], "CognitoAuth[Any]"]


class _UserDependency(_DescribedScheme):
    """``current_user`` / ``optional_user``: the dependency is its own security scheme,
    so a guarded route costs FastAPI one dependency to resolve, not two."""

    def __init__(
        self,
        describe: Callable[[], tuple[str, SecurityBaseModel]],
        resolve: Resolve,
        *,
        optional: bool,
    ) -> None:
        super().__init__(describe)
        self._resolve = resolve
        self._optional = optional

    async def __call__(
        self, security_scopes: SecurityScopes, conn: HTTPConnection
    ) -> CognitoUser | None:
        """The verified caller (401 without a valid token, 403 without required scopes);
        for ``optional_user``, None when no token was sent (a bad token is still a 401)."""
        token = connection_token(conn.scope)
        if token is None and self._optional and session_error(conn.scope) is None:
            return None
        auth = self._resolve(conn)
        user: CognitoUser = await auth._user_for(conn, token)
        auth._check_scopes(conn, user, security_scopes.scopes, all=True)
        return user


class _LoginRequired(_UserDependency):
    """``login_required``: ``current_user`` that sends signed-out browser navigations
    (GET or HEAD accepting HTML) to ``/auth/login?next=<this page>``."""

    async def __call__(
        self, security_scopes: SecurityScopes, conn: HTTPConnection
    ) -> CognitoUser | None:
        try:
            return await super().__call__(security_scopes, conn)
        except CognitoHTTPException as exc:
            if exc.status_code != 401 or not _is_navigation(conn):
                raise
            location = _sign_in_url(conn)
        raise HTTPException(302, "sign-in required", headers={"Location": location})


def _is_navigation(conn: HTTPConnection) -> bool:
    return (
        conn.scope["type"] == "http"
        and conn.scope["method"] in ("GET", "HEAD")
        and "text/html" in conn.headers.get("accept", "")
    )


def _sign_in_url(conn: HTTPConnection) -> str:
    """The login route's path (``/auth/login`` when the app names none) with ``next``."""
    try:
        login = conn.url_for("cognito_login").path
    except NoMatchFound:
        login = "/auth/login"
    here = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
    return f"{login}?{urlencode({'next': here})}"


class _Guards:
    """Builds the route dependencies over a token scheme and a way to find the auth.

    ``CognitoAuth`` instances resolve to themselves; the module-level
    dependencies resolve to the app's ``CognitoAuth``.
    """

    def __init__(self, scheme: _BearerScheme, resolve: Resolve) -> None:
        self.scheme = scheme
        self.resolve = resolve
        self.current_user: Dependency = _UserDependency(scheme._describe, resolve, optional=False)
        self.optional_user: Dependency = _UserDependency(scheme._describe, resolve, optional=True)
        self.login_required: Dependency = _LoginRequired(scheme._describe, resolve, optional=False)

    def require_group(self, *groups: str, all: bool = False) -> Dependency:
        if not groups:
            raise ValueError("require_group needs at least one group")
        resolve = self.resolve

        async def group_member(
            conn: HTTPConnection, user: CognitoUser = Security(self.current_user)
        ) -> CognitoUser:
            held = set(user.groups)
            if not (held.issuperset(groups) if all else not held.isdisjoint(groups)):
                error = MissingGroupError("the user is not in a required group", groups=groups)
                raise resolve(conn)._http_error(error, conn)
            return user

        return group_member

    def require_scope(self, *scopes: str, all: bool = True) -> Dependency:
        if not scopes:
            raise ValueError("require_scope needs at least one scope")
        if all:

            async def scoped(
                user: CognitoUser = Security(self.current_user, scopes=list(scopes)),
            ) -> CognitoUser:
                return user

            return scoped
        resolve = self.resolve

        async def any_scope(
            conn: HTTPConnection, token: str | None = Security(self.scheme, scopes=list(scopes))
        ) -> CognitoUser:
            auth = resolve(conn)
            user: CognitoUser = await auth._user_for(conn, token)
            auth._check_scopes(conn, user, scopes, all=False)
            return user

        return any_scope

    def require_pool(self, *user_pool_ids: str) -> Dependency:
        if not user_pool_ids:
            raise ValueError("require_pool needs at least one user pool id")
        resolve = self.resolve

        async def pool_member(
            conn: HTTPConnection, user: CognitoUser = Security(self.current_user)
        ) -> CognitoUser:
            if user.user_pool_id not in user_pool_ids:
                error = InvalidTokenError("wrong_issuer", "token is from another user pool")
                raise resolve(conn)._http_error(error, conn)
            return user

        return pool_member


class CognitoAuth(Generic[UserT]):
    """Cognito authentication for a FastAPI app: dependencies, OpenAPI and lifespan.

    ``CognitoAuth()`` reads the ``COGNITO_*`` environment; pass settings (or a
    list of them, one per user pool) to configure it in code, and ``user_model``
    to receive a ``CognitoUser`` subclass from the dependencies.
    """

    def __init__(
        self,
        settings: CognitoSettings | Sequence[CognitoSettings] | None = None,
        *,
        user_model: type[UserT] = CognitoUser,  # type: ignore[assignment]
        http_client: httpx.AsyncClient | None = None,
        realm: str = "api",
    ) -> None:
        self.verifier = CognitoVerifier(
            settings if settings is not None else CognitoSettings(),  # type: ignore[call-arg]
            http_client=http_client,
        )
        self.settings = self.verifier.settings
        self.user_model = user_model
        self.realm = realm
        self._domain = next((s.domain for s in self.settings if s.domain), None)
        self.scheme = _BearerScheme(self._openapi_scheme)
        self._guards = _Guards(self.scheme, lambda conn: self)
        self.current_user: Dependency = self._guards.current_user
        """Dependency: the verified caller (401 without a valid token)."""
        self.optional_user: Dependency = self._guards.optional_user
        """Dependency: the verified caller, or None when no token was sent."""
        self.login_required: Dependency = self._guards.login_required
        """Dependency: ``current_user`` that redirects signed-out browser navigations to
        ``/auth/login?next=...`` (other requests get the 401)."""
        size = min(USER_CACHE_SIZE, max(s.result_cache_size for s in self.settings))
        self._users: LRUCache[str, tuple[TokenClaims, UserT]] | None = (
            LRUCache(size) if size else None
        )
        self._http_client = http_client
        self.sessions: BrowserSessions | None = sessions_for(
            self.settings, self.verifier, http_client
        )
        """Browser sign-in (§13), when ``session_secret`` and the OAuth2 URL are set."""
        self._identity_clients: dict[str, IdentityPoolClient] = {}
        self.aws_credentials: Dependency = self._make_aws_credentials()
        """Dependency: identity-pool ``AwsCredentials`` for the caller (see ``identity_client``)."""

    def require_group(self, *groups: str, all: bool = False) -> Dependency:
        """A dependency admitting users in any of ``groups`` (every one with ``all=True``)."""
        return self._guards.require_group(*groups, all=all)

    def require_scope(self, *scopes: str, all: bool = True) -> Dependency:
        """A dependency admitting tokens with all of ``scopes`` (any one with ``all=False``)."""
        return self._guards.require_scope(*scopes, all=all)

    def require_pool(self, *user_pool_ids: str) -> Dependency:
        """A dependency admitting only tokens signed by the given user pools."""
        unknown = set(user_pool_ids) - {s.user_pool_id for s in self.settings}
        if unknown:
            raise ValueError(f"require_pool names unconfigured user pools: {sorted(unknown)}")
        return self._guards.require_pool(*user_pool_ids)

    # -- browser sign-in -------------------------------------------------------

    def login_router(self, *, prefix: str = "/auth") -> APIRouter:
        """The browser sign-in routes: ``GET {prefix}/login?next=``, ``GET
        {prefix}/callback`` and ``GET``/``POST {prefix}/logout[?everywhere=true]``.

        Raises ``ValueError`` naming the missing settings when ``session_secret``
        or the OAuth2 URL (``domain`` / ``oauth_url``) is not configured.
        """
        from .sessions.routes import login_router

        if self.sessions is None:  # BrowserSessions raises, naming what is missing
            BrowserSessions(self.settings[0], verifier=self.verifier)
        assert self.sessions is not None
        return login_router(self, self.sessions, prefix)

    # -- identity pools --------------------------------------------------------

    def identity_client(self, user_pool_id: str) -> IdentityPoolClient:
        """The identity-pool client for a configured user pool with ``identity_pool_id``."""
        client = self._identity_clients.get(user_pool_id)
        if client is None:
            settings = next(s for s in self.settings if s.user_pool_id == user_pool_id)
            if not settings.identity_pool_id:
                logger.error("aws_credentials used but COGNITO_IDENTITY_POOL_ID is not set")
                raise IdentityPoolConfigError("no identity pool is configured")
            verifier = (
                self.verifier if settings.token_use == "id" and len(self.settings) == 1 else None
            )
            client = IdentityPoolClient(settings, verifier=verifier, http_client=self._http_client)
            self._identity_clients[user_pool_id] = client
        return client

    def _make_aws_credentials(self) -> Dependency:
        async def aws_credentials(
            user: CognitoUser = Security(self.current_user),
            bearer: str | None = Security(self.scheme),
            id_token_header: str | None = Header(None, alias="X-Cognito-Id-Token"),
        ) -> AwsCredentials:
            """Identity-pool credentials for the caller: the bearer when it is an ID
            token, else the ``X-Cognito-Id-Token`` header (same user, same pool)."""
            id_token = bearer if user.token_use == "id" else id_token_header
            try:
                if id_token is None:
                    raise MissingTokenError("the X-Cognito-Id-Token header is required")
                client = self.identity_client(user.user_pool_id)
                claims = await client.verifier.verify(id_token)
                if not isinstance(claims, IdTokenClaims) or claims.sub != user.sub:
                    raise CredentialsDeniedError("the ID token is not the caller's")
                return await client.credentials_for_claims(id_token, claims)
            except CognitoGuardError as error:
                raise self._http_error(error) from None

        return aws_credentials

    # -- app wiring ------------------------------------------------------------

    def init_app(self, app: FastAPI) -> None:
        """Make this the app's ``CognitoAuth``: module-level dependencies use it, errors
        render as ``{detail, code}``, and its OpenAPI scheme lists every scope routes need.
        """
        global _registered
        app.state.cognito_auth = self
        app.add_exception_handler(CognitoHTTPException, _handle_cognito_exception)
        app.add_exception_handler(CognitoWebSocketException, _close_websocket)
        # Starlette copies exception handlers when it builds its middleware stack,
        # which happens before the lifespan runs; have it rebuilt before any request.
        app.middleware_stack = None
        if self.sessions is not None:
            from .sessions.middleware import SessionMiddleware

            installed = (getattr(entry, "cls", None) for entry in app.user_middleware)
            if SessionMiddleware not in installed:
                app.add_middleware(SessionMiddleware, sessions=self.sessions)
        if not getattr(app.openapi, "_cognito_guard", False):
            app.openapi = self._openapi_for(app, app.openapi)  # type: ignore[method-assign]
        _registered = self

    def _openapi_for(self, app: FastAPI, generate: Callable[[], dict[str, Any]]) -> Any:
        """Wrap the app's OpenAPI generation: describe this auth, and put every scope a
        route requires into the OAuth2 flow so Swagger UI can request it."""

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is not None:
                return app.openapi_schema
            describing = _openapi_auth.set(self)
            try:
                schema = generate()
            finally:
                _openapi_auth.reset(describing)
            _declare_required_scopes(schema)
            return schema

        openapi._cognito_guard = True  # type: ignore[attr-defined]
        return openapi

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Register with the app, prefetch signing keys, and close the HTTP client at exit."""
        self.init_app(app)
        try:
            await self.verifier.hydrate()
        except KeysUnavailableError as exc:
            logger.warning("signing keys not prefetched (%s); requests will retry", exc.message)
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the verifier's and the identity clients' HTTP connections."""
        for client in self._identity_clients.values():
            await client.aclose()
        if self.sessions is not None:
            await self.sessions.aclose()
        await self.verifier.aclose()

    @property
    def swagger_ui_init_oauth(self) -> dict[str, Any] | None:
        """Swagger UI's OAuth settings (code flow with PKCE) when a hosted-UI ``domain`` is set."""
        if self._domain is None:
            return None
        return {
            "clientId": self.settings[0].client_ids[0],
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": " ".join(_DEFAULT_OAUTH_SCOPES),
        }

    def _openapi_scheme(self) -> tuple[str, SecurityBaseModel]:
        if self._domain is None:
            return "CognitoBearer", HTTPBearerModel(bearerFormat="JWT")
        scopes = dict(_DEFAULT_OAUTH_SCOPES)
        flow = OAuthFlowAuthorizationCode(
            authorizationUrl=f"https://{self._domain}/oauth2/authorize",
            tokenUrl=f"https://{self._domain}/oauth2/token",
            scopes=scopes,
        )
        return "CognitoOAuth2", OAuth2Model(flows=OAuthFlows(authorizationCode=flow))

    # -- verification ----------------------------------------------------------

    def _http_error(
        self, error: CognitoGuardError, conn: HTTPConnection | None = None
    ) -> CognitoHTTPException | CognitoWebSocketException:
        if conn is not None and conn.scope["type"] == "websocket":
            return CognitoWebSocketException(WS_POLICY_VIOLATION, reason=error.code)
        return CognitoHTTPException(error, self.realm)

    async def authenticate(self, token: str) -> UserT:
        """Verify a token and build the user; raises ``CognitoGuardError`` on failure.

        The user built for a token is reused while the verifier keeps answering with
        the same verified claims (its result cache), so repeat callers skip building it.
        """
        claims = await self.verifier.verify(token)
        users = self._users
        if users is None:
            return self.user_model.from_claims(claims)
        entry = users.get(token)
        if entry is not None and entry[0] is claims:
            return entry[1]
        user = self.user_model.from_claims(claims)
        users[token] = (claims, user)
        return user

    async def _user_for(self, conn: HTTPConnection, token: str | None) -> UserT:
        """The request's user, verified once per request however many guards ask."""
        if token is None:
            error = session_error(conn.scope) or MissingTokenError("Not authenticated")
            raise self._http_error(error, conn)
        state = conn.scope.setdefault("state", {})  # what request.state reads and writes
        cached: tuple[str, UserT] | None = state.get("cognito_user")
        if cached is not None and cached[0] == token:
            return cached[1]
        try:
            user = await self.authenticate(token)
        except CognitoGuardError as error:
            raise self._http_error(error, conn) from None
        state["cognito_user"] = (token, user)
        return user

    def _check_scopes(
        self, conn: HTTPConnection, user: CognitoUser, required: Sequence[str], *, all: bool
    ) -> None:
        if not required:
            return
        held = set(user.scopes)
        missing = [scope for scope in required if scope not in held]
        if missing and (all or len(missing) == len(required)):
            error = InsufficientScopeError(
                "the token lacks a required scope", scopes=tuple(required)
            )
            raise self._http_error(error, conn)


# -- module-level dependencies: the app's CognitoAuth, or one from the environment --

_registered: CognitoAuth[Any] | None = None
_openapi_auth: ContextVar[CognitoAuth[Any] | None] = ContextVar("_openapi_auth", default=None)
_from_env: CognitoAuth[Any] | None = None


def _default_auth() -> CognitoAuth[Any]:
    global _from_env
    if _registered is not None:
        return _registered
    if _from_env is None:
        _from_env = CognitoAuth()
    return _from_env


def _auth_of(conn: HTTPConnection) -> CognitoAuth[Any]:
    auth = getattr(conn.app.state, "cognito_auth", None)
    return auth if isinstance(auth, CognitoAuth) else _default_auth()


def _described_scheme() -> tuple[str, SecurityBaseModel]:
    """The scheme of the auth whose app is generating OpenAPI, else the default one."""
    return (_openapi_auth.get() or _default_auth())._openapi_scheme()


_module_guards = _Guards(_BearerScheme(_described_scheme), _auth_of)

current_user = _module_guards.current_user
optional_user = _module_guards.optional_user
login_required = _module_guards.login_required
require_group = _module_guards.require_group
require_scope = _module_guards.require_scope
require_pool = _module_guards.require_pool
