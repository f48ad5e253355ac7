"""FastAPI integration: ``CognitoAuth``, the route dependencies and the OpenAPI scheme.

``current_user``, ``optional_user``, ``require_group`` and ``require_scope`` exist
on every ``CognitoAuth`` and at module level; the module-level ones use the
app's ``CognitoAuth`` (the one whose ``lifespan`` the app runs, or that
``init_app`` registered), else one built from the ``COGNITO_*`` environment.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any, Generic, Protocol, TypeVar
from urllib.parse import parse_qsl

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
from .identity import (
    AwsCredentials,
    IdentityPoolClient,
    check_groups_to_roles,
    check_role_arn,
)
from .settings import CognitoSettings
from .verifier import CognitoVerifier

__all__ = [
    "CognitoAuth",
    "CognitoHTTPException",
    "CognitoWebSocketException",
    "GuestIdentities",
    "bearer_token",
    "connection_token",
    "current_user",
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
    (browsers cannot set headers on a WebSocket)."""
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
    return None


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (scheme case-insensitive)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip(" \t").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip(" \t") or None


class GuestIdentities(Protocol):
    """Keeps a visitor's guest identity id between requests (e.g. in the browser
    session), so ``auth.guest_credentials`` gives one visitor one identity."""

    async def get(self, conn: HTTPConnection) -> str | None:
        """The guest identity id kept for this visitor, if any."""
        ...

    async def set(self, conn: HTTPConnection, identity_id: str) -> None:
        """Keep ``identity_id`` for this visitor."""
        ...


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
        if token is None and self._optional:
            return None
        auth = self._resolve(conn)
        user: CognitoUser = await auth._user_for(conn, token)
        auth._check_scopes(conn, user, security_scopes.scopes, all=True)
        return user


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
        size = min(USER_CACHE_SIZE, max(s.result_cache_size for s in self.settings))
        self._users: LRUCache[str, tuple[TokenClaims, UserT]] | None = (
            LRUCache(size) if size else None
        )
        self._http_client = http_client
        self._identity_clients: dict[str, IdentityPoolClient] = {}
        self.aws_credentials: Dependency = self._make_aws_credentials()
        """Dependency: identity-pool ``AwsCredentials`` for the caller (the pool picks the role)."""
        self.guest_identities: GuestIdentities | None = None
        """Where a visitor's guest identity id is kept (browser sessions set it); None:
        one guest identity for this process."""
        self.guest_credentials: Dependency = self._make_guest_credentials()
        """Dependency: the identity pool's unauthenticated-role ``AwsCredentials``."""

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

    def aws_credentials_for(
        self, role_arn: str | None = None, *, groups_to_roles: Mapping[str, str] | None = None
    ) -> Dependency:
        """A dependency giving the caller identity-pool ``AwsCredentials`` for a role.

        ``role_arn`` names the role; ``groups_to_roles`` maps groups to roles and picks
        the first listed group the user is in (403 when none). Either way the role
        must be one of the token's ``cognito:roles`` (403 ``credentials_denied``
        otherwise, before any call to AWS). Bad arguments are a ``ValueError`` here.
        """
        if role_arn is not None and groups_to_roles is not None:
            raise ValueError("give role_arn or groups_to_roles, not both")
        if role_arn is not None:
            check_role_arn(role_arn)
        mapping = check_groups_to_roles(groups_to_roles) if groups_to_roles is not None else None
        return self._make_aws_credentials(role_arn, mapping)

    def _make_aws_credentials(
        self, role_arn: str | None = None, groups_to_roles: Mapping[str, str] | None = None
    ) -> Dependency:
        async def aws_credentials(
            conn: HTTPConnection,
            user: CognitoUser = Security(self.current_user),
            id_token_header: str | None = Header(None, alias="X-Cognito-Id-Token"),
        ) -> AwsCredentials:
            """Identity-pool credentials for the caller: the bearer when it is an ID
            token, else the ``X-Cognito-Id-Token`` header (same user, same pool).
            The header is declared here for OpenAPI; ``caller_id_token`` reads it."""
            return await self.aws_credentials_of(
                conn, user, role_arn=role_arn, groups_to_roles=groups_to_roles
            )

        return aws_credentials

    async def aws_credentials_of(
        self,
        conn: HTTPConnection,
        user: CognitoUser,
        *,
        role_arn: str | None = None,
        groups_to_roles: Mapping[str, str] | None = None,
    ) -> AwsCredentials:
        """Credentials for ``user`` (the verified caller of ``conn``), for routes that
        choose the role per request; errors are raised as the route's HTTP error
        (or a 1008 close on a WebSocket)."""
        try:
            client = self.identity_client(user.user_pool_id)
            id_token = self.caller_id_token(conn, user)
            claims = await client.verifier.verify(id_token)
            if not isinstance(claims, IdTokenClaims) or claims.sub != user.sub:
                raise CredentialsDeniedError("the ID token is not the caller's")
            return await client.credentials_for_claims(
                id_token, claims, role_arn, groups_to_roles=groups_to_roles
            )
        except CognitoGuardError as error:
            raise self._http_error(error, conn) from None

    def caller_id_token(self, conn: HTTPConnection, user: CognitoUser) -> str:
        """The caller's ID token for identity-pool exchanges: the bearer when it is an
        ID token, else the ``X-Cognito-Id-Token`` header (the caller verifies it).

        Every identity dependency gets the token here, so a browser session (which
        holds the ID token itself) needs to plug in only at this one place.
        """
        token = connection_token(conn.scope) if user.token_use == "id" else None
        token = token or conn.headers.get("x-cognito-id-token")
        if not token:
            raise MissingTokenError("the X-Cognito-Id-Token header is required")
        return token

    def _make_guest_credentials(self) -> Dependency:
        async def guest_credentials(conn: HTTPConnection) -> AwsCredentials:
            """Unauthenticated-role credentials; any token sent is ignored."""
            try:
                client = self.identity_client(self._guest_pool_id())
                keeper = self.guest_identities
                if keeper is None:
                    return await client.guest_credentials()
                identity_id = await keeper.get(conn)
                if identity_id is None:
                    identity_id = await client.new_guest_identity()
                    await keeper.set(conn, identity_id)
                return await client.guest_credentials(identity_id)
            except CognitoGuardError as error:
                raise self._http_error(error, conn) from None

        return guest_credentials

    def _guest_pool_id(self) -> str:
        """The user pool whose identity pool serves guests: the first with one."""
        pool = next((s.user_pool_id for s in self.settings if s.identity_pool_id), None)
        return pool if pool is not None else self.settings[0].user_pool_id

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
            raise self._http_error(MissingTokenError("Not authenticated"), conn)
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
require_group = _module_guards.require_group
require_scope = _module_guards.require_scope
require_pool = _module_guards.require_pool
