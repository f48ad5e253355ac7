"""Helpers for the browser-session tests: an app with sign-in, a cookie-keeping
client for it, and a sign-in through the local hosted UI over real HTTP.

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import PlainTextResponse, StreamingResponse

from fastapi_cognito_guard import CognitoAuth, CognitoUser
from fastapi_cognito_guard.sealing import Sealer
from fastapi_cognito_guard.sessions.session import Session, SessionCodec
from fastapi_cognito_guard.testing import LocalIssuer

SECRET = "first-session-secret-of-at-least-32-chars"
OTHER_SECRET = "another-session-secret-of-32-chars-or-more"
APP = "http://127.0.0.1:8000"
JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def make_app(issuer: LocalIssuer, **overrides: Any) -> FastAPI:
    """An app with the login router and routes of every kind behind the session."""
    overrides.setdefault("session_secret", SECRET)
    auth: CognitoAuth[CognitoUser] = CognitoAuth(issuer.settings(**overrides))
    app = FastAPI(lifespan=auth.lifespan)
    app.state.auth = auth
    app.include_router(auth.login_router())

    @app.get("/me")
    async def me(user: CognitoUser = Depends(auth.current_user)) -> dict[str, Any]:
        return {"username": user.username}

    @app.get("/optional")
    async def optional(user: CognitoUser | None = Depends(auth.optional_user)) -> dict[str, Any]:
        return {"username": user.username if user else None}

    @app.get("/page")
    async def page(user: CognitoUser = Depends(auth.login_required)) -> dict[str, Any]:
        return {"username": user.username}

    @app.post("/echo")
    async def echo(request: Request, user: CognitoUser = Depends(auth.current_user)) -> Any:
        return {"username": user.username, "body": (await request.body()).decode()}

    @app.get("/plain")
    async def plain(user: CognitoUser = Depends(auth.current_user)) -> PlainTextResponse:
        return PlainTextResponse(user.username or "")

    @app.get("/stream")
    async def stream(user: CognitoUser = Depends(auth.current_user)) -> StreamingResponse:
        async def parts() -> AsyncIterator[bytes]:
            yield b"hello "
            yield (user.username or "").encode()

        return StreamingResponse(parts())

    @app.websocket("/ws")
    async def ws(websocket: WebSocket, user: CognitoUser = Depends(auth.current_user)) -> None:
        await websocket.accept()
        await websocket.send_text(user.username or "")
        await websocket.close()

    return app


@asynccontextmanager
async def browser(app: FastAPI, base_url: str = APP) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan; a client that keeps cookies like a browser."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url) as client,
    ):
        yield client


async def start_sign_in(client: httpx.AsyncClient, next_path: str = "/") -> str:
    """``GET /auth/login``; the hosted UI's authorize URL it redirects to."""
    response = await client.get("/auth/login", params={"next": next_path})
    if response.status_code != 302:
        raise AssertionError(f"login answered {response.status_code}: {response.text}")
    return response.headers["location"]


async def authorize(url: str) -> str:
    """Follow the authorize URL on the hosted UI (``login_as`` set); the callback URL."""
    async with httpx.AsyncClient() as idp:
        response = await idp.get(url)
    if response.status_code != 302:
        raise AssertionError(f"authorize answered {response.status_code}: {response.text}")
    return response.headers["location"]


async def sign_in(
    client: httpx.AsyncClient, issuer: LocalIssuer, username: str = "alice", next_path: str = "/"
) -> httpx.Response:
    """A whole sign-in; returns the callback's response."""
    issuer.login_as = username
    callback = await authorize(await start_sign_in(client, next_path))
    return await client.get(callback)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def session_cookies(client: httpx.AsyncClient) -> dict[str, str]:
    return {name: value for name, value in client.cookies.items() if "fcg_session" in name}


def open_session(value: str, *secrets: str) -> Session | None:
    """Open a session cookie value with exactly these secrets."""
    return SessionCodec(Sealer(list(secrets) or [SECRET], "session-cookie")).open(value)


def seal_session(session: Session, secret: str = SECRET) -> str:
    return SessionCodec(Sealer([secret], "session-cookie")).seal(session)


def set_cookies(response: httpx.Response) -> list[str]:
    return response.headers.get_list("set-cookie")
