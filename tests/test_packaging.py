"""The package as users install it: the wheel, a fresh virtual environment, mypy --strict.

A built wheel holds the library and nothing else (no top-level ``example_app``), installs
into a fresh venv, and a small consumer app type-checks against it with ``mypy --strict``
while a misspelled import from the package root fails. The editable install of the
README's commands is checked the same way: type checkers must see it too.

The fresh venv has no pip of its own and takes its dependencies from this environment's
site-packages through a ``.pth`` line (a plain path entry: the ``.pth`` files inside that
directory, such as this checkout's editable install, are not processed), so only the
wheel provides ``fastapi_cognito_guard``.
"""

from __future__ import annotations

import ast
import importlib
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "fastapi_cognito_guard"
DIST_INFO = f"{PACKAGE}-0.2.0.dist-info"  # the release CHANGELOG.md describes

CONSUMER_APP = '''\
"""A service written from the README, as a user would type-check it."""

from typing import Annotated

from fastapi import Depends, FastAPI

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoAuthMiddleware,
    CognitoSettings,
    CognitoUser,
    CognitoVerifier,
    InvalidTokenError,
    current_user,
    require_group,
)
from fastapi_cognito_guard.testing import LocalIssuer

auth: CognitoAuth[CognitoUser] = CognitoAuth()
app = FastAPI(lifespan=auth.lifespan)
app.add_middleware(CognitoAuthMiddleware, auth=auth)
verifier = CognitoVerifier(CognitoSettings(user_pool_id="eu-central-1_AbC123xyz", client_ids=["a"]))
from_environment = CognitoSettings()  # required fields may come from COGNITO_*


@app.get("/me")
async def me(user: Annotated[CognitoUser, Depends(current_user)]) -> str:
    return user.sub  # a CognitoUser seen as Any would fail warn_return_any


@app.get("/premium")
async def premium(user: Annotated[CognitoUser, Depends(require_group("premium"))]) -> str | None:
    return user.username


def code_of(error: InvalidTokenError) -> str:
    return error.code  # so does every name below, eager or lazily loaded


def realm_of(guard: CognitoAuth[CognitoUser]) -> str:
    return guard.realm


def issuer_pool(issuer: LocalIssuer) -> str:
    return issuer.settings().user_pool_id
'''

MISSPELLED_IMPORT = "from fastapi_cognito_guard import CognitoAuht\n"
CONSUMER_FILES = ("service.py", "misspelled.py")


def site_packages(python: Path) -> Path:
    found = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(found.stdout.strip())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built by the project's PEP 517 backend as any build front end would."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-c", f"import hatchling.build as b; b.build_wheel({str(out)!r})"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    )
    (built,) = out.glob("*.whl")
    return built


@pytest.fixture(scope="module")
def fresh_python(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new venv with the wheel installed and this environment's packages as dependencies."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", wheel],
        capture_output=True,
        check=True,
    )
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site_packages(python) / "_test_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    return python


@pytest.fixture(scope="module")
def consumer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory outside the checkout with the consumer app and a misspelled import."""
    directory = tmp_path_factory.mktemp("consumer")
    (directory / "service.py").write_text(CONSUMER_APP)
    (directory / "misspelled.py").write_text(MISSPELLED_IMPORT)
    return directory


def mypy_strict(python: Path, consumer: Path) -> tuple[list[str], Path]:
    """mypy --strict's errors over the consumer files, resolving imports as ``python``
    would, and the file it read ``fastapi_cognito_guard`` from (a cache per interpreter,
    so that file is always parsed)."""
    cache = consumer / f".mypy_cache_{abs(hash(str(python)))}"
    command = [sys.executable, "-m", "mypy", "--strict", "-v", "--no-error-summary"]
    result = subprocess.run(
        [*command, "--python-executable", python, "--cache-dir", cache, *CONSUMER_FILES],
        cwd=consumer,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode in (0, 1), result.stderr
    (parsed,) = re.findall(rf"Parsing (\S+) \({PACKAGE}\)", result.stderr)
    return [line for line in result.stdout.splitlines() if ": error:" in line], Path(parsed)


def test_wheel_holds_only_the_library(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/", 1)[0] for name in names}

    assert top_level == {PACKAGE, DIST_INFO}
    assert f"{PACKAGE}/py.typed" in names
    assert not [name for name in names if "example_app" in name or "__pycache__" in name]


def test_wheel_registers_the_pytest_plugin(wheel: Path) -> None:
    entry_points = zipfile.ZipFile(wheel).read(f"{DIST_INFO}/entry_points.txt")

    assert b"[pytest11]" in entry_points
    assert b"cognito_guard = fastapi_cognito_guard.testing" in entry_points


def test_wheel_metadata_takes_its_version_from_the_package(wheel: Path) -> None:
    metadata = zipfile.ZipFile(wheel).read(f"{DIST_INFO}/METADATA").decode()

    version = re.search(r"^Version: (.+)$", metadata, flags=re.M)
    assert version is not None
    assert version[1] == importlib.import_module(PACKAGE).__version__ == "0.2.0"


def test_fresh_venv_imports_the_package_from_the_wheel_only(
    fresh_python: Path, consumer: Path
) -> None:
    probe = (
        "import importlib.util, fastapi_cognito_guard as p; "
        "print(p.__file__); print(importlib.util.find_spec('example_app'))"
    )
    result = subprocess.run(
        [fresh_python, "-c", probe], cwd=consumer, capture_output=True, text=True, check=True
    )

    location, example_app = result.stdout.splitlines()
    assert Path(location).is_relative_to(site_packages(fresh_python))
    assert example_app == "None"


def test_consumer_app_passes_mypy_strict_against_the_installed_wheel(
    fresh_python: Path, consumer: Path
) -> None:
    errors, package = mypy_strict(fresh_python, consumer)

    assert package.is_relative_to(site_packages(fresh_python))
    assert errors == [
        'misspelled.py:1: error: Module "fastapi_cognito_guard" has no attribute "CognitoAuht"; '
        'maybe "CognitoAuth"?  [attr-defined]'
    ]


def test_consumer_app_passes_mypy_strict_against_the_editable_install(consumer: Path) -> None:
    errors, package = mypy_strict(Path(sys.executable), consumer)

    assert package.is_relative_to(ROOT)
    assert [error.split(":")[0] for error in errors] == ["misspelled.py"]


def distribution(requirement: str) -> str:
    """The distribution a requirement or pin names, as pip compares names (PEP 503)."""
    name = re.match(r"[A-Za-z0-9._-]+", requirement)
    assert name is not None, requirement
    return re.sub(r"[-_.]+", "-", name[0]).lower()


def pins() -> dict[str, str]:
    lines = (ROOT / "constraints.txt").read_text().splitlines()
    return {distribution(line): line for line in lines if line.strip() and not line.startswith("#")}


def test_constraints_pin_exact_versions_only() -> None:
    assert [line for line in pins().values() if not re.fullmatch(r"[\w.-]+==[\w.+!-]+", line)] == []


def test_constraints_pin_every_requirement_of_the_dev_install() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"], *project["optional-dependencies"]["dev"]]

    assert [name for name in map(distribution, wanted) if name not in pins()] == []


def test_every_lazily_loaded_name_is_imported_for_type_checkers() -> None:
    root = importlib.import_module(PACKAGE)
    tree = ast.parse(Path(root.__file__ or "").read_text())
    (block,) = [
        n for n in tree.body if isinstance(n, ast.If) and ast.unparse(n.test) == "TYPE_CHECKING"
    ]
    imports = [node for node in block.body if isinstance(node, ast.ImportFrom)]
    typed = {alias.asname or alias.name for node in imports for alias in node.names}

    assert typed == set(root._LAZY)


def test_every_exported_name_resolves_at_run_time() -> None:
    root = importlib.import_module(PACKAGE)

    assert [name for name in root.__all__ if getattr(root, name, None) is None] == []
