#!/usr/bin/env python3
"""Drift report: what the newest releases of every dependency would do to CI.

``.ci/run`` installs the exact versions of ``constraints.txt``, so a new release of ruff,
mypy, a stub package or a runtime dependency never turns CI red on its own. This script
shows what those releases would do: it resolves ``.[dev]`` afresh, without the pins, into
a throwaway venv, prints every pin that moved (old -> new), and runs the lint, type and
import-layer checks there (with ``--pytest``, a quick test subset too). It reports: the
exit status is 0 whatever the checks say, unless ``--strict`` is given.

    python3 .ci/drift.py             # the report
    python3 .ci/drift.py --pytest    # ... plus a quick test subset
    python3 .ci/drift.py --strict    # exit 1 when a check fails on the newest versions
    python3 .ci/drift.py --write     # regenerate constraints.txt from this resolution
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONSTRAINTS = ROOT / "constraints.txt"
# The modules most tied to dependency versions: the verifier (cryptography, jose), the
# FastAPI layer and middleware (fastapi, starlette), the command line and the wheel
# (hatchling, mypy against the installed package).
PYTEST_SUBSET = (
    "tests/test_verifier.py",
    "tests/test_fastapi.py",
    "tests/test_middleware.py",
    "tests/test_cli.py",
    "tests/test_packaging.py",
)
SHOWN_LINES = 15
HEADER = """\
# Exact versions of every package in the `.[dev]` environment, runtime dependencies
# included (mypy's verdict depends on their types). .ci/run and the README's test command
# install with `pip install -c constraints.txt -e ".[dev]"`; pyproject.toml keeps the
# library's dependencies as ranges, which is what users get.
# Resolved by a fresh venv on CPython {python} ({platform}); a package that only another
# Python needs (a backport) is not pinned.
# Regenerate with the newest releases: python3 .ci/drift.py --write
# (python3 .ci/drift.py alone reports what would move and whether CI would still pass.)
"""


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    seconds: float
    output: str


def canonical(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(text: str) -> dict[str, tuple[str, str]]:
    """``canonical name -> (name as written, version)`` for each ``name==version`` line."""
    pins = {}
    for line in text.splitlines():
        requirement = line.split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = (part.strip() for part in requirement.split("==", 1))
            pins[canonical(name)] = (name, version)
    return pins


def moved(old: dict[str, tuple[str, str]], new: dict[str, tuple[str, str]]) -> list[str]:
    """One line per pin that changed, appeared or went away, by name."""
    lines = []
    for key in sorted(old.keys() | new.keys()):
        before, after = old.get(key), new.get(key)
        if before is None and after is not None:
            lines.append(f"  + {after[0]} {after[1]} (new)")
        elif after is None and before is not None:
            lines.append(f"  - {before[0]} {before[1]} (no longer installed)")
        elif before is not None and after is not None and before[1] != after[1]:
            lines.append(f"  ~ {after[0]} {before[1]} -> {after[1]}")
    return lines


def run(command: list[str], venv: Path) -> subprocess.CompletedProcess[str]:
    """``command`` from the checkout with ``venv`` active."""
    env = dict(os.environ, VIRTUAL_ENV=str(venv), PIP_DISABLE_PIP_VERSION_CHECK="1")
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)  # the venv's editable install provides the package
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def check(name: str, command: list[str], venv: Path) -> Check:
    started = time.monotonic()
    result = run(command, venv)
    output = (result.stdout + result.stderr).strip()
    return Check(name, result.returncode == 0, time.monotonic() - started, output)


def checks(venv: Path, scratch: Path, with_pytest: bool) -> list[Check]:
    """The lint, type and layer checks of ``.ci/run``, run with the newest versions."""
    mypy_cache = str(scratch / "mypy-cache")  # never mix with the pinned mypy's cache
    done = [
        check("ruff check", ["ruff", "check", "--no-cache", "."], venv),
        check("ruff format --check", ["ruff", "format", "--no-cache", "--check", "."], venv),
        check(
            "mypy --strict",
            ["mypy", "--strict", "--cache-dir", mypy_cache, "fastapi_cognito_guard"],
            venv,
        ),
        check("lint-imports", ["lint-imports", "--no-cache", "--no-logo"], venv),
    ]
    if with_pytest:
        done.append(check("pytest (subset)", ["pytest", "-q", "-x", *PYTEST_SUBSET], venv))
    return done


def report(lines: list[str], done: list[Check]) -> None:
    print(f"\nPins that moved ({len(lines)}):" if lines else "\nNo pin moved.", *lines, sep="\n")
    print("\nChecks with the newest versions:")
    for result in done:
        verdict = "ok  " if result.passed else "FAIL"
        print(f"  {verdict} {result.name} ({result.seconds:.0f} s)")
    for result in done:
        if not result.passed:
            tail = result.output.splitlines()[-SHOWN_LINES:]
            print(f"\n--- {result.name} (last {len(tail)} lines) ---", *tail, sep="\n")


def write_constraints(frozen: str) -> None:
    python = ".".join(map(str, sys.version_info[:2]))
    platform = f"{sys.platform}, {os.uname().machine}" if hasattr(os, "uname") else sys.platform
    lines = sorted(
        (line for line in frozen.splitlines() if "==" in line and not line.startswith("#")),
        key=lambda line: canonical(line.split("==", 1)[0]),
    )
    CONSTRAINTS.write_text(
        HEADER.format(python=python, platform=platform) + "\n".join(lines) + "\n"
    )
    print(f"\nWrote {CONSTRAINTS.relative_to(ROOT)} ({len(lines)} pins).")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--pytest", action="store_true", help="also run a quick test subset")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check fails")
    parser.add_argument("--write", action="store_true", help="rewrite constraints.txt")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fcg-drift-") as scratch_name:
        scratch = Path(scratch_name)
        venv = scratch / "venv"
        print(f"Resolving the newest .[dev] into a throwaway venv ({venv}) ...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
        install = run(["pip", "install", "-q", "-e", ".[dev]"], venv)
        if install.returncode != 0:
            print("The newest versions do not install:", install.stdout, install.stderr)
            return 1 if args.strict or args.write else 0
        frozen = run(["pip", "freeze", "--exclude-editable"], venv).stdout
        old = read_pins(CONSTRAINTS.read_text()) if CONSTRAINTS.exists() else {}
        done = checks(venv, scratch, args.pytest)
        report(moved(old, read_pins(frozen)), done)
        if args.write:
            write_constraints(frozen)
    failed = [result.name for result in done if not result.passed]
    print(f"\nSummary: {len(failed)} of {len(done)} checks fail with the newest versions.")
    return 1 if args.strict and failed else 0


if __name__ == "__main__":
    sys.exit(main())
