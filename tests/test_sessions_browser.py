"""The whole browser sign-in journey in a real headless Chromium (Playwright).

The example app runs for real (``python -m example_app --port N``: dev mode,
uvicorn on 127.0.0.1, its embedded ``LocalIssuer`` serving the local hosted UI
on another loopback port). Debian's ``/usr/bin/chromium`` opens ``/``, clicks
"Sign in", signs in on the hosted UI's page, lands back on ``/`` with the
username shown, calls ``POST /echo`` with the session cookie only (same-origin
``fetch``), signs out with the page's button and sees the "Sign in" link again.
Screenshot of the signed-in page: ``docs/browser-sign-in.png`` (refreshed with
``UPDATE_SCREENSHOTS=1``). Nothing but 127.0.0.1 is reached.
"""

from __future__ import annotations

import re
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

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExampleServer]:
    server = ExampleServer.start(tmp_path_factory.mktemp("browser-sign-in"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def page(server: ExampleServer) -> Iterator[Any]:
    with loopback_page(viewport={"width": 900, "height": 500}) as page:
        yield page


def test_browser_signs_in_calls_a_guarded_route_with_the_cookie_and_signs_out(
    server: ExampleServer, page: Any
) -> None:
    page.goto(f"{server.base_url}/")
    page.get_by_role("link", name="Sign in").click()

    # The local hosted UI's own sign-in page, on the issuer's port.
    page.locator("input[name=username]").fill("carol")
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{server.base_url}/")
    assert page.locator("#user").inner_text() == "carol"
    screenshot(page, "browser-sign-in.png", full_page=False)

    cookies = page.context.cookies(server.base_url)
    session = [c for c in cookies if c["name"].startswith("fcg_session")]
    assert session, cookies
    assert all(c["httpOnly"] and c["sameSite"] == "Lax" for c in session)
    assert not any(JWT.search(c["value"]) for c in cookies)
    assert page.evaluate("document.cookie") == ""  # nothing readable by page scripts

    echoed = page.evaluate(
        """async () => {
            const r = await fetch('/echo', {method: 'POST', body: JSON.stringify({n: 1})});
            return {status: r.status, body: await r.json()};
        }"""
    )
    assert echoed == {"status": 200, "body": {"username": "carol", "body": {"n": 1}}}

    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{server.base_url}/")
    assert page.get_by_role("link", name="Sign in").is_visible()
    assert not [c for c in page.context.cookies(server.base_url) if "fcg_session" in c["name"]]
    assert not JWT.search(server.stderr)
