"""An API guarded by fastapi-cognito-guard, using each of its features.

Configured by the ``COGNITO_*`` environment. With ``COGNITO_USER_POOL_ID`` unset
or empty it runs in dev mode: an embedded ``LocalIssuer`` signs tokens, its JWKS
is served by this app, and ``GET /dev/token`` mints tokens. Dev mode is only
reachable when no real settings are given, and only on loopback (``__main__``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket, WebSocketDisconnect

from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    current_user,
    require_group,
    require_scope,
)
from fastapi_cognito_guard.testing import LocalIssuer

logger = logging.getLogger("example_app")

DEV_POOL_ID = "eu-central-1_DevPool"
DEV_CLIENT_ID = "example-app"


def dev_mode_requested(environ: Mapping[str, str] | None = None) -> bool:
    """Dev mode runs only when no user pool is configured: the id unset, empty or blank."""
    pool_id = (environ if environ is not None else os.environ).get("COGNITO_USER_POOL_ID", "")
    return not pool_id.strip()


def _split(value: str) -> list[str]:
    return [part for part in value.replace(",", " ").split() if part]


def create_app(
    settings: CognitoSettings | None = None,
    *,
    dev_issuer: LocalIssuer | None = None,
    base_url: str = "http://127.0.0.1:8000",
) -> FastAPI:
    """Build the example API; ``dev_issuer`` (dev mode) serves and signs its own keys."""
    if dev_issuer is not None:
        settings = dev_issuer.settings(
            jwks_url=f"{base_url}/dev/{dev_issuer.user_pool_id}/.well-known/jwks.json"
        )
    auth: CognitoAuth[CognitoUser] = CognitoAuth(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if dev_issuer is None:
            async with auth.lifespan(app):
                yield
            return
        # The app cannot fetch its own JWKS before it listens: seed the keys.
        auth.init_app(app)
        auth.verifier.cache_jwks(dev_issuer.jwks())
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

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

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

    if dev_issuer is not None:
        _add_dev_routes(app, dev_issuer)
    return app


def _described(credentials: AwsCredentials) -> dict[str, str | None]:
    """What the AWS routes show of credentials: never the secret key or session token."""
    return {
        "identity_id": credentials.identity_id,
        "access_key_id": credentials.access_key_id,
        "expiration": credentials.expiration.isoformat(),
        "role_arn": credentials.role_arn,
    }


def _add_dev_routes(app: FastAPI, issuer: LocalIssuer) -> None:
    @app.get(f"/dev/{issuer.user_pool_id}/.well-known/jwks.json", include_in_schema=False)
    async def dev_jwks() -> dict[str, Any]:
        return issuer.jwks()

    @app.get("/dev/token", tags=["dev mode"])
    async def dev_token(
        username: str = "alice",
        groups: str = Query("", description="comma- or space-separated"),
        scopes: str = Query("", description="comma- or space-separated"),
        token_use: str = Query("access", pattern="^(access|id)$"),
    ) -> dict[str, Any]:
        """Mint a token from the embedded dev issuer (dev mode only)."""
        if token_use == "id":
            token = issuer.id_token(
                username, email=f"{username}@example.com", groups=_split(groups)
            )
        else:
            token = issuer.access_token(
                username,
                groups=_split(groups),
                scopes=["aws.cognito.signin.user.admin", *_split(scopes)],
            )
        return {"token": token, "token_type": "Bearer", "token_use": token_use, "expires_in": 3600}


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
    ]
    logger.warning("\n%s", "\n".join(lines))
