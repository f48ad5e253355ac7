"""FastAPI integration: ``CognitoAuth``, the route dependencies and the OpenAPI scheme.

``current_user``, ``optional_user``, ``require_group``, ``require_scope`` and
``require_any`` exist on every ``CognitoAuth`` and at module level; the
module-level ones use the ``CognitoAuth`` registered on the app that handles the
request (its ``lifespan`` ran, or ``init_app`` was called), else one built from
the ``COGNITO_*`` environment, never another app's.

Each ``CognitoAuth`` (and the middleware's) verifies a request's token for
itself: the per-request cache holds one user per auth, so a token one auth
accepted is still checked against another's pools, clients, token use and user
model.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Annotated, Any, Generic, Protocol
from urllib.parse import unquote_plus, urlencode

import httpx
from cachetools import LRUCache
from fastapi import (
    Depends,
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
from pydantic import ValidationError
from starlette.requests import HTTPConnection
from starlette.routing import NoMatchFound
from starlette.types import Message, Scope, Send
from starlette.websockets import WebSocketState
from typing_extensions import TypeVar

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
    warn_unshared_credentials,
)
from .revocation import RevocationList, Revoker, SignOutResult, shared_revocations
from .sessions.context import session_context, session_error, session_token
from .sessions.manager import BrowserSessions, sessions_for
from .settings import CognitoSettings
from .stores import KeyValueStore, RedisLink, RedisStore
from .verifier import CognitoVerifier

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = [
    "BEARER_SUBPROTOCOL",
    "CognitoAuth",
    "CognitoHTTPException",
    "CognitoWebSocketException",
    "CurrentUser",
    "GuestIdentities",
    "OptionalUser",
    "bearer_token",
    "connection_token",
    "current_user",
    "login_required",
    "optional_user",
    "require_any",
    "require_group",
    "require_pool",
    "require_scope",
]

logger = logging.getLogger("fastapi_cognito_guard")

UserT = TypeVar("UserT", bound=CognitoUser, default=CognitoUser)
T = TypeVar("T", default=Any)
Dependency = Callable[..., Awaitable[T]]
"""A FastAPI dependency (what ``Depends`` takes) whose value is a ``T``."""

USER_CACHE_SIZE = 1024
"""Users kept for the most recent tokens (a user object is shared by the requests
that carry the same token, which is why it is immutable)."""

WS_POLICY_VIOLATION = 1008
"""The WebSocket close code for a connection refused for its token."""

WS_INTERNAL_ERROR = 1011
"""The WebSocket close code for a connection the server cannot authenticate at all."""

BEARER_SUBPROTOCOL = "cognito-bearer"
"""Browsers cannot set headers on a WebSocket: they offer ``Sec-WebSocket-Protocol:
cognito-bearer, <token>`` instead, and the accept must name ``cognito-bearer``."""

_SCOPE_KEY = "fastapi_cognito_guard"
_ERROR_SCHEMA = "CognitoError"


# -- the request's token: read once, in one place -----------------------------------


class _RequestAuth:
    """What the library learned about one request, kept in its ASGI scope.

    The token is read once (a query token leaves the scope on that first read, so
    nothing logs it afterwards); ``users`` holds the user each ``CognitoAuth``
    verified for this token, so every auth decides for itself and only once.
    """

    __slots__ = ("token", "users")

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.users: dict[CognitoAuth[Any], tuple[str, CognitoUser]] = {}


def _request_auth(scope: Scope) -> _RequestAuth:
    found: _RequestAuth | None = scope.get(_SCOPE_KEY)
    if found is None:
        found = _RequestAuth(_read_token(scope))
        scope[_SCOPE_KEY] = found
    return found


def _read_token(scope: Scope) -> str | None:
    """The bearer token. HTTP: the ``Authorization`` header only.
    WebSocket: that header, else the ``cognito-bearer`` subprotocol pair, else
    ``?access_token=`` (which is always removed from the scope's query string)."""
    header = None
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            header = bearer_token(value.decode("latin-1"))
            break
    if scope["type"] != "websocket":
        return header
    query = _take_query_token(scope)
    if header is not None:
        return header
    offered = list(scope.get("subprotocols", ()))
    if BEARER_SUBPROTOCOL in offered:
        position = offered.index(BEARER_SUBPROTOCOL) + 1
        if position < len(offered) and offered[position]:
            return str(offered[position])
    return query


def _take_query_token(scope: Scope) -> str | None:
    """Remove every ``access_token`` parameter from the query string (whatever its
    encoding); the first one's value."""
    parts = scope.get("query_string", b"").split(b"&")
    kept = [part for part in parts if not _is_token_parameter(part)]
    if len(kept) == len(parts):
        return None
    scope["query_string"] = b"&".join(kept)
    first = next(part for part in parts if _is_token_parameter(part))
    return unquote_plus(first.partition(b"=")[2].decode("latin-1")) or None


def _is_token_parameter(part: bytes) -> bool:
    return unquote_plus(part.partition(b"=")[0].decode("latin-1")) == "access_token"


def connection_token(scope: Scope) -> str | None:
    """The bearer token of a request: the ``Authorization`` header; WebSockets may
    also use the ``cognito-bearer`` subprotocol pair or ``?access_token=`` (browsers
    cannot set headers on a WebSocket). Read once per request. Without any of
    those, the browser session's token (§13) when the request has one."""
    return _request_auth(scope).token or session_token(scope)


def offers_bearer_subprotocol(scope: Scope) -> bool:
    """Whether a WebSocket client offered the ``cognito-bearer`` subprotocol."""
    return scope["type"] == "websocket" and BEARER_SUBPROTOCOL in scope.get("subprotocols", ())


def accepting_bearer_subprotocol(send: Send) -> Send:
    """``send``, but a WebSocket accept that names no subprotocol names ``cognito-bearer``
    (a browser drops a connection whose accept does not name the one it offered)."""
    if getattr(send, "_names_bearer_subprotocol", False):
        return send

    async def send_naming_subprotocol(message: Message) -> None:
        if message["type"] == "websocket.accept" and message.get("subprotocol") is None:
            message = {**message, "subprotocol": BEARER_SUBPROTOCOL}
        await send(message)

    send_naming_subprotocol._names_bearer_subprotocol = True  # type: ignore[attr-defined]
    return send_naming_subprotocol


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


def _document_guarded_operations(schema: dict[str, Any]) -> None:
    """Complete what FastAPI generates for guarded operations: each scope a security
    requirement names joins its OAuth2 flow (so Swagger UI can request it), and the
    401/403 answers are listed with the ``{detail, code}`` body."""
    schemes = schema.get("components", {}).get("securitySchemes", {})
    guarded = False
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            requirements = operation.get("security", ()) if isinstance(operation, dict) else ()
            ours = [r for r in requirements if any(name in schemes for name in r)]
            for requirement in ours:
                for name, scopes in requirement.items():
                    flow = schemes.get(name, {}).get("flows", {}).get("authorizationCode")
                    if flow is not None:
                        for scope in scopes:
                            flow.setdefault("scopes", {}).setdefault(scope, scope)
            if ours:
                guarded = True
                responses = operation.setdefault("responses", {})
                for status, description in _GUARD_RESPONSES.items():
                    responses.setdefault(status, _error_response_doc(description))
    if guarded:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(_ERROR_SCHEMA, _error_body())


_GUARD_RESPONSES = {
    "401": "Missing or invalid token",
    "403": "The token lacks a required group or scope",
}


def _error_body() -> dict[str, Any]:
    """The JSON schema of the ``{detail, code}`` error body."""
    return {
        "title": _ERROR_SCHEMA,
        "type": "object",
        "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
        "required": ["detail", "code"],
    }


def _error_response_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{_ERROR_SCHEMA}"}}
        },
    }


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


Resolve = Callable[[HTTPConnection], "CognitoAuth[UserT]"]


class _UserDependency(_DescribedScheme, Generic[UserT]):
    """``current_user`` / ``optional_user``: the dependency is its own security scheme,
    so a guarded route costs FastAPI one dependency to resolve, not two. Scopes
    declared around it (``Security(..., scopes=[...])``) are all required."""

    def __init__(
        self, describe: Callable[[], tuple[str, SecurityBaseModel]], resolve: Resolve[UserT]
    ) -> None:
        super().__init__(describe)
        self._resolve = resolve


class _CurrentUser(_UserDependency[UserT]):
    async def __call__(self, security_scopes: SecurityScopes, conn: HTTPConnection) -> UserT:
        """The verified caller (401 without a valid token, 403 without required scopes)."""
        auth = self._resolve(conn)
        user = await auth._user_for(conn)
        auth._check_scopes(conn, user, security_scopes.scopes, all=True)
        return user


class _OptionalUser(_UserDependency[UserT]):
    async def __call__(self, security_scopes: SecurityScopes, conn: HTTPConnection) -> UserT | None:
        """The verified caller, or None when no token was sent (a bad token is a 401)."""
        auth = self._resolve(conn)
        if auth.request_token(conn) is None and session_error(conn.scope) is None:
            return None
        user = await auth._user_for(conn)
        auth._check_scopes(conn, user, security_scopes.scopes, all=True)
        return user


def _names(kind: str, values: Iterable[str]) -> tuple[str, ...]:
    """Validated guard arguments: a list of non-empty names, never one bare string
    (whose characters would each become a name)."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{kind} takes a list of names, not one string")
    names = tuple(values)
    if not all(isinstance(name, str) and name for name in names):
        raise ValueError(f"{kind} names must be non-empty strings")
    return names


class _LoginRequired(_CurrentUser[UserT]):
    """``login_required``: ``current_user`` that sends signed-out browser navigations
    (GET or HEAD accepting HTML) to ``/auth/login?next=<this page>``."""

    async def __call__(self, security_scopes: SecurityScopes, conn: HTTPConnection) -> UserT:
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


class _Guards(Generic[UserT]):
    """Builds the route dependencies over a token scheme and a way to find the auth.

    ``CognitoAuth`` instances resolve to themselves; the module-level
    dependencies resolve to the app's ``CognitoAuth``.
    """

    def __init__(self, scheme: _BearerScheme, resolve: Resolve[UserT]) -> None:
        self.scheme = scheme
        self.resolve = resolve
        self.current_user: Dependency[UserT] = _CurrentUser(scheme._describe, resolve)
        self.optional_user: Dependency[UserT | None] = _OptionalUser(scheme._describe, resolve)
        self.login_required: Dependency[UserT] = _LoginRequired(scheme._describe, resolve)

    def require_group(self, *groups: str, all: bool = False) -> Dependency[UserT]:
        groups = _names("require_group", groups)
        if not groups:
            raise ValueError("require_group needs at least one group")
        resolve = self.resolve

        async def group_member(
            conn: HTTPConnection, user: UserT = Security(self.current_user)
        ) -> UserT:
            held = set(user.groups)
            missing = [group for group in groups if group not in held]
            if missing and (all or len(missing) == len(groups)):
                raise resolve(conn)._http_error(_missing_groups(missing if all else groups), conn)
            return user

        return group_member

    def require_scope(self, *scopes: str, all: bool = True) -> Dependency[UserT]:
        scopes = _names("require_scope", scopes)
        if not scopes:
            raise ValueError("require_scope needs at least one scope")
        if all:

            async def scoped(
                user: UserT = Security(self.current_user, scopes=list(scopes)),
            ) -> UserT:
                return user

            return scoped
        resolve = self.resolve

        async def any_scope(
            security_scopes: SecurityScopes,
            conn: HTTPConnection,
            _: str | None = Security(self.scheme, scopes=list(scopes)),
        ) -> UserT:
            # security_scopes holds the scopes declared around this dependency: all
            # of those are required, and any one of its own.
            auth = resolve(conn)
            user = await auth._user_for(conn)
            auth._check_scopes(conn, user, security_scopes.scopes, all=True)
            auth._check_scopes(conn, user, scopes, all=False)
            return user

        return any_scope

    def require_any(
        self, groups: Iterable[str] = (), scopes: Iterable[str] = ()
    ) -> Dependency[UserT]:
        groups = _names("require_any groups", groups)
        scopes = _names("require_any scopes", scopes)
        if not groups and not scopes:
            raise ValueError("require_any needs at least one group or scope")
        resolve = self.resolve

        async def group_or_scope(
            conn: HTTPConnection, user: UserT = Security(self.current_user)
        ) -> UserT:
            if set(user.groups).isdisjoint(groups) and set(user.scopes).isdisjoint(scopes):
                # A machine client (no groups) is told which scopes would do.
                error: CognitoGuardError = (
                    InsufficientScopeError(
                        f"the token has none of the scopes: {', '.join(scopes)}", scopes=scopes
                    )
                    if scopes and (user.is_machine or not groups)
                    else _missing_groups(groups)
                )
                raise resolve(conn)._http_error(error, conn)
            return user

        return group_or_scope

    def require_pool(self, *user_pool_ids: str) -> Dependency[UserT]:
        user_pool_ids = _names("require_pool", user_pool_ids)
        if not user_pool_ids:
            raise ValueError("require_pool needs at least one user pool id")
        resolve = self.resolve

        async def pool_member(
            conn: HTTPConnection, user: UserT = Security(self.current_user)
        ) -> UserT:
            if user.user_pool_id not in user_pool_ids:
                error = InvalidTokenError("wrong_issuer", "token is from another user pool")
                raise resolve(conn)._http_error(error, conn)
            return user

        return pool_member


def _missing_groups(groups: Sequence[str]) -> MissingGroupError:
    """The 403 for a user outside the required groups, naming them."""
    listed = ", ".join(groups)
    return MissingGroupError(
        f"the user is not in the required group(s): {listed}", groups=tuple(groups)
    )


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
            settings if settings is not None else CognitoSettings(),
            http_client=http_client,
        )
        self.settings = self.verifier.settings
        self.user_model = user_model
        self.realm = realm
        self._oauth = next((s for s in self.settings if s.oauth_base_url), None)
        self.scheme = _BearerScheme(self._openapi_scheme)
        self._guards: _Guards[UserT] = _Guards(self.scheme, lambda conn: self)
        self.current_user: Dependency[UserT] = self._guards.current_user
        """Dependency: the verified caller (401 without a valid token)."""
        self.optional_user: Dependency[UserT | None] = self._guards.optional_user
        """Dependency: the verified caller, or None when no token was sent."""
        self.login_required: Dependency[UserT] = self._guards.login_required
        """Dependency: ``current_user`` that redirects signed-out browser navigations to
        ``/auth/login?next=...`` (other requests get the 401)."""
        size = min(USER_CACHE_SIZE, max(s.result_cache_size for s in self.settings))
        self._users: LRUCache[str, tuple[TokenClaims, UserT]] | None = (
            LRUCache(size) if size else None
        )
        self._http_client = http_client
        self._identity_clients: dict[str, IdentityPoolClient] = {}
        self.aws_credentials: Dependency[AwsCredentials] = self._make_aws_credentials()
        """Dependency: identity-pool ``AwsCredentials`` for the caller (the pool picks the role)."""
        self.guest_identities: GuestIdentities | None = None
        """Where a visitor's guest identity id is kept (browser sessions set it); None:
        one guest identity for this process."""
        self.guest_credentials: Dependency[AwsCredentials] = self._make_guest_credentials()
        """Dependency: the identity pool's unauthenticated-role ``AwsCredentials``."""
        self._setup_revocation()
        self.sessions: BrowserSessions | None = sessions_for(
            self.settings, self.verifier, http_client, self.shared_store
        )
        """Browser sign-in (§13), when ``session_secret`` and the OAuth2 URL are set."""
        if self.sessions is not None:
            self.guest_identities = self.sessions.guest_identities

    def require_group(self, *groups: str, all: bool = False) -> Dependency[UserT]:
        """A dependency admitting users in any of ``groups`` (every one with ``all=True``)."""
        return self._guards.require_group(*groups, all=all)

    def require_scope(self, *scopes: str, all: bool = True) -> Dependency[UserT]:
        """A dependency admitting tokens with all of ``scopes`` (any one with ``all=False``)."""
        return self._guards.require_scope(*scopes, all=all)

    def require_any(
        self, groups: Iterable[str] = (), scopes: Iterable[str] = ()
    ) -> Dependency[UserT]:
        """A dependency admitting users in any of ``groups`` or tokens with any of
        ``scopes``: one route for people (groups) and machine clients (scopes)."""
        return self._guards.require_any(groups, scopes)

    def require_pool(self, *user_pool_ids: str) -> Dependency[UserT]:
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
            BrowserSessions(self.settings[0], verifier=self.verifier, store=self.shared_store)
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
            client = IdentityPoolClient(
                settings,
                verifier=verifier,
                http_client=self._http_client,
                store=self.shared_store,
            )
            client.verifier.revocation = self.revocations
            self.revocations.listeners.append(client.drop_revoked)
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
        """The caller's ID token for identity-pool exchanges: the browser session's
        when the request is authenticated by its session cookie, else the bearer when
        it is an ID token, else the ``X-Cognito-Id-Token`` header (the caller verifies
        it and checks it names the same user)."""
        context = session_context(conn.scope)
        session = context.session if context is not None and not context.explicit else None
        if session is not None and context is not None and context.token is not None:
            return session.id_token
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
                credentials = await client.guest_credentials(identity_id)
                if credentials.identity_id != identity_id:  # the pool forgot the kept one
                    await keeper.set(conn, credentials.identity_id)
                return credentials
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
        render as ``{detail, code}``, its OpenAPI scheme lists every scope routes need
        and the 401/403 answers, and Swagger UI signs in through the hosted UI when an
        OAuth URL (``domain`` or ``oauth_url``) is set.
        """
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
        if app.swagger_ui_init_oauth is None:
            app.swagger_ui_init_oauth = self.swagger_ui_init_oauth
        if not getattr(app.openapi, "_cognito_guard", False):
            app.openapi = self._openapi_for(app, app.openapi)  # type: ignore[method-assign]

    def _openapi_for(self, app: FastAPI, generate: Callable[[], dict[str, Any]]) -> Any:
        """Wrap the app's OpenAPI generation: describe this auth, put every scope a
        route requires into the OAuth2 flow and list guarded routes' 401/403."""

        def openapi() -> dict[str, Any]:
            if app.openapi_schema is not None:
                return app.openapi_schema
            describing = _openapi_auth.set(self)
            try:
                schema = generate()
            finally:
                _openapi_auth.reset(describing)
            _document_guarded_operations(schema)
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
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the verifier's and the identity clients' HTTP connections (and Redis)."""
        for client in self._identity_clients.values():
            await client.aclose()  # first: it may still be deleting revoked entries in Redis
        await self._stop_shared_state()
        if self.sessions is not None:
            await self.sessions.aclose()
        await self.verifier.aclose()

    @property
    def swagger_ui_init_oauth(self) -> dict[str, Any] | None:
        """Swagger UI's OAuth settings (code flow with PKCE) when an OAuth URL is set
        (``domain`` or ``oauth_url``); ``init_app`` applies them to the app."""
        if self._oauth is None:
            return None
        return {
            "clientId": self._oauth.client_ids[0],
            "usePkceWithAuthorizationCodeGrant": True,
            "scopes": " ".join(self._oauth.login_scopes),
        }

    def _openapi_scheme(self) -> tuple[str, SecurityBaseModel]:
        settings = self._oauth
        base = None if settings is None else settings.oauth_base_url
        if settings is None or base is None:
            return "CognitoBearer", HTTPBearerModel(bearerFormat="JWT")
        flow = OAuthFlowAuthorizationCode(
            authorizationUrl=f"{base}/oauth2/authorize",
            tokenUrl=f"{base}/oauth2/token",
            scopes={scope: scope for scope in settings.login_scopes},
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

    def request_token(self, conn: HTTPConnection) -> str | None:
        """The one place this auth reads a request's token (see ``connection_token``)."""
        return connection_token(conn.scope)

    async def request_user(self, scope: Scope, token: str) -> UserT:
        """The user this auth verified for ``token`` in this request, verifying it on
        first use. Every auth keeps its own entry: a token another auth (or the
        middleware's) accepted is still checked against this one's pools, clients,
        token use and user model. Raises ``CognitoGuardError``."""
        users = _request_auth(scope).users
        cached = users.get(self)
        if cached is not None and cached[0] == token:
            user: UserT = cached[1]  # type: ignore[assignment]  # stored by this auth
            return user
        user = await self.authenticate(token)
        users[self] = (token, user)
        return user

    async def _user_for(self, conn: HTTPConnection) -> UserT:
        """The request's user, verified once per request however many guards ask."""
        if offers_bearer_subprotocol(conn.scope) and isinstance(conn, WebSocket):
            conn._send = accepting_bearer_subprotocol(conn._send)
        token = self.request_token(conn)
        if token is None:
            error = session_error(conn.scope) or MissingTokenError("Not authenticated")
            raise self._http_error(error, conn)
        try:
            return await self.request_user(conn.scope, token)
        except CognitoGuardError as error:
            raise self._http_error(error, conn) from None

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

    # -- revocation, shared state and operations (DESIGN §14-16) ---------------

    def _setup_revocation(self) -> None:
        """Give every verifier the revocation list; with ``redis_url``, share it."""
        self.revocations = RevocationList(
            max(s.refresh_token_validity_seconds for s in self.settings)
        )
        """The revocation list (sessions and users) every verifier of this auth consults."""
        self.verifier.revocation = self.revocations
        redis = next(((s.redis_url, s.redis_prefix) for s in self.settings if s.redis_url), None)
        self._redis = RedisLink(*redis) if redis else None
        self._mirror = shared_revocations(self._redis, self.revocations) if self._redis else None
        self.shared_store: KeyValueStore | None = RedisStore(self._redis) if self._redis else None
        """Where shared caches live (Redis) when ``redis_url`` is set, else None."""
        if self.shared_store is not None:
            warn_unshared_credentials(self.settings)
        self._revoker = Revoker(
            self.settings,
            self.revocations,
            http_client=self._http_client,
            publish=self._mirror.publish if self._mirror else None,
        )

    async def start(self) -> None:
        """Start what runs beside requests: the Redis mirror of the revocation list
        (a full load, then pub/sub). ``lifespan`` calls it; call it yourself with
        ``init_app``. Redis being down delays nothing: the mirror retries."""
        if self._mirror is not None:
            await self._mirror.start()

    async def _stop_shared_state(self) -> None:
        await self._revoker.aclose()
        if self._mirror is not None:
            await self._mirror.stop()
        if self._redis is not None:
            await self._redis.aclose()

    async def sign_out(self, token: str, *, everywhere: bool = False) -> SignOutResult:
        """Sign the holder of ``token`` out: its session (``origin_jti``) is revoked,
        here at once and on the shared list; with ``everywhere`` the user is revoked
        too and Cognito's ``GlobalSignOut`` is called (when the token carries the
        ``aws.cognito.signin.user.admin`` scope). A Cognito failure is logged and
        reported in the result, not raised; an invalid token raises
        ``InvalidTokenError``."""
        user = await self.authenticate(token)
        return await self._revoker.sign_out(token, user, everywhere=everywhere)

    async def revoke_user(self, sub: str) -> None:
        """Reject every token of ``sub`` issued up to now (sign-ins from the next
        second on work), in every process sharing the list. For operators and admin
        routes, after their own ``AdminUserGlobalSignOut``. ``ValueError`` for a
        malformed ``sub``."""
        await self._revoker.revoke_user(sub)

    async def revoke_session(self, origin_jti: str) -> None:
        """Reject every token of one sign-in (its ``origin_jti``, refreshed tokens
        included), in every process sharing the list. ``ValueError`` when malformed."""
        await self._revoker.revoke_session(origin_jti)

    @cached_property
    def require_active_session(self) -> Dependency[UserT]:
        """Dependency for sensitive routes: the verified caller, whose session Cognito
        (``GetUser``) confirmed within ``revocation_check_seconds``. A session Cognito
        reports dead -> 401 ``revoked`` (and it joins the revocation list); Cognito
        unreachable -> 503. Tokens without the ``aws.cognito.signin.user.admin``
        scope cannot be asked about and rely on the revocation list alone."""

        async def active_session(
            conn: HTTPConnection,
            user: UserT = Security(self.current_user),
            token: str | None = Security(self.scheme),
        ) -> UserT:
            assert token is not None  # current_user answered 401 without one
            try:
                await self._revoker.check_session(token, user)
            except CognitoGuardError as error:
                raise self._http_error(error, conn) from None
            return user

        return active_session

    def ready(self) -> bool:
        """True when every user pool's signing keys are usable: for ``/ready`` routes and
        Kubernetes readiness probes. A pool without keys gets a background fetch, so a
        probe that found it unready finds it ready once the keys arrive. Redis is not a
        condition: verification works without it."""
        usable = self.verifier.keys_usable()
        if not all(usable.values()):
            self.verifier.prefetch_missing()
        return all(usable.values())

    def health(self) -> dict[str, Any]:
        """Each part's state, for operators: keys per pool, Redis, identity pools and
        the revocation list's size. Never contains a token or a secret."""
        keys = {
            pool_id: {"usable": usable} for pool_id, usable in self.verifier.keys_usable().items()
        }
        redis: dict[str, Any] = {"configured": self._mirror is not None}
        if self._mirror is not None:
            redis.update(self._mirror.status())
        identity = {
            s.user_pool_id: {
                "configured": bool(s.identity_pool_id),
                "active": s.user_pool_id in self._identity_clients,
            }
            for s in self.settings
        }
        ok = all(pool["usable"] for pool in keys.values())
        return {
            "status": "ok" if ok and redis.get("connected", True) else "degraded",
            "keys": keys,
            "redis": redis,
            "identity_pools": identity,
            "revocations": len(self.revocations),
        }


# -- module-level dependencies: the app's CognitoAuth, or one from the environment --

_openapi_auth: ContextVar[CognitoAuth[Any] | None] = ContextVar("_openapi_auth", default=None)
_from_env: CognitoAuth[Any] | None = None
_unregistered_apps_logged: weakref.WeakSet[Any] = weakref.WeakSet()


def _env_auth() -> CognitoAuth[Any] | ValidationError:
    """The ``CognitoAuth`` the ``COGNITO_*`` environment describes (built once), or
    why the environment describes none."""
    global _from_env
    if _from_env is None:
        try:
            _from_env = CognitoAuth()
        except ValidationError as exc:
            return exc
    return _from_env


def _auth_of(conn: HTTPConnection) -> CognitoAuth[CognitoUser]:
    """The ``CognitoAuth`` of the app handling the request, else the environment's.
    Never another app's: without either, a 500 and one log line naming the fix."""
    app = conn.scope.get("app")
    auth = getattr(getattr(app, "state", None), "cognito_auth", None)
    if isinstance(auth, CognitoAuth):
        return auth
    found = _env_auth()
    if isinstance(found, CognitoAuth):
        return found
    _log_unregistered(app, found)
    if conn.scope["type"] == "websocket":
        raise WebSocketException(WS_INTERNAL_ERROR, reason="authentication is not configured")
    raise HTTPException(500, "authentication is not configured")


def _log_unregistered(app: Any, error: ValidationError) -> None:
    """Say once per app why its module-level dependencies have no ``CognitoAuth``."""
    try:
        if app in _unregistered_apps_logged:
            return
        _unregistered_apps_logged.add(app)
    except TypeError:  # not weak-referenceable: log every time rather than never
        pass
    lifespan = getattr(getattr(app, "router", None), "lifespan_context", None)
    hint = (
        "its lifespan (auth.lifespan) has not run: a mounted sub-app's never does, nor "
        "TestClient's outside a `with` block"
        if isinstance(getattr(lifespan, "__self__", None), CognitoAuth)
        else "no CognitoAuth is registered on it"
    )
    unset = ", ".join(
        sorted({f"COGNITO_{str(e['loc'][0]).upper()}" for e in error.errors() if e["loc"]})
    )
    logger.error(
        "module-level Cognito dependency on %s: %s and the COGNITO_* environment is "
        "unusable (missing or invalid: %s); call auth.init_app(app) on this app, or set "
        "the COGNITO_* variables",
        type(app).__name__,
        hint,
        unset or "COGNITO_*",
    )


def _described_scheme() -> tuple[str, SecurityBaseModel]:
    """The scheme of the auth whose app is generating OpenAPI, else the environment's,
    else plain HTTP bearer."""
    auth = _openapi_auth.get()
    if auth is None:
        found = _env_auth()
        if not isinstance(found, CognitoAuth):
            return "CognitoBearer", HTTPBearerModel(bearerFormat="JWT")
        auth = found
    return auth._openapi_scheme()


_module_guards: _Guards[CognitoUser] = _Guards(_BearerScheme(_described_scheme), _auth_of)

current_user = _module_guards.current_user
optional_user = _module_guards.optional_user
login_required = _module_guards.login_required
require_group = _module_guards.require_group
require_scope = _module_guards.require_scope
require_any = _module_guards.require_any
require_pool = _module_guards.require_pool

CurrentUser = Annotated[CognitoUser, Depends(current_user)]
"""The verified caller: ``async def me(user: CurrentUser)``."""
OptionalUser = Annotated[CognitoUser | None, Depends(optional_user)]
"""The verified caller, or None when the request carried no token."""
