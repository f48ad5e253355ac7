"""Chromium for the browser tests: Debian's ``/usr/bin/chromium`` driven by Playwright
(never a downloaded browser).

On a developer machine without it these modules skip; ``.ci/run`` installs Chromium
and sets ``FCG_REQUIRE_BROWSER``, and then a missing browser or Playwright fails the
run instead of skipping it.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from types import ModuleType

import pytest

CHROMIUM = Path("/usr/bin/chromium")


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
