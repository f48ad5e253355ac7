"""Sign-out and session checks for the routes (DESIGN §14): the revoker of one auth.

``SignOut`` revokes sessions and users in the auth's revocation list (shared through
Redis when configured), calls Cognito's ``GlobalSignOut`` for ``everywhere``, and gives
the ``require_active_session`` dependency that asks Cognito (``GetUser``) whether a
session is still alive.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Generic

import httpx
from fastapi import Security
from starlette.requests import HTTPConnection

from ..errors import CognitoGuardError
from ..guard_spec import GuardSpec, described, spec_of
from ..revocation import Revoker, SignOutResult
from ..settings import CognitoSettings
from .authenticator import Authenticator, UserT
from .dependencies import Dependency
from .openapi import BearerScheme
from .shared_state import SharedState
from .tokens import connection_token

__all__ = ["SignOut"]


class SignOut(Generic[UserT]):
    """Revokes the sessions and users of one auth, and checks sessions with Cognito."""

    def __init__(
        self,
        settings: Sequence[CognitoSettings],
        shared: SharedState,
        authenticator: Authenticator[UserT],
        *,
        current_user: Dependency[UserT],
        scheme: BearerScheme,
        http_client: httpx.AsyncClient | None,
    ) -> None:
        self._authenticator = authenticator
        self._current_user = current_user
        self._scheme = scheme
        self.revoker = Revoker(
            settings,
            shared.revocations,
            http_client=http_client,
            publish=shared.mirror.publish if shared.mirror is not None else None,
        )

    async def sign_out(self, token: str, *, everywhere: bool = False) -> SignOutResult:
        """Sign the holder of ``token`` out (see ``CognitoAuth.sign_out``)."""
        user = await self._authenticator.authenticate(token)
        return await self.revoker.sign_out(token, user, everywhere=everywhere)

    async def sign_out_caller(self, conn: HTTPConnection, *, everywhere: bool) -> SignOutResult:
        """Sign out the caller of ``conn`` by its bearer token: the route's 401 unless
        the token is valid."""
        user = await self._authenticator.user_for(conn)
        token = connection_token(conn.scope)
        assert token is not None  # user_for answered 401 without one
        return await self.revoker.sign_out(token, user, everywhere=everywhere)

    async def revoke_user(self, sub: str) -> None:
        """Reject every token of ``sub`` issued up to now, in every process sharing the list."""
        await self.revoker.revoke_user(sub)

    async def revoke_session(self, origin_jti: str) -> None:
        """Reject every token of one sign-in, in every process sharing the list."""
        await self.revoker.revoke_session(origin_jti)

    @cached_property
    def require_active_session(self) -> Dependency[UserT]:
        """The dependency asking Cognito whether the caller's session is alive."""
        authenticator = self._authenticator

        async def active_session(
            conn: HTTPConnection,
            user: UserT = Security(self._current_user),
            token: str | None = Security(self._scheme),
        ) -> UserT:
            assert token is not None  # current_user answered 401 without one
            try:
                await self.revoker.check_session(token, user)
            except CognitoGuardError as error:
                raise authenticator.http_error(error, conn) from None
            return user

        owner = spec_of(self._current_user)
        spec = GuardSpec(active_session=True, auth=owner.auth if owner else None)
        return described(active_session, spec)

    async def aclose(self) -> None:
        """Close the HTTP client the revoker created."""
        await self.revoker.aclose()
