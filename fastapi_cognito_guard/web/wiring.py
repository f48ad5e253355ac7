"""Wiring that cannot be silently wrong (DESIGN §7): the start-up check of an app.

When an app with a registration starts, every FastAPI app mounted below it whose
routes use the module-level dependencies but that has no ``CognitoAuth`` of its own
is refused: those routes would be served by the auth of the ``COGNITO_*``
environment, so a token of the main app's pool would reach, say, an admin sub-app
meant for another pool. The check reads the route map (what each route's
dependencies say of themselves), so it sees exactly what a request would meet.

The same pass names, once, the routes that hand out identity-pool credentials of a
user pool without ``identity_pool_id`` (``COGNITO_IDENTITY_POOL_ID``): their requests
answer 500 ``identity_pool_misconfigured`` until it is set.

``WiringCheck`` runs the check for an app registered by ``init_app`` alone: at its
lifespan's start-up when it has one (start-up then fails), else before its first
request (which, like every later one, answers 500 naming the fix).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..route_records import route_map

__all__ = ["UnregisteredAppError", "WiringCheck", "check_wiring"]

logger = logging.getLogger(__name__)

ENVIRONMENT = "environment"


class UnregisteredAppError(RuntimeError):
    """A mounted app uses module-level dependencies without a registration of its own."""

    code = "unregistered_app"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def check_wiring(app: Any) -> None:
    """Raise ``UnregisteredAppError`` naming each mounted app below ``app`` that uses
    module-level dependencies without a ``CognitoAuth`` of its own (and ``init_app``,
    the fix); log once the routes that need ``COGNITO_IDENTITY_POOL_ID``."""
    state = getattr(app, "state", None)
    if getattr(state, "cognito_wiring_checked", False):
        return  # checked at start-up already: nothing below it changes afterwards
    records = route_map(app)
    unregistered: dict[str, list[str]] = defaultdict(list)
    for record in records:
        if record.auth_source == ENVIRONMENT and record.mount != "/":
            unregistered[record.mount].append(record.key)
    _log_missing_identity_pools(records)
    if unregistered:
        apps = "; ".join(
            f"the app mounted at {mount} ({', '.join(keys[:3])}{', …' if len(keys) > 3 else ''})"
            for mount, keys in unregistered.items()
        )
        raise UnregisteredAppError(
            f"{apps}: its routes use the module-level Cognito dependencies but it has no "
            "CognitoAuth of its own, so they would be served by the auth of the COGNITO_* "
            "environment, not by the app it is mounted in. Call auth.init_app(sub_app) "
            "with the CognitoAuth of its user pool (a mounted app's lifespan never runs)"
        )
    if state is not None:
        state.cognito_wiring_checked = True


def _log_missing_identity_pools(records: list[Any]) -> None:
    wanting = [
        record.key
        for record in records
        if record.credentials
        and any(not s.identity_pool_id for auth in record.auths for s in auth.settings)
    ]
    if wanting:
        logger.error(
            "routes hand out identity-pool credentials but COGNITO_IDENTITY_POOL_ID "
            "(identity_pool_id) is not set for their user pool: %s; they answer 500 "
            "identity_pool_misconfigured until it is",
            ", ".join(wanting),
        )


class WiringCheck:
    """Runs ``check_wiring`` on the app once: at lifespan start-up (failing it), else
    before the first request (then every request answers 500 naming the fix)."""

    def __init__(self, app: ASGIApp, *, owner: Any) -> None:
        self.app = app
        self.owner = owner
        self._checked = False
        self._error: UnregisteredAppError | None = None

    def _check(self) -> UnregisteredAppError | None:
        if not self._checked:
            self._checked = True
            try:
                check_wiring(self.owner)
            except UnregisteredAppError as error:
                logger.error("%s", error.message)
                self._error = error
        return self._error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, self._checking_start_up(receive, send), send)
            return
        error = self._check() if scope["type"] in ("http", "websocket") else None
        if error is None:
            await self.app(scope, receive, send)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1011, "reason": error.code})
        else:
            body = json.dumps({"detail": error.message, "code": error.code}).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 500,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})

    def _checking_start_up(self, receive: Receive, send: Send) -> Receive:
        """``receive`` that fails the lifespan's start-up when the wiring is wrong."""

        async def receive_checked() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                error = self._check()
                if error is not None:
                    await send({"type": "lifespan.startup.failed", "message": error.message})
                    raise error
            return message

        return receive_checked
