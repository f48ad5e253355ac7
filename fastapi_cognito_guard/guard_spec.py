"""What a library dependency requires, said by the dependency itself: ``GuardSpec``.

The route map (DESIGN §17) must never guess from names what protects a route. Every
dependency the library hands out (``current_user``, ``require_group(...)``, ...)
carries a frozen :class:`GuardSpec` under :data:`GUARD_SPEC_ATTRIBUTE`; a dependency
without one is a user's own code, which the route map reports as ``unknown``.
This module imports no web framework: the web layer and the route map both build on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

__all__ = [
    "AUTH_ATTRIBUTE",
    "GUARD_SPEC_ATTRIBUTE",
    "MIDDLEWARE_ATTRIBUTE",
    "GuardSpec",
    "described",
    "is_auth",
    "is_middleware",
    "spec_of",
]

GUARD_SPEC_ATTRIBUTE = "__cognito_guard__"
"""The attribute of a library dependency that holds its ``GuardSpec``."""

AUTH_ATTRIBUTE = "__cognito_auth__"
"""A class attribute (True) of ``CognitoAuth``: what an app's registration is."""

MIDDLEWARE_ATTRIBUTE = "__cognito_middleware__"
"""A class attribute (True) of ``CognitoAuthMiddleware``, whose instances hold
``auth``, ``exclude_paths`` (``PathExclusions`` or None) and the wrapped ``app``."""

CallableT = TypeVar("CallableT")


@dataclass(frozen=True)
class GuardSpec:
    """What one dependency demands of a request, declaratively.

    ``requires_user``: False for dependencies that read the token or give guest
    credentials but admit anyone (``optional_user``, the token scheme,
    ``guest_credentials``). ``groups`` (every one with ``groups_all``), ``scopes``
    (every one with ``scopes_all``), or with ``group_or_scope`` any listed group or
    any listed scope (``require_any``); ``pools``: the user pools admitted
    (``require_pool``); ``step_up``: the ``require_auth`` demands as text;
    ``auth``: the ``CognitoAuth`` the dependency is bound to, None for the
    module-level ones (which use the app's registration, else the environment's).
    """

    requires_user: bool = True
    groups: tuple[str, ...] = ()
    groups_all: bool = False
    scopes: tuple[str, ...] = ()
    scopes_all: bool = True
    group_or_scope: bool = False
    pools: tuple[str, ...] = ()
    step_up: str | None = None
    active_session: bool = False
    login_required: bool = False
    credentials: bool = False
    auth: Any = field(default=None, compare=False, repr=False)


def described(dependency: CallableT, spec: GuardSpec) -> CallableT:
    """``dependency``, carrying ``spec`` for the route map."""
    setattr(dependency, GUARD_SPEC_ATTRIBUTE, spec)
    return dependency


def spec_of(dependency: object) -> GuardSpec | None:
    """The ``GuardSpec`` a dependency carries; None for a user's own dependency."""
    spec = getattr(dependency, GUARD_SPEC_ATTRIBUTE, None)
    return spec if isinstance(spec, GuardSpec) else None


def is_auth(value: object) -> bool:
    """Whether ``value`` is a ``CognitoAuth`` (an app's registration)."""
    return getattr(type(value), AUTH_ATTRIBUTE, False) is True


def is_middleware(cls: object) -> bool:
    """Whether ``cls`` is the ``CognitoAuthMiddleware`` class."""
    return getattr(cls, MIDDLEWARE_ATTRIBUTE, False) is True
