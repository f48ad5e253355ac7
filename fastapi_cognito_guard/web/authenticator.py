"""From a connection to a verified user: the verifying core every guard shares.

An ``Authenticator`` belongs to one ``CognitoAuth`` (or one middleware): it verifies a
request's token against that auth's pools, clients, token use and user model, once per
request however many guards ask, and keeps its own entry in the request's record, so
a user one auth accepted is never reused by another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic

from fastapi import WebSocket
from starlette.requests import HTTPConnection
from starlette.types import Scope
from typing_extensions import TypeVar

from ..claims import CognitoUser
from ..errors import CognitoGuardError, InsufficientScopeError, MissingTokenError
from ..sessions.context import session_error
from ..verifier import CognitoVerifier
from .responses import CognitoHTTPException, CognitoWebSocketException, http_error
from .tokens import accepting_bearer_subprotocol, connection_token, offers_bearer_subprotocol
from .tokens import request_auth as request_record

__all__ = ["Authenticator", "UserT"]

UserT = TypeVar("UserT", bound=CognitoUser, default=CognitoUser)


class Authenticator(Generic[UserT]):
    """Verifies a connection's token and builds its user, for one auth."""

    def __init__(self, verifier: CognitoVerifier, user_model: type[UserT], realm: str) -> None:
        self.verifier = verifier
        self.user_model = user_model
        self.realm = realm
        self._build_user = user_model.from_claims
        """One callable for the life of this auth: the verifier keeps the user it builds
        with the token's cached result, under this very callable."""
        self.resource_metadata: Callable[[HTTPConnection], str] | None = None
        """The RFC 9728 metadata URL of a request's resource, once the app serves it
        (``protected_resource_router``): 401 challenges then name it."""

    async def authenticate(self, token: str) -> UserT:
        """Verify a token and build the user; raises ``CognitoGuardError`` on failure.

        The user is built once per token and kept with the verifier's cached result
        (as many as ``result_cache_size``), so a repeated token costs one lookup however
        many users are active; revocation is still checked on every call, and a key
        leaving the JWKS drops the user with the result. Users are shared by the
        requests that carry the same token, which is why they are immutable.
        """
        user: UserT = await self.verifier.verify(token, build=self._build_user)
        return user

    def request_token(self, conn: HTTPConnection) -> str | None:
        """The one place a request's token is read (see ``connection_token``)."""
        return connection_token(conn.scope)

    async def request_user(self, scope: Scope, token: str) -> UserT:
        """The user this auth verified for ``token`` in this request, verifying it on
        first use. Raises ``CognitoGuardError``."""
        users = request_record(scope).users
        cached = users.get(self)
        if cached is not None and cached[0] == token:
            user: UserT = cached[1]
            return user
        user = await self.authenticate(token)
        users[self] = (token, user)
        return user

    async def user_for(self, conn: HTTPConnection) -> UserT:
        """The request's user, verified once per request however many guards ask;
        raises the route's HTTP error (or a 1008 close on a WebSocket)."""
        if offers_bearer_subprotocol(conn.scope) and isinstance(conn, WebSocket):
            conn._send = accepting_bearer_subprotocol(conn._send)
        token = self.request_token(conn)
        if token is None:
            error = session_error(conn.scope) or MissingTokenError("Not authenticated")
            raise self.http_error(error, conn)
        try:
            return await self.request_user(conn.scope, token)
        except CognitoGuardError as error:
            raise self.http_error(error, conn) from None

    def http_error(
        self, error: CognitoGuardError, conn: HTTPConnection | None = None
    ) -> CognitoHTTPException | CognitoWebSocketException:
        """``error`` as the exception a dependency raises, with this auth's realm (and
        its resource metadata URL, when served)."""
        metadata = None
        if self.resource_metadata is not None and conn is not None:
            metadata = self.resource_metadata(conn)
        return http_error(error, conn, self.realm, resource_metadata=metadata)

    def check_scopes(
        self, conn: HTTPConnection, user: CognitoUser, required: Sequence[str], *, all: bool
    ) -> None:
        """403 ``insufficient_scope`` unless the user holds ``required`` (every one with
        ``all``, else any one)."""
        if not required:
            return
        held = set(user.scopes)
        missing = [scope for scope in required if scope not in held]
        if missing and (all or len(missing) == len(required)):
            message = (
                f"the token lacks the required scope(s): {', '.join(missing)}"
                if all
                else f"the token has none of the scopes: {', '.join(required)}"
            )
            error = InsufficientScopeError(message, scopes=tuple(required))
            raise self.http_error(error, conn)
