"""Sign-out and session checks for the routes (DESIGN §13, §14): the revoker of one auth.

``SignOut`` signs out a bearer token, a browser session or whichever of the two a
request carries, and gives the ``require_active_session`` dependency that asks
Cognito (``GetUser``) whether a session is still alive. A browser session is always
handled through its own tokens (its access token was verified at sign-in or refresh),
whatever the app's ``token_use``: an ID-token app has no access token in the request,
and an expired one must still be revocable. A sign-out either leaves an entry in the
revocation list or raises: there is no path that answers as if it had worked.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cached_property
from typing import Any, Generic

import httpx
from fastapi import Security
from starlette.requests import HTTPConnection

from ..claims import TokenClaims
from ..errors import CognitoGuardError, CsrfRejectedError, ServiceUnavailableError
from ..guard_spec import GuardSpec, described, spec_of
from ..revocation import Revoker, SignOutResult, trusted_claims
from ..sessions.context import SessionContext, session_context
from ..sessions.manager import BrowserSessions
from ..settings import CognitoSettings
from .authenticator import Authenticator, UserT
from .dependencies import Dependency
from .openapi import BearerScheme
from .shared_state import SharedState

__all__ = ["SignOut"]

logger = logging.getLogger(__name__)


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
        self.sessions: BrowserSessions | None = None
        """The auth's browser sessions, set once they exist (they are built after this
        part: sign-in needs the revocation list)."""
        self.revoker = Revoker(
            settings,
            shared.revocations,
            http_client=http_client,
            publish=shared.mirror.publish if shared.mirror is not None else None,
        )

    def status(self) -> dict[str, Any]:
        """For ``health()``: session checks that could not ask Cognito (no admin scope)."""
        return {"unchecked": self.revoker.unchecked_sessions}

    def warn_about_login_scopes(self, use: str) -> None:
        """One start-up warning when browser sign-in cannot produce the admin scope
        that ``use`` needs (only apps with browser sign-in have login scopes)."""
        if self.sessions is not None:
            self.revoker.warn_about_login_scopes(use)

    # -- sign-out ----------------------------------------------------------------------

    async def sign_out(self, token: str, *, everywhere: bool = False) -> SignOutResult:
        """Sign the holder of a bearer ``token`` out (see ``CognitoAuth.sign_out``);
        ``InvalidTokenError`` unless this auth verifies it."""
        claims = await self._authenticator.verifier.verify(token)
        return await self.revoker.sign_out(claims, token, everywhere=everywhere)

    async def sign_out_session(
        self, context: SessionContext, *, everywhere: bool = False
    ) -> SignOutResult | None:
        """End the browser session of a request: revoke its sign-in (with
        ``everywhere``: its user, telling Cognito), revoke its refresh token and clear
        its cookie; its session id joins the revocation list too. None when nothing
        was signed in, or when the session cannot be read now (its store unreachable):
        then it is revoked by its id alone, here at once and on every worker once
        Redis takes the entry, and its tokens are ended when it is next seen. Signing
        out ``everywhere`` needs the session's tokens: while they cannot be read that
        raises the store's ``ServiceUnavailableError`` and the cookie stays."""
        session = context.session
        sessions = self.sessions
        if session is None or sessions is None:
            if sessions is None or context.sid is None:
                return None
            if everywhere and isinstance(context.error, ServiceUnavailableError):
                raise context.error
            await sessions.end(context)
            return None
        result = await self.revoker.sign_out_session(
            session.access_token,
            sub=session.sub,
            user_pool_id=sessions.settings.user_pool_id,
            everywhere=everywhere,
        )
        if session.refresh_token is not None and not result.cognito_told:
            # after the list, which never waits on Cognito; GlobalSignOut ended it already
            await sessions.oauth.revoke(session.refresh_token)
        await sessions.end(context)
        return result

    async def sign_out_caller(
        self, conn: HTTPConnection, *, everywhere: bool = False
    ) -> SignOutResult:
        """Sign out whoever ``conn`` is authenticated as: its browser session (cookie,
        origin-checked like any cookie request), else its bearer token. Raises the
        route's HTTP error (401 without valid credentials, 403 ``csrf_rejected``, 503
        while the session cannot be read)."""
        context = session_context(conn.scope)
        http_error = self._authenticator.http_error
        if context is not None and not context.explicit:
            if isinstance(context.error, CsrfRejectedError):
                raise http_error(context.error, conn)
            try:
                result = await self.sign_out_session(context, everywhere=everywhere)
            except CognitoGuardError as error:
                raise http_error(error, conn) from None
            if result is not None:
                return result
        await self._authenticator.user_for(conn)  # the route's 401 unless a valid token
        token = self._authenticator.request_token(conn)
        assert token is not None  # user_for answered 401 without one
        try:
            return await self.sign_out(token, everywhere=everywhere)
        except CognitoGuardError as error:
            raise http_error(error, conn) from None

    async def revoke_user(self, sub: str) -> None:
        """Reject every token of ``sub`` issued up to now, in every process sharing the list."""
        await self.revoker.revoke_user(sub)

    async def revoke_session(self, origin_jti: str) -> None:
        """Reject every token of one sign-in, in every process sharing the list."""
        await self.revoker.revoke_session(origin_jti)

    # -- the active-session check ----------------------------------------------------------

    @cached_property
    def require_active_session(self) -> Dependency[UserT]:
        """The dependency asking Cognito whether the caller's session is alive: a
        browser session through its own access token, a bearer through its token."""
        self.warn_about_login_scopes("require_active_session")
        authenticator = self._authenticator

        async def active_session(
            conn: HTTPConnection,
            user: UserT = Security(self._current_user),
            token: str | None = Security(self._scheme),
        ) -> UserT:
            assert token is not None  # current_user answered 401 without one
            try:
                access, claims = await self._checked_token(conn, token)
                await self.revoker.check_session(access, claims)
            except CognitoGuardError as error:
                raise authenticator.http_error(error, conn) from None
            return user

        owner = spec_of(self._current_user)
        spec = GuardSpec(active_session=True, auth=owner.auth if owner else None)
        return described(active_session, spec)

    async def _checked_token(self, conn: HTTPConnection, token: str) -> tuple[str, TokenClaims]:
        """The token to ask Cognito about, with its claims: the browser session's
        access token when the cookie authenticated the request, else ``token``."""
        context = session_context(conn.scope)
        session = context.session if context is not None and context.token else None
        if session is not None and self.sessions is not None:
            pool = self.sessions.settings.user_pool_id
            claims = trusted_claims(session.access_token, pool)
            if claims is not None:
                return session.access_token, claims
        return token, await self._authenticator.verifier.verify(token)

    async def aclose(self) -> None:
        """Close the HTTP client the revoker created."""
        await self.revoker.aclose()
