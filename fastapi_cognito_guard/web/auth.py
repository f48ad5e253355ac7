"""``CognitoAuth``: the composition root of the FastAPI layer.

It builds one auth's parts — the verifier, the ``Authenticator`` every guard asks,
the guards, the shared state (revocation list, Redis), sign-out, identity pools,
browser sessions and readiness — and hands out their dependencies. The logic lives
in the parts; this class only wires them and registers itself on apps.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, Generic

import httpx
from fastapi import FastAPI
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from starlette.requests import HTTPConnection
from starlette.types import Scope

from .. import telemetry
from ..claims import CognitoUser
from ..errors import KeysUnavailableError
from ..identity import AwsCredentials, IdentityPoolClient
from ..revocation import RevocationList, SignOutResult
from ..sessions.manager import BrowserSessions, sessions_for
from ..sessions.middleware import SessionMiddleware
from ..sessions.routes import login_router
from ..settings import CognitoSettings
from ..stores import KeyValueStore
from ..verifier import CognitoVerifier
from .authenticator import Authenticator, UserT
from .dependencies import Dependency, Guards
from .identity_pools import GuestIdentities, IdentityPools, caller_id_token
from .openapi import BearerScheme, openapi_scheme, swagger_ui_init_oauth, wrap_openapi
from .protected_resource import ProtectedResource
from .readiness import Readiness
from .responses import install_error_handlers
from .shared_state import SharedState
from .sign_out import SignOut
from .step_up import step_up_guard
from .wiring import WiringCheck, check_wiring

if TYPE_CHECKING:
    from fastapi import APIRouter

__all__ = ["CognitoAuth", "environment_auth"]

logger = logging.getLogger(__name__)

_environment_auth: CognitoAuth[Any] | None = None


def environment_auth() -> CognitoAuth[Any] | None:
    """The process's auth built from the ``COGNITO_*`` environment (``CognitoAuth()``
    without settings; the most recent one), if any."""
    return _environment_auth


class CognitoAuth(Generic[UserT]):
    """Cognito authentication for a FastAPI app: dependencies, OpenAPI and lifespan.

    ``CognitoAuth()`` reads the ``COGNITO_*`` environment and is the process's
    environment auth: the module-level dependencies of an app without a registration
    use it (so an app that forgot its lifespan still has one revocation list, one
    session store and one error format). Pass settings (or a list of them, one per
    user pool) to configure it in code, and ``user_model`` to receive a
    ``CognitoUser`` subclass from the dependencies.
    """

    __cognito_auth__ = True  # what an app's registration is, for the route map

    def __init__(
        self,
        settings: CognitoSettings | Sequence[CognitoSettings] | None = None,
        *,
        # A TypeVar default's value: the ignore holds (unused-ignore) once mypy accepts it.
        user_model: type[UserT] = CognitoUser,  # type: ignore[assignment, unused-ignore]
        http_client: httpx.AsyncClient | None = None,
        realm: str = "api",
    ) -> None:
        self.verifier = CognitoVerifier(
            settings if settings is not None else CognitoSettings(), http_client=http_client
        )
        self.settings = self.verifier.settings
        self.user_model = user_model
        self.realm = realm
        self.authenticator = Authenticator(self.verifier, user_model, realm)
        """Verifies a request's token for this auth (every guard asks it)."""
        self._oauth = next((s for s in self.settings if s.oauth_base_url), None)
        self.scheme = BearerScheme(self._openapi_scheme)
        self._guards: Guards[UserT] = Guards(
            self.scheme, lambda conn: self.authenticator, owner=self
        )
        self.current_user: Dependency[UserT] = self._guards.current_user
        """Dependency: the verified caller (401 without a valid token)."""
        self.optional_user: Dependency[UserT | None] = self._guards.optional_user
        """Dependency: the verified caller, or None when no token was sent."""
        self.login_required: Dependency[UserT] = self._guards.login_required
        """Dependency: ``current_user`` that redirects signed-out browser navigations to
        ``/auth/login?next=...`` (other requests get the 401)."""

        self.shared = SharedState(self.settings)
        """The revocation list and, with ``redis_url``, its Redis mirror and shared store."""
        self.revocations: RevocationList = self.shared.revocations
        """The revocation list (sessions and users) every verifier of this auth consults."""
        self.shared_store: KeyValueStore | None = self.shared.store
        """Where shared caches live (Redis) when ``redis_url`` is set, else None."""
        self.verifier.revocation = self.revocations
        self.signing_out: SignOut[UserT] = SignOut(
            self.settings,
            self.shared,
            self.authenticator,
            current_user=self.current_user,
            scheme=self.scheme,
            http_client=http_client,
        )
        """Revokes sessions and users; checks sessions with Cognito (§14)."""
        self.identity_pools = IdentityPools(
            self.settings,
            self.verifier,
            self.shared,
            self.authenticator,
            current_user=self.current_user,
            id_token_of=self.caller_id_token,
            http_client=http_client,
        )
        """Identity-pool clients and the credential dependencies (§9)."""
        self.aws_credentials: Dependency[AwsCredentials] = self.identity_pools.credentials_for()
        """Dependency: identity-pool ``AwsCredentials`` for the caller (the pool picks the role)."""
        self.guest_credentials: Dependency[AwsCredentials] = self.identity_pools.guest_credentials()
        """Dependency: the identity pool's unauthenticated-role ``AwsCredentials``."""
        self.sessions = sessions_for(
            self.settings,
            self.verifier,
            http_client,
            self.shared_store,
            revoker=self.signing_out.revoker,
        )
        if self.sessions is not None:
            self.guest_identities = self.sessions.guest_identities
        self.readiness = Readiness(
            self.verifier, self.shared, self.identity_pools, self.signing_out
        )
        """Answers ``ready()`` and ``health()``."""
        self.protected_resource: ProtectedResource | None = None
        """RFC 9728 metadata, once ``protected_resource_router()`` was called."""
        if settings is None:
            global _environment_auth
            _environment_auth = self

    @property
    def sessions(self) -> BrowserSessions | None:
        """Browser sign-in (§13), when ``session_secret`` and the OAuth2 URL are set.
        Sign-out holds them (it ends sessions through their own tokens), so replacing
        them here replaces them there too."""
        return self.signing_out.sessions

    @sessions.setter
    def sessions(self, sessions: BrowserSessions | None) -> None:
        self.signing_out.sessions = sessions

    # -- guards ------------------------------------------------------------------

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

    def require_auth(
        self, *, max_age: int | None = None, acr: Sequence[str] = (), amr: Sequence[str] = ()
    ) -> Dependency[UserT]:
        """A dependency admitting callers whose sign-in is at most ``max_age`` seconds
        old, at one of the ``acr`` levels and by one of the ``amr`` methods (RFC 9470
        step-up): otherwise 401 ``insufficient_user_authentication``, and a session's
        browser navigation is sent to sign in again with ``max_age`` / ``acr_values``."""
        return step_up_guard(
            self.current_user, self._guards.resolve, max_age=max_age, acr=acr, amr=amr
        )

    def require_pool(self, *user_pool_ids: str) -> Dependency[UserT]:
        """A dependency admitting only tokens signed by the given user pools."""
        unknown = set(user_pool_ids) - {s.user_pool_id for s in self.settings}
        if unknown:
            raise ValueError(f"require_pool names unconfigured user pools: {sorted(unknown)}")
        return self._guards.require_pool(*user_pool_ids)

    @property
    def require_active_session(self) -> Dependency[UserT]:
        """Dependency for sensitive routes: the verified caller, whose session Cognito
        (``GetUser``) confirmed within ``revocation_check_seconds``. A browser session
        is asked about with its own access token, whatever ``token_use``. A session
        Cognito reports dead -> 401 ``revoked`` (and it joins the revocation list);
        Cognito unreachable -> 503. Tokens without the ``aws.cognito.signin.user.admin``
        scope cannot be asked about and rely on the revocation list alone (counted in
        ``health()``, logged once; a start-up warning names ``COGNITO_LOGIN_SCOPES``
        when browser sign-in does not ask for that scope)."""
        return self.signing_out.require_active_session

    # -- verification --------------------------------------------------------------

    async def authenticate(self, token: str) -> UserT:
        """Verify a token and build the user; raises ``CognitoGuardError`` on failure."""
        return await self.authenticator.authenticate(token)

    def request_token(self, conn: HTTPConnection) -> str | None:
        """The one place this auth reads a request's token (see ``connection_token``)."""
        return self.authenticator.request_token(conn)

    async def request_user(self, scope: Scope, token: str) -> UserT:
        """The user this auth verified for ``token`` in this request, verifying it on
        first use. Every auth keeps its own entry: a token another auth (or the
        middleware's) accepted is still checked against this one's pools, clients,
        token use and user model. Raises ``CognitoGuardError``."""
        return await self.authenticator.request_user(scope, token)

    # -- sign-out and revocation (§14) -----------------------------------------------

    async def sign_out(self, token: str, *, everywhere: bool = False) -> SignOutResult:
        """Sign the holder of ``token`` out: its sign-in is revoked (its ``origin_jti``,
        else its sign-in key ``sub:auth_time``, else its user), here at once and on
        the shared list; with ``everywhere`` the user is revoked too and Cognito's
        ``GlobalSignOut`` is called (when ``token`` is an access token carrying the
        ``aws.cognito.signin.user.admin`` scope). The result says what was revoked and
        whether Cognito was told; a Cognito failure is logged and reported there, not
        raised. A token this auth does not verify raises ``InvalidTokenError``."""
        return await self.signing_out.sign_out(token, everywhere=everywhere)

    async def sign_out_caller(
        self, conn: HTTPConnection, *, everywhere: bool = False
    ) -> SignOutResult:
        """Sign out whoever the request is authenticated as: its browser session (through
        the session's own tokens; the cookie is cleared on the response and the refresh
        token revoked) or its bearer token. Raises the route's HTTP error: 401 without
        valid credentials, 403 ``csrf_rejected``, 503 while the session cannot be read."""
        return await self.signing_out.sign_out_caller(conn, everywhere=everywhere)

    async def revoke_user(self, sub: str) -> None:
        """Reject every token of ``sub`` issued up to now (sign-ins from the next
        second on work), in every process sharing the list. For operators and admin
        routes, after their own ``AdminUserGlobalSignOut``. ``ValueError`` for a
        malformed ``sub``."""
        await self.signing_out.revoke_user(sub)

    async def revoke_session(self, origin_jti: str) -> None:
        """Reject every token of one sign-in (its ``origin_jti``, refreshed tokens
        included), in every process sharing the list. ``ValueError`` when malformed."""
        await self.signing_out.revoke_session(origin_jti)

    # -- browser sign-in (§13) ---------------------------------------------------------

    def login_router(self, *, prefix: str = "/auth") -> APIRouter:
        """The browser sign-in routes: ``GET {prefix}/login?next=``, ``GET
        {prefix}/callback`` and ``GET``/``POST {prefix}/logout[?everywhere=true]``.

        Raises ``ValueError`` naming the missing settings when ``session_secret``
        or the OAuth2 URL (``domain`` / ``oauth_url``) is not configured.
        """
        if self.sessions is None:  # BrowserSessions raises, naming what is missing
            BrowserSessions(self.settings[0], verifier=self.verifier, store=self.shared_store)
        assert self.sessions is not None
        self.signing_out.warn_about_login_scopes("the login router")
        return login_router(self.sessions, self.signing_out, prefix)

    def protected_resource_router(self) -> APIRouter:
        """Serves RFC 9728 protected-resource metadata at
        ``/.well-known/oauth-protected-resource`` (followed by the resource's path),
        and from then on this auth's 401 challenges carry ``resource_metadata``."""
        if self.protected_resource is None:
            self.protected_resource = ProtectedResource(self.settings)
            self.authenticator.resource_metadata = self.protected_resource.metadata_url
        return self.protected_resource.router()

    # -- identity pools (§9) -------------------------------------------------------------

    @property
    def guest_identities(self) -> GuestIdentities | None:
        """Where a visitor's guest identity id is kept (browser sessions set it); None:
        one guest identity for this process."""
        return self.identity_pools.guest_identities

    @guest_identities.setter
    def guest_identities(self, keeper: GuestIdentities | None) -> None:
        self.identity_pools.guest_identities = keeper

    def identity_client(self, user_pool_id: str) -> IdentityPoolClient:
        """The identity-pool client for a configured user pool with ``identity_pool_id``."""
        return self.identity_pools.client(user_pool_id)

    def aws_credentials_for(
        self, role_arn: str | None = None, *, groups_to_roles: Mapping[str, str] | None = None
    ) -> Dependency[AwsCredentials]:
        """A dependency giving the caller identity-pool ``AwsCredentials`` for a role.

        ``role_arn`` names the role; ``groups_to_roles`` maps groups to roles and picks
        the first listed group the user is in (403 when none). Either way the role
        must be one of the token's ``cognito:roles`` (403 ``credentials_denied``
        otherwise, before any call to AWS). Bad arguments are a ``ValueError`` here.
        """
        return self.identity_pools.credentials_for(role_arn, groups_to_roles=groups_to_roles)

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
        return await self.identity_pools.credentials_of(
            conn, user, role_arn=role_arn, groups_to_roles=groups_to_roles
        )

    def caller_id_token(self, conn: HTTPConnection, user: CognitoUser) -> str:
        """The caller's ID token for identity-pool exchanges: the browser session's
        when the request is authenticated by its session cookie, else the bearer when
        it is an ID token, else the ``X-Cognito-Id-Token`` header. Override it to
        supply the ID token another way."""
        return caller_id_token(conn, user)

    # -- operations (§16) ------------------------------------------------------------------

    def ready(self) -> bool:
        """True when every user pool's signing keys are usable: for ``/ready`` routes and
        Kubernetes readiness probes. Redis is not a condition."""
        return self.readiness.ready()

    def health(self) -> dict[str, Any]:
        """Each part's state, for operators: keys per pool, Redis, identity pools and
        the revocation list's size. Never contains a token or a secret."""
        return self.readiness.health()

    # -- app wiring -------------------------------------------------------------------------

    def init_app(self, app: FastAPI) -> None:
        """Make this the app's ``CognitoAuth``: module-level dependencies use it, errors
        render as ``{detail, code}``, its OpenAPI scheme lists every scope routes need
        and the 401/403 answers, and Swagger UI signs in through the hosted UI when an
        OAuth URL (``domain`` or ``oauth_url``) is set. Before the app serves (at its
        lifespan's start-up, else before its first request) every app mounted below it
        that uses module-level dependencies without a registration of its own is
        refused (``UnregisteredAppError``, naming ``init_app``).
        """
        app.state.cognito_auth = self
        install_error_handlers(app)
        # Starlette copies exception handlers when it builds its middleware stack,
        # which happens before the lifespan runs; have it rebuilt before any request.
        app.middleware_stack = None
        installed = [getattr(entry, "cls", None) for entry in app.user_middleware]
        if self.sessions is not None and SessionMiddleware not in installed:
            app.add_middleware(SessionMiddleware, sessions=self.sessions)
        if WiringCheck not in installed:  # mounted apps without a registration (§7)
            app.add_middleware(WiringCheck, owner=app)
        if app.swagger_ui_init_oauth is None:
            app.swagger_ui_init_oauth = self.swagger_ui_init_oauth
        app.openapi = wrap_openapi(app, app.openapi, self._openapi_scheme)  # type: ignore[method-assign, unused-ignore]

    @property
    def swagger_ui_init_oauth(self) -> dict[str, Any] | None:
        """Swagger UI's OAuth settings (code flow with PKCE) when an OAuth URL is set
        (``domain`` or ``oauth_url``); ``init_app`` applies them to the app."""
        return swagger_ui_init_oauth(self._oauth)

    def _openapi_scheme(self) -> tuple[str, SecurityBaseModel]:
        return openapi_scheme(self._oauth)

    async def start(self) -> None:
        """Start what runs beside requests: the Redis mirror of the revocation list
        (a full load, then pub/sub). ``lifespan`` calls it; call it yourself with
        ``init_app``. Redis being down delays nothing: the mirror retries."""
        await self.shared.start()

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        """Register with the app, refuse mounted apps that would fall back to the
        environment's auth (``UnregisteredAppError``, naming ``init_app``), prefetch
        signing keys, and close the HTTP client at exit."""
        self.init_app(app)
        check_wiring(app)
        try:
            await self.verifier.hydrate()
        except KeysUnavailableError as exc:
            logger.warning(
                "signing keys not prefetched (%s); requests will retry",
                exc.message,
                extra=telemetry.log_extra(exc.code),
            )
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the verifier's and the identity clients' HTTP connections (and Redis)."""
        await self.identity_pools.aclose()
        await self.signing_out.aclose()
        await self.shared.aclose()
        if self.sessions is not None:
            await self.sessions.aclose()
        await self.verifier.aclose()
