"""Identity-pool credentials for the routes (DESIGN §9): ``auth.aws_credentials``,
``auth.aws_credentials_for(...)`` and ``auth.guest_credentials``.

One ``IdentityPoolClient`` per user pool with an identity pool, created on first use,
sharing the auth's revocation list (a revoked user's cached credentials are dropped)
and, with Redis, its shared store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import httpx
from fastapi import Header, Security
from starlette.requests import HTTPConnection

from .. import telemetry
from ..claims import CognitoUser, IdTokenClaims
from ..errors import (
    CognitoGuardError,
    CredentialsDeniedError,
    IdentityPoolConfigError,
    MissingTokenError,
)
from ..guard_spec import GuardSpec, described, spec_of
from ..identity import (
    AwsCredentials,
    IdentityPoolClient,
    check_groups_to_roles,
    check_role_arn,
    warn_unshared_credentials,
)
from ..sessions.context import session_context
from ..settings import CognitoSettings
from ..verifier import CognitoVerifier
from .authenticator import Authenticator
from .dependencies import Dependency
from .shared_state import SharedState
from .tokens import connection_token

__all__ = ["GuestIdentities", "IdTokenOf", "IdentityPools", "caller_id_token"]

logger = logging.getLogger(__name__)


class GuestIdentities(Protocol):
    """Keeps a visitor's guest identity id between requests (e.g. in the browser
    session), so ``auth.guest_credentials`` gives one visitor one identity."""

    async def get(self, conn: HTTPConnection) -> str | None:
        """The guest identity id kept for this visitor, if any."""
        ...

    async def set(self, conn: HTTPConnection, identity_id: str) -> None:
        """Keep ``identity_id`` for this visitor."""
        ...


IdTokenOf = Callable[[HTTPConnection, CognitoUser], str]
"""Finds the caller's ID token for an exchange (``CognitoAuth.caller_id_token``)."""


def caller_id_token(conn: HTTPConnection, user: CognitoUser) -> str:
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


class IdentityPools:
    """The identity-pool clients of one auth and the dependencies that use them."""

    def __init__(
        self,
        settings: Sequence[CognitoSettings],
        verifier: CognitoVerifier,
        shared: SharedState,
        authenticator: Authenticator[Any],
        *,
        current_user: Dependency[Any],
        id_token_of: IdTokenOf = caller_id_token,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self._settings = settings
        self._verifier = verifier
        self._shared = shared
        self._authenticator = authenticator
        self._current_user = current_user
        self._id_token_of = id_token_of
        self._http_client = http_client
        self.clients: dict[str, IdentityPoolClient] = {}
        self._unconfigured_logged: set[str] = set()
        """The identity-pool client of each user pool that has used one."""
        self.guest_identities: GuestIdentities | None = None
        """Where a visitor's guest identity id is kept (browser sessions set it); None:
        one guest identity for this process."""
        if shared.store is not None:
            warn_unshared_credentials(settings)

    def client(self, user_pool_id: str) -> IdentityPoolClient:
        """The identity-pool client for a configured user pool with ``identity_pool_id``."""
        client = self.clients.get(user_pool_id)
        if client is None:
            settings = next(s for s in self._settings if s.user_pool_id == user_pool_id)
            if not settings.identity_pool_id:
                if user_pool_id not in self._unconfigured_logged:  # once per pool
                    self._unconfigured_logged.add(user_pool_id)
                    logger.error(
                        "aws_credentials used but COGNITO_IDENTITY_POOL_ID is not set for "
                        "user pool %s",
                        user_pool_id,
                        extra=telemetry.log_extra("identity_pool_misconfigured", user_pool_id),
                    )
                raise IdentityPoolConfigError(
                    "no identity pool is configured (COGNITO_IDENTITY_POOL_ID)"
                )
            verifier = (
                self._verifier if settings.token_use == "id" and len(self._settings) == 1 else None
            )
            client = IdentityPoolClient(
                settings,
                verifier=verifier,
                http_client=self._http_client,
                store=self._shared.store,
            )
            revocations = self._shared.revocations
            client.verifier.revocation = revocations
            revocations.listeners.append(client.drop_revoked)
            self.clients[user_pool_id] = client
        return client

    def credentials_for(
        self, role_arn: str | None = None, *, groups_to_roles: Mapping[str, str] | None = None
    ) -> Dependency[AwsCredentials]:
        """The dependency behind ``auth.aws_credentials_for`` (arguments checked here)."""
        if role_arn is not None and groups_to_roles is not None:
            raise ValueError("give role_arn or groups_to_roles, not both")
        if role_arn is not None:
            check_role_arn(role_arn)
        mapping = check_groups_to_roles(groups_to_roles) if groups_to_roles is not None else None

        async def aws_credentials(
            conn: HTTPConnection,
            user: CognitoUser = Security(self._current_user),
            id_token_header: str | None = Header(None, alias="X-Cognito-Id-Token"),
        ) -> AwsCredentials:
            """Identity-pool credentials for the caller: the bearer when it is an ID
            token, else the ``X-Cognito-Id-Token`` header (same user, same pool).
            The header is declared here for OpenAPI; ``id_token_of`` reads it."""
            return await self.credentials_of(conn, user, role_arn=role_arn, groups_to_roles=mapping)

        return described(aws_credentials, GuardSpec(credentials=True, auth=self._owner()))

    async def credentials_of(
        self,
        conn: HTTPConnection,
        user: CognitoUser,
        *,
        role_arn: str | None = None,
        groups_to_roles: Mapping[str, str] | None = None,
    ) -> AwsCredentials:
        """Credentials for ``user`` (the verified caller of ``conn``); errors are raised
        as the route's HTTP error (or a 1008 close on a WebSocket)."""
        try:
            client = self.client(user.user_pool_id)
            id_token = self._id_token_of(conn, user)
            claims = await client.verifier.verify(id_token)
            if not isinstance(claims, IdTokenClaims) or claims.sub != user.sub:
                raise CredentialsDeniedError("the ID token is not the caller's")
            return await client.credentials_for_claims(
                id_token, claims, role_arn, groups_to_roles=groups_to_roles
            )
        except CognitoGuardError as error:
            raise self._authenticator.http_error(error, conn) from None

    def guest_credentials(self) -> Dependency[AwsCredentials]:
        """The dependency behind ``auth.guest_credentials``."""

        async def guest_credentials(conn: HTTPConnection) -> AwsCredentials:
            """Unauthenticated-role credentials; any token sent is ignored."""
            try:
                client = self.client(self._guest_pool_id())
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
                raise self._authenticator.http_error(error, conn) from None

        spec = GuardSpec(requires_user=False, credentials=True, auth=self._owner())
        return described(guest_credentials, spec)

    def _owner(self) -> Any:
        """The ``CognitoAuth`` these dependencies belong to (its ``current_user`` says)."""
        spec = spec_of(self._current_user)
        return spec.auth if spec is not None else None

    def _guest_pool_id(self) -> str:
        """The user pool whose identity pool serves guests: the first with one."""
        pool = next((s.user_pool_id for s in self._settings if s.identity_pool_id), None)
        return pool if pool is not None else self._settings[0].user_pool_id

    def status(self) -> dict[str, dict[str, bool]]:
        """Each user pool's identity pool for ``health()``: configured, and in use."""
        return {
            s.user_pool_id: {
                "configured": bool(s.identity_pool_id),
                "active": s.user_pool_id in self.clients,
            }
            for s in self._settings
        }

    async def aclose(self) -> None:
        """Close the clients (first: they may still be deleting revoked entries in Redis)."""
        for client in self.clients.values():
            await client.aclose()
