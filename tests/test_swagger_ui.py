"""Swagger UI of the example app in a real headless Chromium (Playwright).

The example app runs for real (``python -m example_app --port N``, dev mode,
uvicorn on 127.0.0.1); Debian's ``/usr/bin/chromium`` is driven by Playwright's
Python package (no browser download). The browser context lets only 127.0.0.1
through: FastAPI's ``/docs`` page loads Swagger UI's JS and CSS from
``cdn.jsdelivr.net`` (``swagger-ui-dist@5``) and its favicon from
``fastapi.tiangolo.com``, so the test answers exactly those URLs with the
Swagger UI 5 files shipped in the ``fastapi-offline`` wheel; the hosted UI
(``auth.example.com``) is answered by the test too, and any other request is
aborted and fails the test.

What the tests here prove, one behaviour each:

* Plain mode (no ``COGNITO_DOMAIN``): ``/docs`` shows the API title; the Authorize
  dialog offers an HTTP bearer input; a token minted by ``/dev/token`` pasted there
  authorizes "Try it out" of ``GET /me``, whose response panel shows 200 and the
  username (screenshot: ``docs/swagger-ui.png``).
* OAuth2 mode (``COGNITO_DOMAIN=auth.example.com``): ``/docs`` calls ``initOAuth``
  with the app client id and ``usePkceWithAuthorizationCodeGrant: true``; the
  Authorize dialog shows the authorization-code flow with PKCE against
  ``https://auth.example.com/oauth2/authorize`` (screenshot:
  ``docs/swagger-ui-oauth2.png``); signing in opens the hosted UI with
  ``response_type=code``, the client id, the redirect page and an S256
  ``code_challenge``; completing the flow (hosted UI redirects back, the token
  endpoint checks the ``code_verifier`` against the challenge and returns a
  dev-mode token) authorizes ``GET /me`` (200, the username).

Skipped when ``/usr/bin/chromium``, ``playwright`` or ``fastapi-offline`` is
missing, so a developer without them still gets a green run; CI is
expected to install all three.
"""

import base64
import hashlib
import importlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.browser_support import (
    WAIT_SECONDS,
    launch_chromium,
    new_context,
    playwright_sync_api,
    screenshot,
    wait_until_closed,
)
from tests.example_server import ExampleServer

sync_api = playwright_sync_api()
fastapi_offline = importlib.import_module("fastapi_offline")  # a dev dependency

SWAGGER_STATIC = Path(fastapi_offline.__file__).parent / "static"
# What FastAPI's /docs page loads from outside, answered from local files.
LOCAL_ASSETS = {
    "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js": "swagger-ui-bundle.js",
    "https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css": "swagger-ui.css",
    "https://fastapi.tiangolo.com/img/favicon.png": "favicon.png",
}
HOSTED_UI = "auth.example.com"
AUTHORIZE_URL = f"https://{HOSTED_UI}/oauth2/authorize"
TOKEN_URL = f"https://{HOSTED_UI}/oauth2/token"
ME = "#operations-default-me_me_get"


# -- servers and browser ----------------------------------------------------------------


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    server = ExampleServer.start(tmp_path_factory.mktemp("plain"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def oauth2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    server = ExampleServer.start(
        tmp_path_factory.mktemp("oauth2"), env={"COGNITO_DOMAIN": HOSTED_UI}
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class HostedUI:
    """The test's stand-in for Cognito's hosted UI and token endpoint."""

    access_token: str | None = None
    authorize_urls: list[str] = field(default_factory=list)
    token_requests: list[dict[str, list[str]]] = field(default_factory=list)

    def answer(self, route: Any) -> None:
        request = route.request
        url = urlsplit(request.url)
        cors = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*"}
        if url.path == "/oauth2/authorize":
            self.authorize_urls.append(request.url)
            query = parse_qs(url.query)
            back = (
                query["redirect_uri"][0]
                + "?"
                + urlencode({"code": "test-code", "state": query["state"][0]})
            )
            route.fulfill(status=302, headers={"Location": back})
        elif url.path == "/oauth2/token" and request.method == "OPTIONS":
            route.fulfill(status=204, headers=cors)
        elif url.path == "/oauth2/token" and request.method == "POST":
            form = parse_qs(request.post_data or "")
            self.token_requests.append(form)
            body = {"access_token": self.access_token, "token_type": "Bearer", "expires_in": 3600}
            route.fulfill(status=200, json=body, headers=cors)
        else:
            route.fulfill(status=404, body="not found", headers=cors)


@dataclass
class Browsing:
    page: Any
    hosted_ui: HostedUI
    blocked: list[str]


@pytest.fixture
def browsing(browser: Any) -> Iterator[Browsing]:
    """A fresh browser context in which nothing but 127.0.0.1 is reached."""
    context = new_context(browser, viewport={"width": 1280, "height": 900})
    hosted_ui = HostedUI()
    blocked: list[str] = []

    def route(route: Any) -> None:
        url = route.request.url
        host = urlsplit(url).hostname
        if host == "127.0.0.1":
            route.continue_()
        elif url in LOCAL_ASSETS:
            route.fulfill(path=SWAGGER_STATIC / LOCAL_ASSETS[url])
        elif host == HOSTED_UI:
            hosted_ui.answer(route)
        else:
            blocked.append(url)
            route.abort()

    context.route("**/*", route)
    try:
        yield Browsing(context.new_page(), hosted_ui, blocked)
    finally:
        context.close()
    assert blocked == [], f"requests that would have left 127.0.0.1: {blocked}"


def open_docs(page: Any, server: ExampleServer) -> None:
    page.goto(f"{server.base_url}/docs")
    page.locator(".info .title").wait_for()


def open_authorize_dialog(page: Any) -> Any:
    page.locator(".scheme-container button.authorize").click()
    dialog = page.locator(".modal-ux")
    dialog.wait_for()
    return dialog


def try_me(page: Any) -> tuple[str, str]:
    """Expand ``GET /me``, "Try it out", "Execute"; return (status, response body)."""
    operation = page.locator(ME)
    operation.locator(".opblock-summary").click()
    operation.locator("button.try-out__btn").click()
    operation.locator("button.execute").click()
    response = operation.locator(".live-responses-table tr.response")
    status = response.locator(".response-col_status").inner_text().strip()
    body = response.locator(".response-col_description .highlight-code").text_content() or ""
    return status, body


def mint(server: ExampleServer, username: str) -> str:
    response = httpx.get(
        f"{server.base_url}/dev/token", params={"username": username}, timeout=WAIT_SECONDS
    )
    response.raise_for_status()
    token: str = response.json()["token"]
    return token


# -- plain mode: HTTP bearer ------------------------------------------------------------


def test_docs_page_shows_the_api_title(browsing: Browsing, dev_server: ExampleServer) -> None:
    open_docs(browsing.page, dev_server)

    assert "fastapi-cognito-guard example" in browsing.page.locator(".info .title").inner_text()


def test_authorize_dialog_offers_an_http_bearer_input(
    browsing: Browsing, dev_server: ExampleServer
) -> None:
    open_docs(browsing.page, dev_server)

    dialog = open_authorize_dialog(browsing.page)

    assert re.search(r"CognitoBearer\s+\(http, Bearer\)", dialog.inner_text())
    assert dialog.locator("input#auth-bearer-value").is_visible()
    assert "authorizationCode" not in dialog.inner_text()


def test_pasted_token_authorizes_try_it_out_of_get_me(
    browsing: Browsing, dev_server: ExampleServer
) -> None:
    page = browsing.page
    open_docs(page, dev_server)
    dialog = open_authorize_dialog(page)
    dialog.locator("input#auth-bearer-value").fill(mint(dev_server, "alice"))
    dialog.locator("button.authorize").click()
    dialog.get_by_text("Authorized").wait_for()
    dialog.locator("button.btn-done").click()

    status, body = try_me(page)

    assert status == "200"
    assert json.loads(body.removeprefix("Download"))["username"] == "alice"
    screenshot(page, "swagger-ui.png")


# -- OAuth2 mode: authorization code with PKCE against the hosted UI -------------------


def test_oauth2_docs_page_turns_on_pkce(oauth2_server: ExampleServer) -> None:
    html = httpx.get(f"{oauth2_server.base_url}/docs").text

    init_oauth = re.search(r"ui\.initOAuth\((\{.*?\})\)", html, re.DOTALL)

    assert init_oauth is not None
    settings = json.loads(init_oauth.group(1))
    assert settings["usePkceWithAuthorizationCodeGrant"] is True
    assert settings["clientId"] == "example-app"


def test_oauth2_authorize_dialog_shows_the_code_flow_with_pkce(
    browsing: Browsing, oauth2_server: ExampleServer
) -> None:
    page = browsing.page
    open_docs(page, oauth2_server)

    dialog = open_authorize_dialog(page)

    text = dialog.inner_text()
    assert "authorizationCode with PKCE" in text
    assert f"Authorization URL: {AUTHORIZE_URL}" in text
    assert f"Token URL: {TOKEN_URL}" in text
    assert dialog.locator("input[data-name=clientId]").input_value() == "example-app"
    assert dialog.locator("input#auth-bearer-value").count() == 0
    screenshot(page, "swagger-ui-oauth2.png", full_page=False)


def sign_in_through_the_hosted_ui(page: Any, server: ExampleServer) -> None:
    open_docs(page, server)
    dialog = open_authorize_dialog(page)
    with page.expect_popup() as popup:
        dialog.locator("button.authorize").first.click()
    wait_until_closed(popup.value)  # the redirect page hands the code back and closes


def test_oauth2_sign_in_opens_the_hosted_ui_with_an_s256_code_challenge(
    browsing: Browsing, oauth2_server: ExampleServer
) -> None:
    browsing.hosted_ui.access_token = mint(oauth2_server, "alice")

    sign_in_through_the_hosted_ui(browsing.page, oauth2_server)

    [authorize] = browsing.hosted_ui.authorize_urls
    assert authorize.startswith(AUTHORIZE_URL + "?")
    query = parse_qs(urlsplit(authorize).query)
    assert query["response_type"] == ["code"]
    assert query["client_id"] == ["example-app"]
    assert query["redirect_uri"] == [f"{oauth2_server.base_url}/docs/oauth2-redirect"]
    assert query["code_challenge_method"] == ["S256"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"][0])


def test_oauth2_code_flow_with_a_verified_pkce_verifier_authorizes_get_me(
    browsing: Browsing, oauth2_server: ExampleServer
) -> None:
    page = browsing.page
    browsing.hosted_ui.access_token = mint(oauth2_server, "alice")
    sign_in_through_the_hosted_ui(page, oauth2_server)
    page.locator(".modal-ux").get_by_text("Authorized").wait_for()
    page.locator(".modal-ux button.btn-done").click()

    status, body = try_me(page)

    [authorize] = browsing.hosted_ui.authorize_urls
    [token_request] = browsing.hosted_ui.token_requests
    challenge = parse_qs(urlsplit(authorize).query)["code_challenge"][0]
    verifier = token_request["code_verifier"][0]
    digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert digest.decode() == challenge
    assert token_request["grant_type"] == ["authorization_code"]
    assert token_request["code"] == ["test-code"]
    assert status == "200"
    assert json.loads(body.removeprefix("Download"))["username"] == "alice"
