"""The module-level dependencies: ``current_user``, ``require_group`` & co.

They are served by the ``CognitoAuth`` registered on the app that handles the request
(its ``lifespan`` ran, or ``init_app`` was called), else by the process's one auth
built from the ``COGNITO_*`` environment (``CognitoAuth()``) — never another app's.
Without either, the request fails with a 500 and one log line naming the fix.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Depends, HTTPException, WebSocketException
from fastapi.openapi.models import SecurityBase as SecurityBaseModel
from pydantic import ValidationError
from starlette.requests import HTTPConnection

from ..claims import CognitoUser
from .auth import CognitoAuth, environment_auth
from .authenticator import Authenticator
from .dependencies import Dependency, Guards
from .openapi import BearerScheme, bearer_scheme, describing_app_auth
from .responses import WS_INTERNAL_ERROR
from .step_up import step_up_guard

__all__ = [
    "CurrentUser",
    "OptionalUser",
    "current_user",
    "login_required",
    "optional_user",
    "require_any",
    "require_auth",
    "require_group",
    "require_pool",
    "require_scope",
]

logger = logging.getLogger(__name__)

_unregistered_apps_logged: weakref.WeakSet[Any] = weakref.WeakSet()


def _env_auth() -> CognitoAuth[Any] | ValidationError:
    """The process's environment auth (``CognitoAuth()``; built here when the app
    built none), or why the ``COGNITO_*`` environment describes none."""
    found = environment_auth()
    if found is not None:
        return found
    try:
        return CognitoAuth()
    except ValidationError as exc:
        return exc


def app_auth(conn: HTTPConnection) -> CognitoAuth[CognitoUser]:
    """The ``CognitoAuth`` of the app handling the request, else the environment's.
    Never another app's: without either, a 500 and one log line naming the fix."""
    app = conn.scope.get("app")
    auth = getattr(getattr(app, "state", None), "cognito_auth", None)
    if isinstance(auth, CognitoAuth):
        return auth
    found = _env_auth()
    if isinstance(found, CognitoAuth):
        if _first_time(app):
            logger.warning(
                "module-level Cognito dependency on %s, which has no CognitoAuth registered: "
                "using the process's environment auth (CognitoAuth()), whose errors render "
                "without their code here; register it with FastAPI(lifespan=auth.lifespan) "
                "or auth.init_app(app)",
                type(app).__name__,
            )
        return found
    _log_unregistered(app, found)
    if conn.scope["type"] == "websocket":
        raise WebSocketException(WS_INTERNAL_ERROR, reason="authentication is not configured")
    raise HTTPException(500, "authentication is not configured")


def _app_authenticator(conn: HTTPConnection) -> Authenticator[CognitoUser]:
    return app_auth(conn).authenticator


def _first_time(app: Any) -> bool:
    """Whether this app's missing registration is said for the first time."""
    try:
        if app in _unregistered_apps_logged:
            return False
        _unregistered_apps_logged.add(app)
    except TypeError:  # not weak-referenceable: say it every time rather than never
        pass
    return True


def _log_unregistered(app: Any, error: ValidationError) -> None:
    """Say once per app why its module-level dependencies have no ``CognitoAuth``."""
    if not _first_time(app):
        return
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
    describe = describing_app_auth()
    if describe is not None:
        return describe()
    found = _env_auth()
    if not isinstance(found, CognitoAuth):
        return bearer_scheme()
    return found.scheme.describe()


_module_guards: Guards[CognitoUser] = Guards(BearerScheme(_described_scheme), _app_authenticator)

current_user = _module_guards.current_user
optional_user = _module_guards.optional_user
login_required = _module_guards.login_required
require_group = _module_guards.require_group
require_scope = _module_guards.require_scope
require_any = _module_guards.require_any
require_pool = _module_guards.require_pool


def require_auth(
    *, max_age: int | None = None, acr: Sequence[str] = (), amr: Sequence[str] = ()
) -> Dependency[CognitoUser]:
    """Callers whose sign-in is at most ``max_age`` seconds old, at one of the ``acr``
    levels, by one of the ``amr`` methods (RFC 9470 step-up), for the app's auth."""
    return step_up_guard(current_user, _app_authenticator, max_age=max_age, acr=acr, amr=amr)


CurrentUser = Annotated[CognitoUser, Depends(current_user)]
"""The verified caller: ``async def me(user: CurrentUser)``."""
OptionalUser = Annotated[CognitoUser | None, Depends(optional_user)]
"""The verified caller, or None when the request carried no token."""
