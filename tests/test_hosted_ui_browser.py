"""The local hosted UI's sign-in page in headless Chromium (Debian's, driven by Playwright).

Proves that a person can use the page: typing a username and groups and
pressing "Sign in" lands the browser on the app's callback with a code and the
state, and the code buys tokens for that user; "Cancel" lands there with
``error=access_denied``. The callback URL is answered by the test (route
interception), so nothing but the issuer listens.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from fastapi_cognito_guard.testing import LocalIssuer
from tests.browser_support import WAIT_SECONDS, launch_chromium, new_context, playwright_sync_api
from tests.helpers import claims_of

sync_api = playwright_sync_api()

CALLBACK = "http://127.0.0.1:9/auth/callback"  # port 9 (discard): never really asked


@pytest.fixture(scope="module")
def issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer(callback_urls=[CALLBACK])
    with issuer.serve():
        yield issuer


@pytest.fixture(scope="module")
def page() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = new_context(browser).new_page()
            page.route(f"{CALLBACK}**", lambda route: route.fulfill(status=200, body="app"))
            yield page
        finally:
            browser.close()


def open_sign_in(page: Any, issuer: LocalIssuer) -> None:
    query = {
        "response_type": "code",
        "client_id": issuer.client_id,
        "redirect_uri": CALLBACK,
        "scope": "openid",
        "state": "browser-state",
    }
    page.goto(f"{issuer.url}/oauth2/authorize?{urlencode(query)}")


def callback_query(page: Any) -> dict[str, list[str]]:
    page.wait_for_url(f"{CALLBACK}**")
    return parse_qs(urlsplit(page.url).query)


def test_signing_in_on_the_page_returns_a_code_for_that_user(
    page: Any, issuer: LocalIssuer
) -> None:
    open_sign_in(page, issuer)
    page.get_by_label("Username").fill("bob")
    page.get_by_label("Groups").fill("premium admin")
    page.get_by_role("button", name="Sign in").click()

    query = callback_query(page)
    tokens = httpx.post(
        f"{issuer.url}/oauth2/token",
        data={
            "grant_type": "authorization_code",
            "client_id": issuer.client_id,
            "code": query["code"][0],
            "redirect_uri": CALLBACK,
        },
        timeout=WAIT_SECONDS,
    ).json()

    assert query["state"] == ["browser-state"]
    claims = claims_of(tokens["id_token"])
    assert (claims["cognito:username"], claims["cognito:groups"]) == ("bob", ["premium", "admin"])


def test_cancel_on_the_page_returns_access_denied(page: Any, issuer: LocalIssuer) -> None:
    open_sign_in(page, issuer)
    page.get_by_role("button", name="Cancel").click()

    assert callback_query(page) == {"error": ["access_denied"], "state": ["browser-state"]}
