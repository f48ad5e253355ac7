"""The route dependencies: ``current_user``, ``optional_user``, ``login_required`` and
the guards ``require_group``, ``require_scope``, ``require_any``, ``require_pool``.

``Guards`` builds them over a token scheme and a way to find the ``Authenticator``
that decides: a ``CognitoAuth`` finds its own, the module-level dependencies the one
of the app handling the request. Each guard verifies for itself through that
authenticator; none trusts another auth's decision. Each carries a ``GuardSpec``
saying what it demands (and of which auth), which the route map reads.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any, Generic
from urllib.parse import urlencode

from fastapi import HTTPException, Security
from fastapi.security import SecurityScopes
from starlette.requests import HTTPConnection
from starlette.routing import NoMatchFound
from typing_extensions import TypeVar

from ..errors import CognitoGuardError, InsufficientScopeError, InvalidTokenError, MissingGroupError
from ..guard_spec import GuardSpec, described
from ..sessions.context import session_error
from .authenticator import Authenticator, UserT
from .openapi import BearerScheme, Describe, DescribedScheme
from .responses import CognitoHTTPException

__all__ = ["Dependency", "Guards", "Resolve", "is_navigation", "names", "sign_in_url"]

T = TypeVar("T", default=Any)
Dependency = Callable[..., Awaitable[T]]
"""A FastAPI dependency (what ``Depends`` takes) whose value is a ``T``."""
DependencyT = TypeVar("DependencyT")

Resolve = Callable[[HTTPConnection], Authenticator[UserT]]
"""Finds the authenticator that decides for a request."""


class _UserDependency(DescribedScheme, Generic[UserT]):
    """``current_user`` / ``optional_user``: the dependency is its own security scheme,
    so a guarded route costs FastAPI one dependency to resolve, not two. Scopes
    declared around it (``Security(..., scopes=[...])``) are all required."""

    def __init__(self, describe: Describe, resolve: Resolve[UserT]) -> None:
        super().__init__(describe)
        self._resolve = resolve


class _CurrentUser(_UserDependency[UserT]):
    async def __call__(self, security_scopes: SecurityScopes, conn: HTTPConnection) -> UserT:
        """The verified caller (401 without a valid token, 403 without required scopes)."""
        auth = self._resolve(conn)
        user = await auth.user_for(conn)
        auth.check_scopes(conn, user, security_scopes.scopes, all=True)
        return user


class _OptionalUser(_UserDependency[UserT]):
    async def __call__(self, security_scopes: SecurityScopes, conn: HTTPConnection) -> UserT | None:
        """The verified caller, or None when no token was sent (a bad token is a 401)."""
        auth = self._resolve(conn)
        if auth.request_token(conn) is None and session_error(conn.scope) is None:
            return None
        user = await auth.user_for(conn)
        auth.check_scopes(conn, user, security_scopes.scopes, all=True)
        return user


class _LoginRequired(_CurrentUser[UserT]):
    """``login_required``: ``current_user`` that sends signed-out browser navigations
    (GET or HEAD accepting HTML) to ``/auth/login?next=<this page>``."""

    async def __call__(self, security_scopes: SecurityScopes, conn: HTTPConnection) -> UserT:
        try:
            return await super().__call__(security_scopes, conn)
        except CognitoHTTPException as exc:
            if exc.status_code != 401 or not is_navigation(conn):
                raise
            location = sign_in_url(conn)
        raise HTTPException(302, "sign-in required", headers={"Location": location})


def is_navigation(conn: HTTPConnection) -> bool:
    """A browser navigation: GET or HEAD accepting HTML."""
    return (
        conn.scope["type"] == "http"
        and conn.scope["method"] in ("GET", "HEAD")
        and "text/html" in conn.headers.get("accept", "")
    )


def sign_in_url(conn: HTTPConnection, extra: Mapping[str, str] | None = None) -> str:
    """The login route's path (``/auth/login`` when the app names none) with ``next``
    (and ``extra`` parameters, e.g. a step-up's ``max_age``)."""
    try:
        login = conn.url_for("cognito_login").path
    except NoMatchFound:
        login = "/auth/login"
    here = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
    return f"{login}?{urlencode({'next': here, **(extra or {})})}"


def names(kind: str, values: Iterable[str]) -> tuple[str, ...]:
    """Validated guard arguments: a list of non-empty names, never one bare string
    (whose characters would each become a name)."""
    if isinstance(values, (str, bytes)):
        raise ValueError(f"{kind} takes a list of names, not one string")
    found = tuple(values)
    if not all(isinstance(name, str) and name for name in found):
        raise ValueError(f"{kind} names must be non-empty strings")
    return found


def _missing_groups(groups: Sequence[str]) -> MissingGroupError:
    """The 403 for a user outside the required groups, naming them."""
    listed = ", ".join(groups)
    return MissingGroupError(
        f"the user is not in the required group(s): {listed}", groups=tuple(groups)
    )


class Guards(Generic[UserT]):
    """Builds the route dependencies over a token scheme and a way to find the
    authenticator that decides for a request."""

    def __init__(self, scheme: BearerScheme, resolve: Resolve[UserT], owner: Any = None) -> None:
        """``owner``: the ``CognitoAuth`` these dependencies belong to, None for the
        module-level ones; each dependency carries a ``GuardSpec`` naming it."""
        self.owner = owner
        self.scheme = described(scheme, GuardSpec(requires_user=False, auth=owner))
        self.resolve = resolve
        self.current_user: Dependency[UserT] = self._spec(
            _CurrentUser(scheme.describe, resolve), GuardSpec()
        )
        self.optional_user: Dependency[UserT | None] = self._spec(
            _OptionalUser(scheme.describe, resolve), GuardSpec(requires_user=False)
        )
        self.login_required: Dependency[UserT] = self._spec(
            _LoginRequired(scheme.describe, resolve), GuardSpec(login_required=True)
        )

    def _spec(self, dependency: DependencyT, spec: GuardSpec) -> DependencyT:
        """``dependency`` described by ``spec`` (bound to this owner) for the route map."""
        return described(dependency, replace(spec, auth=self.owner))

    def require_group(self, *groups: str, all: bool = False) -> Dependency[UserT]:
        """Users in any of ``groups`` (every one with ``all=True``); 403 naming them."""
        groups = names("require_group", groups)
        if not groups:
            raise ValueError("require_group needs at least one group")
        resolve = self.resolve

        async def group_member(
            conn: HTTPConnection, user: UserT = Security(self.current_user)
        ) -> UserT:
            held = set(user.groups)
            missing = [group for group in groups if group not in held]
            if missing and (all or len(missing) == len(groups)):
                raise resolve(conn).http_error(_missing_groups(missing if all else groups), conn)
            return user

        return self._spec(group_member, GuardSpec(groups=groups, groups_all=all))

    def require_scope(self, *scopes: str, all: bool = True) -> Dependency[UserT]:
        """Tokens with all of ``scopes`` (any one with ``all=False``); 403 naming them."""
        scopes = names("require_scope", scopes)
        if not scopes:
            raise ValueError("require_scope needs at least one scope")
        if all:

            async def scoped(
                user: UserT = Security(self.current_user, scopes=list(scopes)),
            ) -> UserT:
                return user

            return self._spec(scoped, GuardSpec(scopes=scopes))
        resolve = self.resolve

        async def any_scope(
            security_scopes: SecurityScopes,
            conn: HTTPConnection,
            _: str | None = Security(self.scheme, scopes=list(scopes)),
        ) -> UserT:
            # security_scopes holds the scopes declared around this dependency: all
            # of those are required, and any one of its own.
            auth = resolve(conn)
            user = await auth.user_for(conn)
            auth.check_scopes(conn, user, security_scopes.scopes, all=True)
            auth.check_scopes(conn, user, scopes, all=False)
            return user

        return self._spec(any_scope, GuardSpec(scopes=scopes, scopes_all=False))

    def require_any(
        self, groups: Iterable[str] = (), scopes: Iterable[str] = ()
    ) -> Dependency[UserT]:
        """Users in any of ``groups`` or tokens with any of ``scopes``."""
        groups = names("require_any groups", groups)
        scopes = names("require_any scopes", scopes)
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
                raise resolve(conn).http_error(error, conn)
            return user

        spec = GuardSpec(groups=groups, scopes=scopes, group_or_scope=True)
        return self._spec(group_or_scope, spec)

    def require_pool(self, *user_pool_ids: str) -> Dependency[UserT]:
        """Tokens signed by one of the given user pools."""
        user_pool_ids = names("require_pool", user_pool_ids)
        if not user_pool_ids:
            raise ValueError("require_pool needs at least one user pool id")
        resolve = self.resolve

        async def pool_member(
            conn: HTTPConnection, user: UserT = Security(self.current_user)
        ) -> UserT:
            if user.user_pool_id not in user_pool_ids:
                error = InvalidTokenError("wrong_issuer", "token is from another user pool")
                raise resolve(conn).http_error(error, conn)
            return user

        return self._spec(pool_member, GuardSpec(pools=user_pool_ids))
