"""The minimal apps the HTTP and stampede benchmarks serve, and a uvicorn launcher.

Each app has ``GET /open`` (no auth), ``GET /bearer`` (FastAPI's own
``HTTPBearer`` security dependency, which reads the token and verifies nothing:
the floor any auth dependency pays) and ``GET /me`` (the verified caller's
``sub``), guarded by this library's ``current_user``, by fastapi-cognito's
``auth_required`` or by fastapi-cloudauth's ``Cognito`` dependency.

``python -m benchmarks._apps --port P --workers N`` (from the repository root)
serves ``create_app`` with ``uvicorn.run(..., factory=True, workers=N)`` on
127.0.0.1; the app is chosen by ``BENCH_APP`` (``guard``, ``fastapi-cognito``,
``cloudauth``), its keys come from ``BENCH_JWKS_URL`` and ``BENCH_CACHE=off``
turns this library's result cache off (``BENCH_CACHE=small`` keeps 256 entries, so
a client cycling through more distinct tokens misses on every request);
``BENCH_SESSION_SECRET`` and ``BENCH_OAUTH_URL`` turn browser sessions on (the
session-cookie benchmark).
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from fastapi import Depends, FastAPI, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from benchmarks import _peers
from fastapi_cognito_guard import CognitoAuth, CognitoUser, current_user

__all__ = ["APPS", "cloudauth_app", "create_app", "fastapi_cognito_app", "guard_app"]

POOL = "eu-central-1_Test"
CLIENT = "test-client"
REGION = "eu-central-1"


_bearer = HTTPBearer()


def _common_routes(app: FastAPI) -> None:
    @app.get("/open")
    async def open_route() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/bearer")
    async def bearer_route(
        credentials: HTTPAuthorizationCredentials = Security(_bearer),
    ) -> dict[str, int]:
        return {"length": len(credentials.credentials)}


def guard_app(
    jwks_url: str,
    *,
    cache: bool = True,
    prefetch: bool = True,
    **settings: Any,
) -> FastAPI:
    """This library: ``current_user`` on ``/me``; ``prefetch=False`` skips the lifespan's
    key prefetch (keys are fetched by the first requests instead)."""
    from fastapi_cognito_guard import CognitoSettings

    values: dict[str, Any] = {"user_pool_id": POOL, "client_ids": [CLIENT], "jwks_url": jwks_url}
    if not cache:
        values["result_cache_size"] = 0
    values.update(settings)
    auth: CognitoAuth[CognitoUser] = CognitoAuth(CognitoSettings(**values))
    app = FastAPI(lifespan=auth.lifespan if prefetch else None)
    if not prefetch:
        auth.init_app(app)
    app.state.bench_auth = auth
    _common_routes(app)

    @app.get("/me")
    async def me(user: CognitoUser = Depends(current_user)) -> dict[str, str]:
        return {"sub": user.sub}

    return app


def fastapi_cognito_app(jwks_url: str) -> FastAPI:
    """fastapi-cognito: ``auth_required`` on ``/me`` (keys fetched by the first request)."""
    auth = _peers.fastapi_cognito_auth(
        region=REGION, user_pool_id=POOL, client_id=CLIENT, jwks_url=jwks_url
    )
    app = FastAPI()
    _common_routes(app)

    @app.get("/me")
    async def me(user: Any = Depends(auth.auth_required)) -> dict[str, str]:
        return {"sub": user.cognito_id}

    return app


def cloudauth_app(jwks_url: str) -> FastAPI:
    """fastapi-cloudauth: its ``Cognito`` dependency on ``/me`` (keys fetched at construction)."""
    auth = _peers.cloudauth_dependency(
        region=REGION, user_pool_id=POOL, client_id=CLIENT, jwks_url=jwks_url
    )
    app = FastAPI()
    _common_routes(app)

    @app.get("/me")
    async def me(claims: Any = Depends(auth)) -> dict[str, str]:
        return {"sub": claims["sub"]}

    return app


APPS = {"guard": guard_app, "fastapi-cognito": fastapi_cognito_app, "cloudauth": cloudauth_app}


def _accept_one_connection_per_wakeup() -> None:
    """Share a burst of new connections between the worker processes.

    All workers accept from one listening socket, and asyncio accepts up to
    ``backlog`` queued connections per wake-up, so the load generator's 32
    connections, opened at once, mostly land on whichever worker wakes first and
    the other idles. Accepting one per wake-up lets every woken worker take its
    share, as happens anyway when connections arrive over time.
    """
    from asyncio import selector_events

    loop_class: Any = selector_events.BaseSelectorEventLoop
    accept = loop_class._accept_connection
    if getattr(accept, "_bench_one_per_wakeup", False):
        return

    def accept_one(
        self: Any,
        protocol_factory: Any,
        sock: Any,
        sslcontext: Any = None,
        server: Any = None,
        backlog: int = 100,
        *args: Any,
    ) -> Any:
        return accept(self, protocol_factory, sock, sslcontext, server, 1, *args)

    accept_one._bench_one_per_wakeup = True  # type: ignore[attr-defined]
    loop_class._accept_connection = accept_one


def create_app() -> FastAPI:
    """The app named by ``BENCH_APP``, configured from the ``BENCH_*`` environment.

    This is the uvicorn factory; in each worker it also spreads new connections
    evenly (``_accept_one_connection_per_wakeup``).
    """
    _accept_one_connection_per_wakeup()
    name = os.environ.get("BENCH_APP", "guard")
    jwks_url = os.environ["BENCH_JWKS_URL"]
    if name == "guard":
        cache = os.environ.get("BENCH_CACHE", "on")
        settings: dict[str, Any] = {"result_cache_size": 256} if cache == "small" else {}
        if os.environ.get("BENCH_SESSION_SECRET"):  # browser sessions on (cookie vs bearer)
            settings["session_secret"] = os.environ["BENCH_SESSION_SECRET"]
            settings["oauth_url"] = os.environ["BENCH_OAUTH_URL"]
        return guard_app(jwks_url, cache=cache != "off", **settings)
    return APPS[name](jwks_url)


def _keep_tcp_nodelay() -> None:
    """Work around uvicorn issue #3149 (open): with ``workers > 1`` the listening socket is
    created with ``proto=0``, asyncio then skips ``TCP_NODELAY`` on accepted connections,
    and every keep-alive request waits ~40 ms for a delayed ACK. Re-wrapping the socket
    (protocol auto-detected: ``IPPROTO_TCP``) makes 2 workers measure the app, not Nagle.
    """
    import socket

    from uvicorn.config import Config

    bind_socket = Config.bind_socket

    def bind_tcp_socket(self: Config) -> socket.socket:
        sock = bind_socket(self)
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.proto == 0:
            sock = socket.socket(fileno=sock.detach())
        return sock

    Config.bind_socket = bind_tcp_socket  # type: ignore[method-assign]


def main() -> None:
    """Serve ``create_app`` on 127.0.0.1 with uvicorn (``--workers`` processes)."""
    import uvicorn

    _keep_tcp_nodelay()

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "benchmarks._apps:create_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
