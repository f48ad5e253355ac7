"""Whole-app protection: ``CognitoAuthMiddleware`` and ``CognitoAuthBackend``.

What the tests here prove, one behaviour each:

* ``CognitoAuthMiddleware`` (added with ``app.add_middleware``) leaves its
  ``exclude_paths`` open without a token, ``/docs/oauth2-redirect`` included
  (prefix match), but not look-alike paths such as ``/healthz``; every other
  route is a 401 ``missing_token`` without a token, a 401 ``invalid_token``
  challenge with a bad one, and a 200 with a valid one, where
  ``request.state.user`` and ``request.scope["user"]`` are the ``CognitoUser``.
* A CORS preflight (``OPTIONS`` with ``Origin`` and
  ``Access-Control-Request-Method``) passes through to the ``CORSMiddleware``
  inside it, while a plain ``OPTIONS`` is guarded.
* Unobtainable signing keys answer 503 ``keys_unavailable`` with ``Retry-After``.
* WebSockets are accepted with the token in the ``Authorization`` header or the
  ``access_token`` query parameter, and closed with 1008 without a token or with
  a bad one.
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

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoAuthBackend,
    CognitoAuthMiddleware,
    CognitoUser,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer

if TYPE_CHECKING:
    from starlette.testclient import TestClient

ORIGIN = "https://app.example.com"
EXCLUDED = ["/health", "/docs", "/openapi.json"]


def forged_token(issuer: LocalIssuer) -> str:
    """alice's claims under another token's signature: fails ``bad_signature``."""
    alice = issuer.access_token("alice")
    mallory = issuer.access_token("mallory")
    return f"{alice.rsplit('.', 1)[0]}.{mallory.rsplit('.', 1)[1]}"


def protected_app(auth: CognitoAuth[Any]) -> FastAPI:
    """A FastAPI app behind ``CognitoAuthMiddleware``, with CORS handled inside it."""
    app = FastAPI()

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

    @app.websocket("/ws")
    async def echo(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text(websocket.scope["user"].username)
        await websocket.close()

    # add_middleware puts the last one outermost: the guard sees requests before CORS.
    app.add_middleware(
        CORSMiddleware, allow_origins=[ORIGIN], allow_methods=["*"], allow_headers=["*"]
    )
    app.add_middleware(CognitoAuthMiddleware, auth=auth, exclude_paths=EXCLUDED)
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


@pytest.mark.parametrize("path", ["/health", "/docs", "/docs/oauth2-redirect", "/openapi.json"])
async def test_excluded_paths_are_open_without_a_token(
    client: httpx.AsyncClient, path: str
) -> None:
    response = await client.get(path)
    assert response.status_code == 200


@pytest.mark.parametrize("path", ["/private", "/healthz", "/no-such-route"])
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


async def test_cors_preflight_passes_to_the_app(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/private",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == ORIGIN


async def test_plain_options_is_guarded(client: httpx.AsyncClient) -> None:
    response = await client.options("/private")
    assert response.status_code == 401
    assert response.json()["code"] == "missing_token"


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
