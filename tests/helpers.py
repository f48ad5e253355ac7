"""Plain helpers shared by several test modules (fixtures live in ``conftest.py``).

PYTEST_DONT_REWRITE (no asserts here).
"""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import FastAPI

__all__ = [
    "FakeClock",
    "b64url",
    "b64url_uint",
    "bearer",
    "claims_of",
    "public_jwk",
    "running",
    "websocket_refusal",
]


# -- HTTP ----------------------------------------------------------------------------


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and give an in-process HTTP client for it."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c,
    ):
        yield c


def websocket_refusal(client: Any, path: str, subprotocols: list[str]) -> tuple[str | None, int]:
    """Open a WebSocket with Starlette's TestClient and read until it is closed: the
    subprotocol the accept named and the close code."""
    from starlette.websockets import WebSocketDisconnect

    with client.websocket_connect(path, subprotocols=subprotocols) as ws:
        try:
            ws.receive_text()
        except WebSocketDisconnect as closed:
            return ws.accepted_subprotocol, closed.code
    return ws.accepted_subprotocol, 1000


# -- time ----------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 10_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# -- keys ----------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def claims_of(token: str) -> dict[str, Any]:
    """The claims of a JWT, decoded without any check."""
    segment = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return decoded


def b64url_uint(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


def public_jwk(key: rsa.RSAPrivateKey, kid: str = "k1", **overrides: Any) -> dict[str, Any]:
    """The RS256 JWK Cognito would publish for ``key``; an override of None removes
    that member."""
    numbers = key.public_key().public_numbers()
    jwk: dict[str, Any] = {
        "alg": "RS256",
        "e": b64url_uint(numbers.e),
        "kid": kid,
        "kty": "RSA",
        "n": b64url_uint(numbers.n),
        "use": "sig",
        **overrides,
    }
    return {name: value for name, value in jwk.items() if value is not None}
