"""The previous release, 0.2.0, beside the working tree in the same benchmark run.

0.2.0 is main at commit ``d8db386``. ``extract`` writes that commit's package and
benchmarks into a directory with ``git archive`` (the repository is only read);
``load`` imports the package from there under another name (``fcg_020``: its
imports are relative, so it runs as it did), so both versions verify in one
process; ``environment`` lets a subprocess (a uvicorn server) import 0.2.0 as
``fastapi_cognito_guard`` with 0.2.0's own ``benchmarks/_apps.py``. Without the
commit (a shallow clone, an archive) the scripts skip the 0.2.0 rows and say why.
"""

from __future__ import annotations

import importlib.util
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from types import ModuleType

__all__ = ["COMMIT", "NAME", "VERSION", "BaselineUnavailable", "environment", "extract", "load"]

COMMIT = "d8db386"
VERSION = "0.2.0"
NAME = "fcg_020"
"""The module name 0.2.0's package is imported under, beside ``fastapi_cognito_guard``."""

ROOT = Path(__file__).resolve().parent.parent


class BaselineUnavailable(Exception):
    """0.2.0 cannot be extracted here; the message says why."""


def extract(directory: Path) -> Path:
    """Write 0.2.0's ``fastapi_cognito_guard`` and ``benchmarks`` into ``directory``."""
    try:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", COMMIT, "fastapi_cognito_guard", "benchmarks"],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        raise BaselineUnavailable(f"git archive {COMMIT} failed ({exc})") from None
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(directory, filter="data")
    return directory


def load(directory: Path) -> ModuleType:
    """0.2.0's package, extracted into ``directory``, imported as ``fcg_020``."""
    if NAME in sys.modules:
        return sys.modules[NAME]
    package = extract(directory) / "fastapi_cognito_guard"
    spec = importlib.util.spec_from_file_location(
        NAME, package / "__init__.py", submodule_search_locations=[str(package)]
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[NAME] = module
    spec.loader.exec_module(module)
    return module


def environment(directory: Path) -> dict[str, str]:
    """Environment for a subprocess run from ``directory`` (as extracted) that imports
    0.2.0 as ``fastapi_cognito_guard``: its directory comes before the installed one."""
    return {**os.environ, "PYTHONPATH": str(directory)}
