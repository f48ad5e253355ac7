"""The step-up guard (RFC 9470): ``require_auth(max_age=…, acr=(…), amr=(…))``.

It admits the verified caller whose sign-in meets the ``StepUp`` requirement, read
from the verified token's claims whichever its type (``auth_time``, ``acr``, ``amr``).
Otherwise an API client gets 401 with RFC 9470's challenge and the code
``insufficient_user_authentication``; a browser navigation of a session is sent to
``/auth/login?next=…&max_age=…&acr_values=…`` to sign in again, and the new sign-in
replaces the session. A sign-in made after such a redirect that still falls short (the
hosted UI could not reach the level) gets the 401 instead of being sent round again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from fastapi import HTTPException, Security
from starlette.requests import HTTPConnection

from ..errors import InsufficientUserAuthenticationError
from ..guard_spec import GuardSpec, described, spec_of
from ..sessions.context import session_context
from ..sessions.cookies import cookie_name, set_cookie
from ..sessions.transient import LIFETIME_SECONDS
from ..stepup import StepUp
from .authenticator import UserT
from .dependencies import Dependency, Resolve, is_navigation, sign_in_url

__all__ = ["STEP_UP_COOKIE", "step_up_guard"]

STEP_UP_COOKIE = "fcg_stepup"
"""When the browser was last sent to sign in again (seconds since the epoch)."""


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

    owner = spec_of(current_user)
    spec = GuardSpec(step_up=_described(max_age, acr, amr), auth=owner.auth if owner else None)
    return described(stepped_up, spec)


def _described(max_age: int | None, acr: Sequence[str], amr: Sequence[str]) -> str:
    """The requirement as the route map shows it: ``max_age=300 acr=… amr=mfa``."""
    parts = [] if max_age is None else [f"max_age={max_age}"]
    parts += [
        f"{name}={' '.join(values)}" for name, values in (("acr", acr), ("amr", amr)) if values
    ]
    return " ".join(parts)


def _may_sign_in_again(conn: HTTPConnection) -> bool:
    """A browser navigation authenticated by its session (not a bearer token), unless
    it already went round: a sign-in made after the last step-up redirect (its time is
    in a short-lived cookie) that still falls short means the hosted UI cannot meet the
    requirement, and sending the browser round again would loop. Each redirect renews
    the cookie."""
    context = session_context(conn.scope)
    if context is None or context.explicit or context.session is None:
        return False
    if not is_navigation(conn):
        return False
    name = cookie_name(STEP_UP_COOKIE, secure=context.secure)
    sent = context.cookies.get(name, "")
    if sent.isascii() and sent.isdigit() and context.session.started_at >= int(sent):
        return False
    now = str(int(time.time()))
    context.extra_cookies.append(
        set_cookie(name, now, secure=context.secure, max_age=LIFETIME_SECONDS)
    )
    return True


def _step_up_url(conn: HTTPConnection, error: InsufficientUserAuthenticationError) -> str:
    extra: dict[str, str] = {}
    if error.max_age is not None:
        extra["max_age"] = str(error.max_age)
    if error.acr_values:
        extra["acr_values"] = " ".join(error.acr_values)
    return sign_in_url(conn, extra)
