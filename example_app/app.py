"""An API guarded by fastapi-cognito-guard, using each of its features.

Configured by the ``COGNITO_*`` environment. With ``COGNITO_USER_POOL_ID`` unset
or empty it runs in dev mode: an embedded ``LocalIssuer`` signs tokens, its JWKS
is served by this app, and ``GET /dev/token`` mints tokens; while the issuer serves its
local hosted UI (``python -m example_app`` starts it on another loopback port)
browser sign-in works too, with a session secret generated per run. Dev mode
is only reachable when no real settings are given, and only on loopback (``__main__``).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import (
    Depends,
    FastAPI,
    Query,
    Request,
    Response,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse
from pydantic import SecretStr
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    current_user,
    optional_user,
    require_group,
    require_scope,
)
from fastapi_cognito_guard.sessions.manager import BrowserSessions
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.testing.devmode import (
    DEV_TOKEN_DESCRIPTION,
    DEV_TOKEN_PARAMETERS,
    MAX_EXPIRES_IN,
    is_loopback_authority,
    mint_dev_token,
)

from .home import home_page

logger = logging.getLogger("example_app")

DEV_POOL_ID = "eu-central-1_DevPool"
DEV_CLIENT_ID = "example-app"


def dev_mode_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Dev mode runs only when no user pool is configured: the id unset, empty or blank."""
    pool_id = (environ if environ is not None else os.environ).get("COGNITO_USER_POOL_ID", "")
    return not pool_id.strip()


def create_app(
    settings: CognitoSettings | None = None,
    *,
    dev_issuer: LocalIssuer | None = None,
    base_url: str = "http://127.0.0.1:8000",
) -> FastAPI:
    """Build the example API; ``dev_issuer`` (dev mode) serves and signs its own keys."""
    if dev_issuer is not None:
        settings = dev_issuer.settings(
            jwks_url=f"{base_url}/dev/{dev_issuer.user_pool_id}/.well-known/jwks.json",
            oauth_url=None,
        )
    auth: CognitoAuth[CognitoUser] = CognitoAuth(settings)
    if dev_issuer is not None and dev_issuer.url is not None:
        _dev_sign_in(auth, dev_issuer.url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dev_issuer is None:
            async with auth.lifespan(app):
                yield
            return
        # The app cannot fetch its own JWKS before it listens: seed the keys.
        auth.init_app(app)
        auth.verifier.cache_jwks(dev_issuer.jwks())
        if auth.sessions is not None:
            auth.sessions.verifier.cache_jwks(dev_issuer.jwks())
        await auth.start()
        _announce_dev_mode(base_url)
        try:
            yield
        finally:
            await auth.aclose()

    app = FastAPI(
        title="fastapi-cognito-guard example",
        lifespan=lifespan,
        swagger_ui_init_oauth=auth.swagger_ui_init_oauth,
    )
    auth.init_app(app)  # registered before it starts, so the route map sees it

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        """Readiness (every pool's signing keys usable): 200, else 503."""
        is_ready = auth.ready()
        return JSONResponse({"ready": is_ready}, status_code=200 if is_ready else 503)

    if auth.sessions is None:  # with browser sign-in, the login router serves it (§13)

        @app.post("/auth/logout", status_code=204)
        async def logout(
            request: Request, everywhere: bool = False, user: CognitoUser = Depends(current_user)
        ) -> Response:
            """Bearer sign-out: revokes this token's sign-in, or the user with ?everywhere=true."""
            await auth.sign_out_caller(request, everywhere=everywhere)
            return Response(status_code=204)

    @app.get("/active")
    async def active(user: CognitoUser = Depends(auth.require_active_session)) -> dict[str, str]:
        return {"sub": user.sub, "session": "active"}

    @app.get("/me")
    async def me(user: CognitoUser = Depends(current_user)) -> dict[str, Any]:
        return {
            "sub": user.sub,
            "username": user.username,
            "groups": user.groups,
            "scopes": user.scopes,
            "token_use": user.token_use,
        }

    @app.get("/premium")
    async def premium(user: CognitoUser = Depends(require_group("premium"))) -> dict[str, str]:
        return {"message": f"welcome to premium, {user.username or user.sub}"}

    @app.get("/orders")
    def orders(user: CognitoUser = Depends(require_scope("orders/read"))) -> dict[str, Any]:
        return {"owner": user.sub, "orders": [{"id": 1, "item": "coffee"}]}

    @app.get("/aws/identity")
    async def aws_identity(
        request: Request,
        user: CognitoUser = Depends(auth.current_user),
        role: str | None = Query(None, description="an IAM role ARN from the user's roles"),
    ) -> dict[str, str | None]:
        """Identity-pool credentials for the caller (the pool's choice of role, or
        ``role``); the secret key and session token are never returned."""
        credentials = await auth.aws_credentials_of(request, user, role_arn=role)
        return _described(credentials)

    @app.get("/aws/guest")
    async def aws_guest(
        credentials: AwsCredentials = Depends(auth.guest_credentials),
    ) -> dict[str, str | None]:
        """Unauthenticated-role credentials for a caller without a token."""
        return _described(credentials)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, user: CognitoUser = Depends(current_user)) -> None:
        await websocket.accept()
        name = user.username or user.sub
        try:
            while True:
                await websocket.send_text(f"{name}: {await websocket.receive_text()}")
        except WebSocketDisconnect:
            return

    _add_browser_routes(app, auth)
    if dev_issuer is not None:
        _add_dev_routes(app, dev_issuer)
        app.add_middleware(LoopbackHostOnly)
    return app


def _described(credentials: AwsCredentials) -> dict[str, str | None]:
    """What the AWS routes show of credentials: never the secret key or session token."""
    return {
        "identity_id": credentials.identity_id,
        "access_key_id": credentials.access_key_id,
        "expiration": credentials.expiration.isoformat(),
        "role_arn": credentials.role_arn,
    }


def _dev_sign_in(auth: CognitoAuth[CognitoUser], hosted_ui: str) -> None:
    """Browser sign-in against the embedded issuer's local hosted UI, with a session
    secret made for this run. Only the sessions point at it: Swagger UI keeps its
    bearer input (the local hosted UI answers no CORS for Swagger's token request)."""
    settings = auth.settings[0].model_copy(
        update={
            "oauth_url": hosted_ui,
            "session_secret": [SecretStr(secrets.token_urlsafe(32))],
        }
    )
    auth.sessions = BrowserSessions(settings, verifier=auth.verifier)
    auth.guest_identities = auth.sessions.guest_identities


def _add_browser_routes(app: FastAPI, auth: CognitoAuth[CognitoUser]) -> None:
    """``GET /``, ``POST /echo`` and, with sign-in configured, ``/auth/*`` (§13)."""
    if auth.sessions is not None:
        app.include_router(auth.login_router())

    @app.get("/", response_class=HTMLResponse)
    async def home(request: Request, user: CognitoUser | None = Depends(optional_user)) -> str:
        """Who you are, and every route with whether you would pass it."""
        return home_page(request, user, sign_in=auth.sessions is not None)

    @app.post("/echo")
    async def echo(request: Request, user: CognitoUser = Depends(current_user)) -> dict[str, Any]:
        raw = (await request.body()).decode("utf-8", "replace")
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        return {"username": user.username or user.sub, "body": body}


def _add_dev_routes(app: FastAPI, issuer: LocalIssuer) -> None:
    @app.get(f"/dev/{issuer.user_pool_id}/.well-known/jwks.json", include_in_schema=False)
    async def dev_jwks() -> dict[str, Any]:
        return issuer.jwks()

    @app.get("/dev/token", tags=["dev mode"], description=DEV_TOKEN_DESCRIPTION)
    async def dev_token(
        username: str = Query("alice", description=DEV_TOKEN_PARAMETERS["username"]),
        groups: str = Query("", description=DEV_TOKEN_PARAMETERS["groups"]),
        scopes: str = Query("", description=DEV_TOKEN_PARAMETERS["scopes"]),
        token_use: str = Query(
            "access", pattern="^(access|id)$", description=DEV_TOKEN_PARAMETERS["token_use"]
        ),
        expires_in: int = Query(
            3600, ge=1, le=MAX_EXPIRES_IN, description=DEV_TOKEN_PARAMETERS["expires_in"]
        ),
    ) -> dict[str, Any]:
        return mint_dev_token(
            issuer,
            username=username,
            groups=groups,
            scopes=scopes,
            token_use=token_use,
            expires_in=expires_in,
        )


class LoopbackHostOnly:
    """Dev mode answers only requests whose ``Host`` is a loopback name (others: 421).

    Binding loopback is not enough: a page on another site can make its own name
    resolve to 127.0.0.1 (DNS rebinding) and call this app from the browser, with
    its own name in ``Host``, to mint tokens.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = Headers(scope=scope).get("host")
        if is_loopback_authority(host):
            await self.app(scope, receive, send)
            return
        logger.warning("dev mode refused a request for Host %r (not loopback)", (host or "")[:80])
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": "misdirected"})
            return
        response = PlainTextResponse(
            "421 Misdirected Request: dev mode answers only 127.0.0.1, localhost and [::1]",
            status_code=421,
        )
        await response(scope, receive, send)


def _announce_dev_mode(base_url: str) -> None:
    mint = f"{base_url}/dev/token"
    lines = [
        "=" * 72,
        "DEV MODE: no COGNITO_USER_POOL_ID is set, so an embedded test issuer signs",
        "tokens. Nothing here is secure. Set the COGNITO_* settings for real use.",
        "=" * 72,
        "Try it:",
        f"  TOKEN=$(curl -s '{mint}?username=alice&groups=premium&scopes=orders/read'"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"token\"])')",
        f"  curl -s {base_url}/health",
        f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/me',
        f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/premium',
        f'  curl -s -H "Authorization: Bearer $TOKEN" {base_url}/orders',
        f"  curl -s -i {base_url}/me    # no token: 401",
        f"  # /aws/identity needs COGNITO_IDENTITY_POOL_ID; Swagger UI: {base_url}/docs",
        f"  # Browser sign-in (local hosted UI): open {base_url}/ and click Sign in",
    ]
    logger.warning("\n%s", "\n".join(lines))
