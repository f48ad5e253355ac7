"""Shared helpers for the benchmark scripts: ``RESULTS.md`` sections and the machine line.

Every script owns one ``## ...`` section of ``benchmarks/RESULTS.md`` and
replaces only that section when it runs in full mode, so the scripts can be
re-run one at a time. The ``## Machine, method and peers`` section opens the
file and is rewritten by whichever script ran last.
"""

from __future__ import annotations

import os
import platform
import statistics
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

__all__ = [
    "MACHINE_SECTION",
    "RESULTS",
    "machine",
    "machine_section",
    "median_spread",
    "package_version",
    "write_section",
]

RESULTS = Path(__file__).with_name("RESULTS.md")
MACHINE_SECTION = "## Machine, method and peers"
_TITLE = "# Benchmark results"


def _sections(text: str) -> tuple[str, list[tuple[str, str]]]:
    """Split a Markdown document into its preamble and ``(heading, body)`` level-2 sections."""
    preamble: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("## "):
            sections.append((line.strip(), []))
        elif sections:
            sections[-1][1].append(line)
        else:
            preamble.append(line)
    return "\n".join(preamble).strip(), [
        (heading, "\n".join(body).strip()) for heading, body in sections
    ]


def write_section(text: str, *, first: bool = False, path: Path = RESULTS) -> None:
    """Replace (or add) the section whose heading is ``text``'s first line.

    ``text`` starts with its ``## heading`` line. A new section goes at the end,
    or right after the title with ``first=True``; the other sections are kept
    as they are.
    """
    heading, _, body = text.strip().partition("\n")
    heading = heading.strip()
    if not heading.startswith("## "):
        raise ValueError(f"a section must start with a '## ' heading, not {heading!r}")
    existing = path.read_text(encoding="utf-8") if path.exists() else _TITLE
    preamble, sections = _sections(existing)
    new = (heading, body.strip())
    for index, (name, _) in enumerate(sections):
        if name == heading:
            sections[index] = new
            break
    else:
        sections.insert(0 if first else len(sections), new)
    parts = [preamble or _TITLE, *(f"{name}\n\n{content}" for name, content in sections)]
    path.write_text("\n\n".join(parts) + "\n", encoding="utf-8")


def package_version(distribution: str) -> str | None:
    """The installed version of ``distribution``, or ``None`` when it is not installed."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gb() -> str:
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return "unknown"
    return f"{pages * page_size / 2**30:.0f} GiB"


def machine() -> str:
    """One line describing the machine: CPU, cores, memory, OS and Python."""
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gb()} RAM, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )


def median_spread(values: Sequence[float], fmt: str = ".2f") -> tuple[str, str]:
    """``(median, "min-max")`` of ``values`` formatted with ``fmt`` (an en dash in the range)."""
    median = statistics.median(values)
    return format(median, fmt), f"{format(min(values), fmt)}–{format(max(values), fmt)}"


def machine_section(peers: str) -> str:
    """The opening section of ``RESULTS.md``: the machine, the method and the peers.

    ``peers`` is the Markdown describing how each peer was wired (from ``_peers``).
    """
    versions = ", ".join(
        f"{name} {package_version(name) or 'not installed'}"
        for name in ("fastapi", "starlette", "pydantic", "uvicorn", "httpx", "cryptography")
    )
    return f"""{MACHINE_SECTION}

Machine: {machine()}. Libraries: {versions}.

These numbers come from a 2-core virtual machine with nothing else running, the
load generator (where there is one) sharing the cores with the server. Absolute
numbers are machine-dependent: the ratios (to the RSA floor, guarded to open route,
between contenders) are the point. Each table reports
medians over several alternating rounds and the spread (min–max of the round
results), so noise that hits one round hits every contender alike.

Set-up: `pip install -e ".[bench]"` (the peers below; nothing in the library depends on
them) and, for the HTTP benchmark, Debian's `wrk` (`apt-get install -y wrk`; without it a
Python load generator is used). Each script below prints its tables; without `--quick` it
also rewrites its own section of this file. `tests/test_benchmarks.py` runs every script
with `--quick` (seconds, no timing asserts) so they cannot rot.

Every contender verifies tokens from `fastapi_cognito_guard.testing.LocalIssuer`
(2048-bit RS256, Cognito's real `iss` form
`https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test`), with the
JWKS served over real HTTP on 127.0.0.1. Nothing talks to AWS.

{peers.strip()}
"""
