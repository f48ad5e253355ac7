"""The sign-in routes: ``GET /auth/login``, ``GET /auth/callback`` and
``GET``/``POST /auth/logout`` (``auth.login_router()`` builds them).

Failures answer with a short page for browser navigations and the library's
``{"detail", "code"}`` JSON otherwise: 400/401 for a sign-in that cannot be
trusted, 403 ``csrf_rejected``, 503 with ``Retry-After`` when Cognito cannot
be reached. None of them starts a session.
"""

from __future__ import annotations

import html
import logging
from typing import TYPE_CHECKING, Protocol

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import NoMatchFound

from .. import telemetry
from ..errors import (
    CognitoGuardError,
    CsrfRejectedError,
    ServiceUnavailableError,
    SignInError,
)
from .context import SessionContext, session_context
from .cookies import clear_cookie, set_cookie
from .transient import LIFETIME_SECONDS, safe_next, step_up_params

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection

    from ..revocation import SignOutResult
    from .manager import BrowserSessions

__all__ = ["SignOutPort", "login_router"]

logger = logging.getLogger(__name__)

_NO_STORE = {"Cache-Control": "no-store"}
_LOGIN, _CALLBACK, _LOGOUT = "cognito_login", "cognito_callback", "cognito_logout"


def wants_html(request: Request) -> bool:
    """A browser navigation (its ``Accept`` names HTML)."""
    return "text/html" in request.headers.get("accept", "")


def error_page(request: Request, error: CognitoGuardError) -> Response:
    """A short HTML page (navigations) or the JSON error body, with the error code."""
    headers = dict(_NO_STORE)
    if isinstance(error, ServiceUnavailableError):
        headers["Retry-After"] = str(error.retry_after)
    if not wants_html(request):
        body = {"detail": error.message, "code": error.code}
        return JSONResponse(body, status_code=error.status_code, headers=headers)
    try:
        again = str(request.url_for(_LOGIN))
    except NoMatchFound:  # the login router is not part of this app
        again = "/"
    page = (
        "<!doctype html><meta charset=utf-8><title>Sign-in problem</title>"
        f"<h1>Sign-in problem</h1><p>{html.escape(error.message)}</p>"
        f"<p>Code: <code>{html.escape(error.code)}</code></p>"
        f'<p><a href="{html.escape(again)}">Sign in again</a></p>'
    )
    return HTMLResponse(page, status_code=error.status_code, headers=headers)


def _context(request: Request) -> SessionContext:
    context = session_context(request.scope)
    if context is None:
        logger.error("sign-in routes need auth.lifespan or auth.init_app(app) on the app")
        raise RuntimeError("the session middleware is not installed: call auth.init_app(app)")
    return context


class SignOutPort(Protocol):
    """What the logout route needs of the auth that serves it (its ``SignOut`` part)."""

    async def sign_out_session(
        self, context: SessionContext, *, everywhere: bool = False
    ) -> SignOutResult | None:
        """End the request's browser session through its own tokens (None without one);
        raises ``CognitoGuardError`` when it cannot, and the cookie stays."""
        ...

    async def sign_out_caller(
        self, conn: HTTPConnection, *, everywhere: bool = False
    ) -> SignOutResult:
        """Sign out the bearer caller of ``conn`` (the route's 401 unless it is valid)."""
        ...


def login_router(sessions: BrowserSessions, signer: SignOutPort, prefix: str) -> APIRouter:
    """The sign-in routes of one auth's browser ``sessions`` under ``prefix``;
    ``signer`` revokes what a sign-out ends."""
    router = APIRouter(prefix=prefix, tags=["sign-in"], include_in_schema=False)

    @router.get("/login", name=_LOGIN)
    async def login(request: Request) -> Response:
        """Start a sign-in at the hosted UI; ``next`` is where to land afterwards."""
        context = _context(request)
        if not sessions.transport_allowed(request.scope):
            logger.error(
                "sign-in over plain http refused: serve https, set COGNITO_REDIRECT_URI "
                "behind a proxy, or COGNITO_ALLOW_INSECURE_HTTP for an emulator"
            )
            error = SignInError("insecure_transport", "sign-in needs https")
            return error_page(request, error)
        redirect_uri = sessions.settings.redirect_uri or str(request.url_for(_CALLBACK))
        signin, value = sessions.states.start(
            safe_next(request.query_params.get("next")), redirect_uri
        )
        secure = context.secure
        for name in sessions.states.to_drop(context.cookies, secure=secure):
            context.extra_cookies.append(clear_cookie(name, secure=secure))
        name = sessions.states.cookie_name(signin.state, secure=secure)
        context.extra_cookies.append(
            set_cookie(name, value, secure=secure, max_age=LIFETIME_SECONDS)
        )
        params = {
            "response_type": "code",
            "client_id": sessions.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(sessions.settings.login_scopes),
            "state": signin.state,
            "nonce": signin.nonce,
            "code_challenge": signin.code_challenge,
            "code_challenge_method": "S256",
        }
        if sessions.settings.login_resource is not None:
            params["resource"] = sessions.settings.login_resource  # RFC 8707
        params.update(step_up_params(request.query_params))
        target = sessions.oauth.authorize_url(params)
        return RedirectResponse(target, status_code=302, headers=_NO_STORE)

    @router.get("/callback", name=_CALLBACK)
    async def callback(request: Request) -> Response:
        """Finish a sign-in: check ``state``, exchange the code, verify, start the session."""
        context = _context(request)
        params = request.query_params
        state = params.get("state") or ""
        signin = sessions.states.consume(state, context.cookies, secure=context.secure)
        if state:
            name = sessions.states.cookie_name(state, secure=context.secure)
            if name in context.cookies:
                context.extra_cookies.append(clear_cookie(name, secure=context.secure))
        try:
            error = params.get("error")
            if error is not None:
                reason = "access_denied" if error == "access_denied" else "signin_failed"
                raise SignInError(reason, "the hosted UI did not sign you in")
            if signin is None:
                raise SignInError(
                    "invalid_state",
                    "this sign-in does not match one started in this browser "
                    "(expired, already used or forged)",
                )
            code = params.get("code")
            if not code or len(code) > 4096:
                raise SignInError("invalid_request", "the sign-in answer has no code")
            session = await sessions.complete_sign_in(signin, code)
        except CognitoGuardError as exc:
            logger.info("sign-in failed: %s", exc.code, extra=telemetry.log_extra(exc.code))
            return error_page(request, exc)
        context.store(session)
        return RedirectResponse(signin.next_path, status_code=302, headers=_NO_STORE)

    async def logout(request: Request) -> Response:
        """Revoke the session (``everywhere``: the user) and its refresh token, clear
        the cookies and send the browser to the hosted UI's ``/logout``. A bearer
        token without a session is revoked and answered with 204. ``everywhere``
        needs a ``POST`` (origin-checked like any cookie request): a cross-site link
        must never sign a user out on every device. A sign-out that cannot end the
        session answers its error (503 with ``Retry-After``) and keeps the cookie."""
        context = _context(request)
        everywhere = request.query_params.get("everywhere", "").lower() in ("1", "true", "yes")
        if everywhere and request.method != "POST":
            error = SignInError(
                "everywhere_needs_post",
                "signing out everywhere needs a POST from this app's own pages",
                status_code=405,
            )
            refused = error_page(request, error)
            refused.headers["Allow"] = "POST"
            return refused
        if context.explicit:
            await signer.sign_out_caller(request, everywhere=everywhere)
            return Response(status_code=204)
        if isinstance(context.error, CsrfRejectedError):
            return error_page(request, context.error)
        try:
            await signer.sign_out_session(context, everywhere=everywhere)
        except CognitoGuardError as exc:
            logger.warning(
                "sign-out could not end the session (%s): cookie kept",
                exc.code,
                extra=telemetry.log_extra(exc.code),
            )
            return error_page(request, exc)
        logout_uri = sessions.settings.logout_uri or str(request.base_url)
        status = 303 if request.method == "POST" else 302
        return RedirectResponse(
            sessions.oauth.logout_url(logout_uri), status_code=status, headers=_NO_STORE
        )

    router.add_api_route("/logout", logout, methods=["GET"], name=_LOGOUT)
    router.add_api_route("/logout", logout, methods=["POST"], name=_LOGOUT + "_post")
    return router
