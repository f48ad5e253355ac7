"""Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by Playwright
(never a downloaded browser).

On a developer machine without it these modules skip; ``.ci/run`` installs Chromium
and sets ``FCG_REQUIRE_BROWSER``, and then a missing browser or Playwright fails the
run instead of skipping it.

Every browser test waits for the event that matters (a page's URL, a pop-up's close, an
element appearing) and never sleeps; one generous bound, :data:`WAIT_SECONDS`, caps every
such wait, so a busy 2-core machine is slow rather than red, while a test that really
hangs still ends.
"""

from __future__ import annotations

import importlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# The one bound on every wait of a browser test: Playwright's own default (30 s) and the
# 15 s the Swagger UI tests used were missed on a loaded 2-core machine.
WAIT_SECONDS = 90.0
WAIT_MS = WAIT_SECONDS * 1000


def playwright_sync_api() -> ModuleType:
    """``playwright.sync_api``, or a module-level skip where the browser is optional."""
    if os.environ.get("FCG_REQUIRE_BROWSER"):
        if not CHROMIUM.exists():
            raise RuntimeError(f"{CHROMIUM} is required (FCG_REQUIRE_BROWSER is set)")
        return importlib.import_module("playwright.sync_api")
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is not installed (apt-get install chromium)", allow_module_level=True
        )
    return pytest.importorskip("playwright.sync_api", reason="pip install playwright")


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, started within the shared bound."""
    return playwright.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True, timeout=WAIT_MS
    )


def new_context(browser: Any, **options: Any) -> Any:
    """A fresh browser context whose every wait (navigation, locator, event) is bounded
    by :data:`WAIT_MS` unless a call says otherwise."""
    context = browser.new_context(**options)
    context.set_default_timeout(WAIT_MS)
    context.set_default_navigation_timeout(WAIT_MS)
    return context


def wait_until_closed(page: Any) -> None:
    """Return once ``page`` (a pop-up that closes itself) is closed. The close may
    already have happened while the opener was still busy: waiting for the event then
    would wait for nothing, so the page's state is checked first (the sync API handles
    events only inside its calls, so nothing is missed in between)."""
    if not page.is_closed():
        page.wait_for_event("close")


SCREENSHOTS = (
    Path(__file__).resolve().parent.parent / "docs"
    if os.environ.get("UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "cognito-guard-screenshots"
)
"""Screenshots refresh docs/ only on request (``UPDATE_SCREENSHOTS=1``); otherwise they go
to a scratch folder."""


def screenshot(page: Any, name: str, *, full_page: bool = True) -> None:
    """Save a screenshot into ``SCREENSHOTS`` and check it is a PNG."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=full_page)
    assert (SCREENSHOTS / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@contextmanager
def loopback_page(**context_options: Any) -> Iterator[Any]:
    """A Chromium page that can reach 127.0.0.1 only: any other request is aborted and,
    once the page is closed, fails the test naming what would have left the machine."""
    blocked: list[str] = []
    with playwright_sync_api().sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        context = new_context(browser, **context_options)

        def only_loopback(route: Any) -> None:
            if urlsplit(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                blocked.append(route.request.url)
                route.abort()

        context.route("**/*", only_loopback)
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()
    assert blocked == [], f"requests that would have left 127.0.0.1: {blocked}"
