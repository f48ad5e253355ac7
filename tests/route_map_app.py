"""An app with every kind of guard, for the route map's tests and its CLI (``app``).

``build(extra_open=..., me_guarded=...)`` varies it the way a careless change would:
a new open route, a guard removed.

PYTHONPATH-importable as ``tests.route_map_app:app``. PYTEST_DONT_REWRITE.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Security, WebSocket
from starlette.authentication import requires

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoAuthMiddleware,
    CognitoUser,
    CurrentUser,
    current_user,
    login_required,
    optional_user,
    require_any,
    require_auth,
    require_group,
    require_scope,
)
from fastapi_cognito_guard.testing import LocalIssuer

POOL, ADMIN_POOL = "eu-central-1_Main", "eu-central-1_Admin"
issuer = LocalIssuer(user_pool_id=POOL, client_id="main-client", key_bits=1024)
admin_issuer = LocalIssuer(user_pool_id=ADMIN_POOL, client_id="admin-client", key_bits=1024)
SECRET = "route-map-session-secret-of-32-chars"


def tenant(request: Request) -> str:
    """A user's own dependency: the library cannot tell what it lets through."""
    return request.headers.get("x-tenant", "")


def build(*, extra_open: bool = False, me_guarded: bool = True) -> FastAPI:
    """The app; ``extra_open`` adds ``GET /new`` unguarded, ``me_guarded=False``
    drops the guard of ``GET /me``."""
    auth: CognitoAuth[CognitoUser] = CognitoAuth(
        issuer.settings(oauth_url="http://127.0.0.1:9", session_secret=SECRET)
    )
    app = FastAPI(lifespan=auth.lifespan)
    app.include_router(auth.login_router())

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    if me_guarded:

        @app.get("/me")
        async def me(user: CurrentUser) -> str:
            return user.sub

    else:

        @app.get("/me")
        async def me_open() -> str:
            return "anyone"

    @app.get("/hello")
    async def hello(user: Annotated[CognitoUser | None, Depends(optional_user)]) -> str:
        return "hi"

    router = APIRouter(prefix="/shop")

    @router.get("/premium")
    async def premium(user: Annotated[CognitoUser, Depends(require_group("premium"))]) -> str:
        return "premium"

    @router.get("/staff")
    async def staff(
        user: Annotated[CognitoUser, Depends(require_group("staff", "admin", all=True))],
    ) -> str:
        return "staff"

    @router.get("/orders")
    async def orders(user: Annotated[CognitoUser, Depends(require_scope("orders/read"))]) -> str:
        return "orders"

    @router.get("/reports")
    async def reports(
        user: Annotated[
            CognitoUser, Depends(require_scope("reports/read", "reports/all", all=False))
        ],
    ) -> str:
        return "reports"

    @router.get("/either")
    async def either(
        user: Annotated[CognitoUser, Depends(require_any(groups=["ops"], scopes=["ops/read"]))],
    ) -> str:
        return "either"

    @router.get("/declared")
    async def declared(
        user: Annotated[CognitoUser, Security(current_user, scopes=["shop/write"])],
    ) -> str:
        return "declared"

    app.include_router(router)

    @app.get("/main-pool-only")
    async def main_pool(user: Annotated[CognitoUser, Depends(auth.require_pool(POOL))]) -> str:
        return "main"

    @app.get("/active")
    async def active(user: Annotated[CognitoUser, Depends(auth.require_active_session)]) -> str:
        return "active"

    @app.get("/recent")
    async def recent(
        user: Annotated[CognitoUser, Depends(require_auth(max_age=300, amr=["mfa"]))],
    ) -> str:
        return "recent"

    @app.get("/page")
    async def page(user: Annotated[CognitoUser, Depends(login_required)]) -> str:
        return "page"

    @app.get("/tenant")
    async def by_tenant(name: Annotated[str, Depends(tenant)]) -> str:
        return name

    @app.get("/tenant-user")
    async def tenant_user(name: Annotated[str, Depends(tenant)], user: CurrentUser) -> str:
        return name

    @app.get("/decorated")
    @requires("authenticated")
    async def checked(request: Request) -> str:
        return "checked by the decorator"

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: CurrentUser) -> None:
        await websocket.accept()
        await websocket.close()

    if extra_open:

        @app.get("/new")
        async def new() -> str:
            return "forgot the guard"

    admin_auth: CognitoAuth[CognitoUser] = CognitoAuth(admin_issuer.settings())
    admin = FastAPI()
    admin_auth.init_app(admin)

    @admin.get("/whoami")
    async def whoami(user: CurrentUser) -> str:
        return user.sub

    app.mount("/admin", admin)

    service = FastAPI()
    service.add_middleware(CognitoAuthMiddleware, auth=auth, exclude_paths=["/health", "/public/*"])

    @service.get("/orders")
    async def service_orders(request: Request) -> Any:
        return request.state.user.sub

    @service.get("/health")
    async def service_health() -> str:
        return "ok"

    @service.get("/public/catalog")
    async def catalog() -> str:
        return "catalog"

    app.mount("/svc", service)
    return app


app = build()
