"""The benchmark scripts run in quick mode, so they cannot rot.

Each script runs as ``python benchmarks/<script>.py --quick`` in a subprocess
(as CI and a user would run it) and must exit 0 after printing a Markdown
table. Nothing here asserts on timings, and peers that are not installed are
skipped by the scripts themselves, not failed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "expect"),
    [
        ("verify.py", "raw cryptography RSA verify (floor)"),
        ("http.py", "this library, result cache on"),
        ("jwks_stampede.py", "Unknown kids"),
        ("memory.py", "result cache"),
        ("revocation.py", "is_revoked alone"),
        ("identity.py", "sealed shared-store hit"),
        ("telemetry.py", "hooks, SDK configured"),
    ],
)
def test_benchmark_runs_in_quick_mode(script: str, expect: str, tmp_path: Path) -> None:
    results = BENCHMARKS / "RESULTS.md"
    before = results.read_text(encoding="utf-8") if results.exists() else None
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick"],
        cwd=tmp_path,  # the scripts must not depend on the working directory
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "|---" in done.stdout, done.stdout[-3000:]
    assert expect in done.stdout
    after = results.read_text(encoding="utf-8") if results.exists() else None
    assert after == before, "quick mode must not write RESULTS.md"
