"""The example app's home page in a real headless Chromium: the route map for you.

``python -m example_app`` runs for real (dev mode, uvicorn on 127.0.0.1). Signed out,
the page offers "Sign in" and marks the guarded routes as needing a sign-in; signed in
through the local hosted UI as a member of ``premium``, it names the user, shows
``/premium`` as passed and ``/orders`` (scope ``orders/read``, which a browser
sign-in does not carry) as refused. The page loads nothing but itself (no external
assets). Screenshots: ``docs/home-signed-out.png`` and ``docs/home-signed-in.png``
(refreshed with ``UPDATE_SCREENSHOTS=1``). Nothing but 127.0.0.1 is reached.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser_support import (
    loopback_page,
    playwright_sync_api,
    screenshot,
)
from tests.example_server import ExampleServer

playwright_sync_api()  # skips this module without Chromium; CI (FCG_REQUIRE_BROWSER) fails instead


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    server = ExampleServer.start(tmp_path_factory.mktemp("home-page"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(server: ExampleServer) -> Iterator[Any]:
    with loopback_page(viewport={"width": 1100, "height": 1250}) as page:
        yield page


def verdict(page: Any, path: str) -> str:
    """The "You" cell of the route's row."""
    text: str = page.locator(f"tr[data-path='{path}'] .verdict").first.inner_text()
    return text


def test_signed_out_home_page_lists_the_routes_and_offers_sign_in(
    server: ExampleServer, page: Any
) -> None:
    loaded: list[str] = []
    page.on("request", lambda request: loaded.append(request.url))
    page.goto(f"{server.base_url}/")

    assert page.get_by_role("link", name="Sign in").is_visible()
    assert verdict(page, "/health") == "Open to all"
    assert verdict(page, "/premium") == "Sign in first"
    assert loaded == [f"{server.base_url}/"]  # no external CSS, fonts or scripts
    screenshot(page, "home-signed-out.png")


def test_signed_in_home_page_shows_which_routes_the_user_would_pass(
    server: ExampleServer, page: Any
) -> None:
    page.goto(f"{server.base_url}/")
    page.get_by_role("link", name="Sign in").click()
    page.locator("input[name=username]").fill("carol")
    page.locator("input[name=groups]").fill("premium")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{server.base_url}/")

    assert page.locator("#user").inner_text() == "carol"
    assert verdict(page, "/me") == "✓ You would pass"
    assert verdict(page, "/premium") == "✓ You would pass"
    assert verdict(page, "/orders") == "✗ Refused"
    assert verdict(page, "/health") == "Open to all"
    screenshot(page, "home-signed-in.png")
