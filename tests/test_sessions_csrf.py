"""Cross-site request forgery and cross-site WebSocket hijacking: a cookie-authenticated
unsafe request or WebSocket handshake must show a trusted origin (``Origin``, else
``Sec-Fetch-Site: same-origin``, else ``Referer``); bearer requests are exempt."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from fastapi_cognito_guard import CognitoAuthMiddleware
from fastapi_cognito_guard.sessions.csrf import trusted_request
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer
from tests.sessions_support import APP, browser, make_app, sign_in

FOREIGN = "https://evil.example"


@pytest.fixture
def issuer(cognito_issuer_session: LocalIssuer) -> LocalIssuer:
    return cognito_issuer_session


def scope(method: str = "POST", **headers: str) -> dict[str, Any]:
    raw = [(b"host", b"127.0.0.1:8000")]
    raw += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": "http", "method": method, "scheme": "http", "headers": raw}


@pytest.mark.parametrize(
    ("headers", "trusted"),
    [
        ({"origin": APP}, True),
        ({"origin": "http://127.0.0.1:8000:80"}, False),
        ({"origin": "HTTP://127.0.0.1:8000"}, True),
        ({"origin": FOREIGN}, False),
        ({"origin": "null"}, False),
        ({"origin": FOREIGN, "sec_fetch_site": "same-origin"}, False),
        ({"sec_fetch_site": "same-origin"}, True),
        ({"sec_fetch_site": "same-site"}, False),
        ({"sec_fetch_site": "cross-site", "referer": f"{APP}/x"}, False),
        ({"referer": f"{APP}/page"}, True),
        ({"referer": f"{FOREIGN}/page"}, False),
        ({}, False),
    ],
)
def test_origin_evidence_in_order(headers: dict[str, str], trusted: bool) -> None:
    assert trusted_request(scope(**headers), []) is trusted


def test_configured_trusted_origins_replace_the_apps_own() -> None:
    assert trusted_request(scope(origin="https://app.example"), ["https://app.example"])
    assert not trusted_request(scope(origin=APP), ["https://app.example"])


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"origin": FOREIGN}, 403),
        ({"origin": APP}, 200),
        ({"sec-fetch-site": "same-origin"}, 200),
        ({"sec-fetch-site": "cross-site"}, 403),
        ({"referer": f"{APP}/form"}, 200),
        ({}, 403),
    ],
)
async def test_cookie_authenticated_post_needs_a_trusted_origin(
    issuer: LocalIssuer, headers: dict[str, str], status: int
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.post("/echo", content=b"hi", headers=headers)
    assert response.status_code == status
    if status == 403:
        assert response.json()["code"] == "csrf_rejected"


async def test_bearer_request_from_a_foreign_origin_is_not_csrf_checked(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        headers = {"origin": FOREIGN, **bearer(issuer.access_token("bob"))}
        response = await client.post("/echo", content=b"hi", headers=headers)
    assert response.status_code == 200
    assert response.json()["username"] == "bob"


async def test_cookie_get_from_a_foreign_origin_is_allowed(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.get("/me", headers={"origin": FOREIGN})
    assert response.status_code == 200


async def test_configured_trusted_origin_may_post_with_the_cookie(issuer: LocalIssuer) -> None:
    app = make_app(issuer, trusted_origins=["https://spa.example"])
    async with browser(app) as client:
        await sign_in(client, issuer)
        allowed = await client.post("/echo", headers={"origin": "https://spa.example"})
        refused = await client.post("/echo", headers={"origin": APP})
    assert allowed.status_code == 200
    assert refused.status_code == 403


@pytest.fixture
def ws_client(issuer: LocalIssuer) -> Iterator[TestClient]:
    """A synchronous client (WebSockets) holding a signed-in session cookie."""
    issuer.login_as = "alice"
    with TestClient(make_app(issuer), base_url=APP) as client:
        login = client.get("/auth/login", follow_redirects=False)
        callback = httpx.get(login.headers["location"]).headers["location"]
        assert client.get(callback, follow_redirects=False).status_code == 302
        yield client


def with_cookie(client: TestClient, **headers: str) -> dict[str, str]:
    """The session cookie as a header (the test client's jar skips ``ws://`` URLs)."""
    return {"cookie": f"fcg_session={client.cookies['fcg_session']}", **headers}


def test_websocket_with_the_cookie_and_a_foreign_origin_is_refused(ws_client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        ws_client.websocket_connect("/ws", headers=with_cookie(ws_client, origin=FOREIGN)) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1008
    assert closed.value.reason == "csrf_rejected"


def test_websocket_with_the_cookie_and_no_origin_is_refused(ws_client: TestClient) -> None:
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        ws_client.websocket_connect("/ws", headers=with_cookie(ws_client)) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1008


def test_websocket_with_the_cookie_from_the_apps_origin_is_accepted(
    ws_client: TestClient,
) -> None:
    # Starlette's test client sends WebSocket handshakes with ``Host: testserver``.
    own = "http://testserver"
    with ws_client.websocket_connect("/ws", headers=with_cookie(ws_client, origin=own)) as ws:
        assert ws.receive_text() == "alice"


async def test_whole_app_middleware_accepts_the_session_and_checks_its_origin(
    issuer: LocalIssuer,
) -> None:
    app = make_app(issuer)
    app.add_middleware(
        CognitoAuthMiddleware,
        auth=app.state.auth,
        exclude_paths=["/auth/login", "/auth/callback", "/auth/logout"],
    )
    async with browser(app) as client:
        await sign_in(client, issuer)
        assert (await client.get("/me")).status_code == 200
        refused = await client.post("/echo", headers={"origin": FOREIGN})
        assert refused.status_code == 403
        assert refused.json()["code"] == "csrf_rejected"
        assert (await client.post("/echo", headers={"origin": APP})).status_code == 200


async def test_csrf_rejection_names_the_origin_and_the_setting(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.post("/echo", content=b"hi", headers={"origin": FOREIGN})
    detail = response.json()["detail"]
    assert f"Origin '{FOREIGN}'" in detail
    assert APP in detail  # the trusted origin: the app's own
    assert "COGNITO_TRUSTED_ORIGINS" in detail


async def test_csrf_rejection_without_any_origin_evidence_says_so(issuer: LocalIssuer) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.post("/echo", content=b"hi")
    assert "no Origin, Sec-Fetch-Site or Referer" in response.json()["detail"]


async def test_csrf_rejection_logs_one_line_naming_the_setting(
    issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        caplog.clear()
        await client.post("/echo", content=b"hi", headers={"origin": FOREIGN})
    lines = [r.getMessage() for r in caplog.records if "csrf_rejected" in r.getMessage()]
    assert len(lines) == 1
    assert FOREIGN in lines[0]
    assert "COGNITO_TRUSTED_ORIGINS" in lines[0]


async def test_csrf_rejection_shows_a_control_character_origin_escaped(
    issuer: LocalIssuer,
) -> None:
    async with browser(make_app(issuer)) as client:
        await sign_in(client, issuer)
        response = await client.post("/echo", content=b"hi", headers={"origin": "x\x1b[31m"})
    assert response.status_code == 403
    assert "\x1b" not in response.json()["detail"]
