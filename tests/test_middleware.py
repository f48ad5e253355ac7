"""Whole-app protection: ``CognitoAuthMiddleware`` and ``CognitoAuthBackend``.

What the tests here prove, one behaviour each:

* ``CognitoAuthMiddleware`` (added with ``app.add_middleware``) by default leaves
  exactly ``/health`` and the FastAPI app's own docs paths open (as the app
  configured them), not what lies below them (``/docs/anything``) nor look-alikes
  (``/healthz``); every other route is a 401 ``missing_token`` without a token, a
  401 ``invalid_token`` challenge with a bad one, and a 200 with a valid one, where
  ``request.state.user`` and ``request.scope["user"]`` are the ``CognitoUser``.
* ``exclude_paths`` entries match exactly; ``/static/*`` opens what lies below
  ``/static/`` but not ``/static``; ``"/"`` opens only the root; matching happens
  within the app (behind ``root_path`` or a ``Mount``). A bare string, an empty
  entry, a relative one or a stray ``*`` is a ``ValueError`` at construction.
* No method is exempt: a CORS preflight reaches the app only through a
  ``CORSMiddleware`` added outside the guard; an ``OPTIONS`` handler is guarded.
* Unobtainable signing keys answer 503 ``keys_unavailable`` with ``Retry-After``.
* WebSockets are accepted with the token in the ``Authorization`` header, the
  ``cognito-bearer`` subprotocol pair (the accept then names ``cognito-bearer``
  though the route calls a plain ``accept()``) or the ``access_token`` query
  parameter (removed from the query string the app and the server see), and
  closed with 1008 without a token or with a bad one. Over uvicorn, neither way
  puts the token into its log.
* ``CognitoAuthBackend`` in Starlette's ``AuthenticationMiddleware`` gives
  ``request.user`` (authenticated, display name), ``request.auth.scopes`` (token
  scopes and Cognito groups) and makes ``@requires("premium")`` pass with the group
  and 403 without it; a bad token is a 401 JSON ``{"detail", "code"}`` and
  unobtainable keys a 503, through ``CognitoAuthBackend.on_error``.
"""

import warnings
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from fastapi import FastAPI, Request, WebSocket
from starlette.applications import Starlette
from starlette.authentication import requires
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoAuthBackend,
    CognitoAuthMiddleware,
    CognitoUser,
)
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.web import BEARER_SUBPROTOCOL
from tests.helpers import bearer, websocket_refusal
from tests.uvicorn_server import uvicorn_server

if TYPE_CHECKING:
    from starlette.testclient import TestClient

ORIGIN = "https://app.example.com"
DEFAULT_OPEN = ["/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"]


def forged_token(issuer: LocalIssuer) -> str:
    """alice's claims under another token's signature: fails ``bad_signature``."""
    alice = issuer.access_token("alice")
    mallory = issuer.access_token("mallory")
    return f"{alice.rsplit('.', 1)[0]}.{mallory.rsplit('.', 1)[1]}"


def protected_app(auth: CognitoAuth[Any], **fastapi_options: Any) -> FastAPI:
    """A FastAPI app behind ``CognitoAuthMiddleware`` (default exclusions), with CORS
    answered outside it."""
    app = FastAPI(**fastapi_options)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "guarded"}

    @app.get("/private")
    async def private(request: Request) -> dict[str, Any]:
        state_user = request.state.user
        scope_user = request.scope["user"]
        return {
            "username": state_user.username,
            "state_user_is_cognito_user": isinstance(state_user, CognitoUser),
            "scope_user_is_state_user": scope_user is state_user,
        }

    @app.get("/static/{name}")
    async def static(name: str) -> dict[str, str]:
        return {"file": name}

    @app.get("/")
    async def root() -> dict[str, str]:
        return {"root": "yes"}

    @app.options("/private")
    async def private_options() -> dict[str, str]:
        return {"allow": "GET"}

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.scope["user"].username)
        await websocket.send_text(websocket.scope["query_string"].decode())
        await websocket.close()

    app.add_middleware(CognitoAuthMiddleware, auth=auth)
    # add_middleware puts the last one outermost: CORS answers preflights before the guard.
    app.add_middleware(
        CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"]
    )
    return app


@pytest.fixture
async def unavailable_auth(
    issuer: LocalIssuer, closed_jwks_url: str
) -> AsyncIterator[CognitoAuth[Any]]:
    auth = CognitoAuth(issuer.settings(jwks_url=closed_jwks_url))
    yield auth
    await auth.aclose()


async def asgi_client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client(auth: CognitoAuth[Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with await asgi_client(protected_app(auth)) as c:
        yield c


# -- CognitoAuthMiddleware over HTTP ---------------------------------------------------


@pytest.mark.parametrize("path", DEFAULT_OPEN)
async def test_default_exclusions_open_health_and_the_docs_without_a_token(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "path",
    ["/private", "/healthz", "/no-such-route", "/health/anything", "/docs/anything", "/"],
)
async def test_other_paths_are_401_without_a_token(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert response.json() == {"detail": response.json()["detail"], "code": "missing_token"}


async def test_guarded_route_is_200_with_a_valid_token(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await client.get("/healthz", headers=bearer(issuer.access_token()))
    assert response.status_code == 200
    assert response.json() == {"status": "guarded"}


async def test_user_is_on_request_state_and_scope(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await client.get("/private", headers=bearer(issuer.access_token("alice")))
    assert response.status_code == 200
    assert response.json() == {
        "username": "alice",
        "state_user_is_cognito_user": True,
        "scope_user_is_state_user": True,
    }


async def test_bad_token_is_401_invalid_token_without_echoing_it(
    client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = forged_token(issuer)
    response = await client.get("/private", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token", error_description="'
    )
    assert response.json() == {"detail": response.json()["detail"], "code": "bad_signature"}
    assert token.rsplit(".", 1)[1] not in response.text


PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization",
}


async def test_cors_preflight_is_answered_by_cors_middleware_outside_the_guard(
    client: httpx.AsyncClient,
) -> None:
    response = await client.options("/private", headers=PREFLIGHT)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_preflight_shaped_options_is_guarded_without_cors_outside(
    auth: CognitoAuth[Any],
) -> None:
    app = FastAPI()

    @app.options("/private")
    async def private_options() -> dict[str, str]:
        return {"allow": "GET"}

    app.add_middleware(
        CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"]
    )
    app.add_middleware(CognitoAuthMiddleware, auth=auth)  # outermost: sees it first
    async with await asgi_client(app) as c:
        response = await c.options("/private", headers=PREFLIGHT)
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


async def test_options_handler_is_guarded(client: httpx.AsyncClient) -> None:
    response = await client.options("/private")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


# -- exclude_paths ---------------------------------------------------------------------


def excluding(auth: CognitoAuth[Any], exclude_paths: Any) -> FastAPI:
    """``protected_app`` with its guard replaced by one excluding ``exclude_paths``."""
    app = protected_app(auth)
    app.user_middleware = [m for m in app.user_middleware if m.cls is not CognitoAuthMiddleware]
    app.add_middleware(CognitoAuthMiddleware, auth=auth, exclude_paths=exclude_paths)
    return app


async def status_of(app: Any, path: str, **transport: Any) -> int:
    asgi = httpx.ASGITransport(app=app, **transport)
    async with httpx.AsyncClient(transport=asgi, base_url="http://test") as c:
        return (await c.get(path)).status_code


@pytest.mark.parametrize(
    "exclude_paths",
    [
        pytest.param("/health", id="bare-string"),
        pytest.param([""], id="empty-entry"),
        pytest.param(["health"], id="relative-entry"),
        pytest.param(["/health", None], id="not-a-string"),
        pytest.param(["/static*"], id="star-without-slash"),
        pytest.param(["/*/admin"], id="star-inside"),
    ],
)
def test_bad_exclude_paths_are_a_value_error_at_construction(
    auth: CognitoAuth[Any], exclude_paths: Any
) -> None:
    with pytest.raises(ValueError, match="exclude_paths"):
        CognitoAuthMiddleware(FastAPI(), auth=auth, exclude_paths=exclude_paths)


@pytest.mark.parametrize(("path", "status"), [("/health", 200), ("/health/x", 401)])
async def test_exclude_entry_matches_one_path_exactly(
    auth: CognitoAuth[Any], path: str, status: int
) -> None:
    assert await status_of(excluding(auth, ["/health"]), path) == status


@pytest.mark.parametrize(("path", "status"), [("/", 200), ("/private", 401), ("/health", 401)])
async def test_root_entry_opens_only_the_root(
    auth: CognitoAuth[Any], path: str, status: int
) -> None:
    assert await status_of(excluding(auth, ["/"]), path) == status


@pytest.mark.parametrize(
    ("path", "status"), [("/static/app.js", 200), ("/static", 401), ("/staticx", 401)]
)
async def test_star_entry_opens_the_paths_below_it_only(
    auth: CognitoAuth[Any], path: str, status: int
) -> None:
    assert await status_of(excluding(auth, ["/static/*"]), path) == status


async def test_empty_exclude_paths_guard_everything(auth: CognitoAuth[Any]) -> None:
    assert await status_of(excluding(auth, []), "/health") == 401


@pytest.mark.parametrize(
    ("path", "status"),
    [("/api-docs", 200), ("/spec.json", 200), ("/docs", 401), ("/redoc", 401)],
)
async def test_default_exclusions_follow_the_apps_own_docs_urls(
    auth: CognitoAuth[Any], path: str, status: int
) -> None:
    app = protected_app(auth, docs_url="/api-docs", openapi_url="/spec.json", redoc_url=None)
    assert await status_of(app, path) == status


@pytest.mark.parametrize(("path", "status"), [("/api/health", 200), ("/api/private", 401)])
async def test_exclusions_match_within_the_app_behind_a_root_path(
    auth: CognitoAuth[Any], path: str, status: int
) -> None:
    assert await status_of(protected_app(auth), path, root_path="/api") == status


@pytest.mark.parametrize(
    ("path", "status"), [("/svc/health", 200), ("/svc/docs", 200), ("/svc/private", 401)]
)
async def test_exclusions_match_within_a_mounted_app(
    auth: CognitoAuth[Any], path: str, status: int
) -> None:
    parent = FastAPI()
    parent.mount("/svc", protected_app(auth))
    assert await status_of(parent, path) == status


async def test_unavailable_keys_are_503_with_retry_after(
    unavailable_auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    async with await asgi_client(protected_app(unavailable_auth)) as c:
        response = await c.get("/private", headers=bearer(issuer.access_token()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json() == {"detail": response.json()["detail"], "code": "keys_unavailable"}


# -- CognitoAuthMiddleware over WebSocket ----------------------------------------------


@pytest.fixture
def ws_client(auth: CognitoAuth[Any]) -> "TestClient":
    """Starlette's TestClient (for WebSockets), imported without its httpx deprecation warning."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using .httpx. with .starlette.testclient")
        from starlette.testclient import TestClient

    return TestClient(protected_app(auth))


def test_websocket_accepts_a_token_in_the_authorization_header(
    ws_client: "TestClient", issuer: LocalIssuer
) -> None:
    with ws_client.websocket_connect("/ws", headers=bearer(issuer.access_token("alice"))) as ws:
        assert ws.receive_text() == "alice"


def test_websocket_accepts_a_token_in_the_access_token_query(
    ws_client: "TestClient", issuer: LocalIssuer
) -> None:
    with ws_client.websocket_connect(f"/ws?access_token={issuer.access_token('alice')}") as ws:
        assert ws.receive_text() == "alice"


def test_websocket_accepts_a_token_in_the_bearer_subprotocol_and_names_it(
    ws_client: "TestClient", issuer: LocalIssuer
) -> None:
    offered = [BEARER_SUBPROTOCOL, issuer.access_token("alice")]
    with ws_client.websocket_connect("/ws", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == BEARER_SUBPROTOCOL  # the route called accept()
        assert ws.receive_text() == "alice"


def test_websocket_query_token_is_removed_from_the_query_string(
    ws_client: "TestClient", issuer: LocalIssuer
) -> None:
    token = issuer.access_token("alice")
    with ws_client.websocket_connect(f"/ws?room=1&access_token={token}&x=%20y") as ws:
        assert ws.receive_text() == "alice"
        assert ws.receive_text() == "room=1&x=%20y"


def test_websocket_rejected_through_the_subprotocol_still_names_it_and_closes_1008(
    ws_client: "TestClient", issuer: LocalIssuer
) -> None:
    offered = [BEARER_SUBPROTOCOL, forged_token(issuer)]
    assert websocket_refusal(ws_client, "/ws", offered) == (BEARER_SUBPROTOCOL, 1008)


def test_websocket_without_a_token_is_closed_with_1008(ws_client: "TestClient") -> None:
    with pytest.raises(WebSocketDisconnect) as closed, ws_client.websocket_connect("/ws") as ws:
        ws.receive_text()
    assert closed.value.code == 1008


@pytest.mark.parametrize("where", ["header", "query"])
def test_websocket_with_a_bad_token_is_closed_with_1008(
    ws_client: "TestClient", issuer: LocalIssuer, where: str
) -> None:
    token = forged_token(issuer)
    path, headers = (
        ("/ws", bearer(token)) if where == "header" else (f"/ws?access_token={token}", {})
    )
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        ws_client.websocket_connect(path, headers=headers) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1008


# -- over uvicorn: no token in its log -----------------------------------------------

WS_IMPLEMENTATIONS = [
    pytest.param(
        "websockets",
        marks=pytest.mark.filterwarnings(  # uvicorn's legacy implementation, still the default
            "ignore::DeprecationWarning", "ignore:The .websockets. implementation is deprecated"
        ),
    ),
    "websockets-sansio",
]


@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
def test_query_token_is_not_in_uvicorns_log(
    auth: CognitoAuth[Any], issuer: LocalIssuer, ws: str
) -> None:
    token = issuer.access_token("alice")
    with uvicorn_server(protected_app(auth), ws=ws) as (url, log):
        ws_url = url.replace("http", "ws", 1)
        with connect(f"{ws_url}/ws?room=1&access_token={token}") as socket:
            assert socket.recv(timeout=5) == "alice"
    assert "/ws?room=1" in log.text  # the access line was written...
    assert token not in log.text  # ...without the token
    assert token.rsplit(".", 1)[1] not in log.text


@pytest.mark.parametrize("ws", WS_IMPLEMENTATIONS)
def test_subprotocol_token_is_accepted_over_uvicorn_and_not_logged(
    auth: CognitoAuth[Any], issuer: LocalIssuer, ws: str
) -> None:
    token = issuer.access_token("alice")
    with uvicorn_server(protected_app(auth), ws=ws) as (url, log):
        ws_url = url.replace("http", "ws", 1)
        subprotocols = [Subprotocol(BEARER_SUBPROTOCOL), Subprotocol(token)]
        with connect(f"{ws_url}/ws", subprotocols=subprotocols) as socket:
            assert socket.subprotocol == BEARER_SUBPROTOCOL
            assert socket.recv(timeout=5) == "alice"
    assert "[accepted]" in log.text
    assert token.rsplit(".", 1)[1] not in log.text


# -- CognitoAuthBackend in Starlette's AuthenticationMiddleware ------------------------


def backend_app(auth: CognitoAuth[Any]) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        user = request.user
        return JSONResponse(
            {
                "is_authenticated": user.is_authenticated,
                "display_name": user.display_name,
                "scopes": request.auth.scopes,
            }
        )

    @requires("premium")
    async def premium(request: Request) -> JSONResponse:
        return JSONResponse({"premium": True})

    return Starlette(
        routes=[Route("/whoami", whoami), Route("/premium", premium)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=CognitoAuthBackend(auth),
                on_error=CognitoAuthBackend.on_error,
            )
        ],
    )


@pytest.fixture
async def backend_client(auth: CognitoAuth[Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with await asgi_client(backend_app(auth)) as c:
        yield c


async def test_backend_authenticates_the_user(
    backend_client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await backend_client.get("/whoami", headers=bearer(issuer.access_token("alice")))
    assert response.status_code == 200
    assert response.json()["is_authenticated"] is True
    assert response.json()["display_name"] == "alice"


async def test_backend_scopes_hold_token_scopes_and_groups(
    backend_client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.access_token(groups=["premium", "staff"], scopes=["orders/read", "openid"])
    response = await backend_client.get("/whoami", headers=bearer(token))
    assert set(response.json()["scopes"]) == {"orders/read", "openid", "premium", "staff"}


async def test_backend_without_a_token_is_anonymous(backend_client: httpx.AsyncClient) -> None:
    response = await backend_client.get("/whoami")
    assert response.status_code == 200
    assert response.json() == {"is_authenticated": False, "display_name": "", "scopes": []}


async def test_requires_group_passes_with_the_group(
    backend_client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.access_token(groups=["premium"])
    response = await backend_client.get("/premium", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"premium": True}


@pytest.mark.parametrize("groups", [[], ["staff"]])
async def test_requires_group_is_403_without_the_group(
    backend_client: httpx.AsyncClient, issuer: LocalIssuer, groups: list[str]
) -> None:
    response = await backend_client.get(
        "/premium", headers=bearer(issuer.access_token(groups=groups))
    )
    assert response.status_code == 403


async def test_backend_bad_token_is_401_json_with_code(
    backend_client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await backend_client.get("/whoami", headers=bearer(forged_token(issuer)))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(
        'Bearer realm="api", error="invalid_token"'
    )
    assert response.json() == {"detail": response.json()["detail"], "code": "bad_signature"}


async def test_backend_unavailable_keys_are_503_with_retry_after(
    unavailable_auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    async with await asgi_client(backend_app(unavailable_auth)) as c:
        response = await c.get("/whoami", headers=bearer(issuer.access_token()))
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["code"] == "keys_unavailable"
