"""The step-up guard (RFC 9470): ``require_auth(max_age=…, acr=(…), amr=(…))``.

It admits the verified caller whose sign-in meets the ``StepUp`` requirement, read
from the verified token's claims whichever its type (``auth_time``, ``acr``, ``amr``).
Otherwise an API client gets 401 with RFC 9470's challenge and the code
``insufficient_user_authentication``; a browser navigation of a session is sent to
``/auth/login?next=…&max_age=…&acr_values=…`` to sign in again, and the new sign-in
replaces the session. A session begun moments ago that still falls short (the hosted
UI could not reach the level) gets the 401 instead of being sent round again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import HTTPException, Security
from starlette.requests import HTTPConnection

from ..errors import InsufficientUserAuthenticationError
from ..sessions.context import session_context
from ..stepup import StepUp
from .authenticator import UserT
from .dependencies import Dependency, Resolve, is_navigation, sign_in_url

__all__ = ["JUST_SIGNED_IN_SECONDS", "step_up_guard"]

JUST_SIGNED_IN_SECONDS = 60
"""A sign-in this recent that still falls short is not sent to sign in once more."""


def step_up_guard(
    current_user: Dependency[UserT],
    resolve: Resolve[UserT],
    *,
    max_age: int | None,
    acr: Sequence[str],
    amr: Sequence[str],
) -> Dependency[UserT]:
    """The dependency admitting callers whose sign-in meets the requirement (checked
    here: a bad one is an error when the route is defined)."""
    requirement = StepUp.of(max_age, acr, amr)

    async def stepped_up(conn: HTTPConnection, user: UserT = Security(current_user)) -> UserT:
        auth = resolve(conn)
        leeway = next(
            (
                s.leeway_seconds
                for s in auth.verifier.settings
                if s.user_pool_id == user.user_pool_id
            ),
            0,
        )
        try:
            requirement.check(user.claims, leeway=leeway)
        except InsufficientUserAuthenticationError as error:
            if _may_sign_in_again(conn):
                raise HTTPException(
                    302, "sign in again", headers={"Location": _step_up_url(conn, error)}
                ) from None
            raise auth.http_error(error, conn) from None
        return user

    return stepped_up


def _may_sign_in_again(conn: HTTPConnection) -> bool:
    """A browser navigation authenticated by its session (not a bearer token), unless
    that session began moments ago: the hosted UI could not meet the requirement, and
    sending the browser round again would loop."""
    context = session_context(conn.scope)
    if context is None or context.explicit or context.session is None:
        return False
    just_signed_in = time.time() - context.session.started_at < JUST_SIGNED_IN_SECONDS
    return is_navigation(conn) and not just_signed_in


def _step_up_url(conn: HTTPConnection, error: InsufficientUserAuthenticationError) -> str:
    extra: dict[str, str] = {}
    if error.max_age is not None:
        extra["max_age"] = str(error.max_age)
    if error.acr_values:
        extra["acr_values"] = " ".join(error.acr_values)
    return sign_in_url(conn, extra)
