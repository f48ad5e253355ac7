"""Memory: RSS growth of a process verifying many distinct tokens.

Run: ``python benchmarks/memory.py [--quick]``. Three child processes (run side
by side) each verify ``--tokens`` (100,000) distinct valid access tokens, one
user per token, minting each just before verifying it so the harness holds no
tokens itself: one with the default result cache (10,000 entries), one with it
and the ``CognitoUser`` built from each token kept in the same entry (what
``current_user`` does: ``verify(token, build=CognitoUser.from_claims)``), one with
the cache off. Each reports its resident set size (``/proc/self/statm``) after a
warm-up and at checkpoints; growth over the warm-up baseline is what the
verifier retains. The cache is bounded, so growth must level off once it is
full. Full mode writes its section into ``RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as ``python benchmarks/memory.py``: import ``benchmarks.*`` from the
    # repository root, not from benchmarks/ (whose http.py would shadow the standard
    # library's ``http``).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import gc
import json
import os
import resource
import subprocess
import time
from typing import Any

from benchmarks import _peers
from benchmarks._results import machine, machine_section, write_section

SECTION = "## Memory"
WARMUP = 500
LABELS = {
    "default": "default ({size:,} entries)",
    "users": "default ({size:,} entries), each with the `CognitoUser` built from it",
    "off": "off",
}
"""The configurations, each in a child process: ``--child`` takes one of these keys."""


def rss_mb() -> float:
    """The current resident set size in MB (peak RSS where ``/proc`` is missing)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as statm:
            pages = int(statm.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(cache: str, tokens: int) -> dict[str, Any]:
    """Verify ``tokens`` distinct tokens; RSS at checkpoints (runs in its own process)."""
    from fastapi_cognito_guard import CognitoUser, CognitoVerifier
    from fastapi_cognito_guard.testing import LocalIssuer

    issuer = LocalIssuer()
    overrides = {"result_cache_size": 0} if cache == "off" else {}
    settings = issuer.settings(**overrides)
    verifier = CognitoVerifier(settings)
    verifier.cache_jwks(issuer.jwks())
    build = CognitoUser.from_claims

    def verify(token: str) -> object:
        if cache == "users":
            return verifier.verify_sync(token, build=build)
        return verifier.verify_sync(token)

    for n in range(WARMUP):
        verify(issuer.access_token(username=f"warmup{n}"))
    gc.collect()
    baseline = rss_mb()
    results = verifier._results
    entries_at_baseline = len(results) if results is not None else 0
    checkpoints = sorted({tokens // 10, tokens // 4, tokens // 2, tokens})
    samples: list[tuple[int, float]] = []
    started = time.perf_counter()
    for n in range(1, tokens + 1):
        verify(issuer.access_token(username=f"user{n}"))
        if n in checkpoints:
            gc.collect()
            samples.append((n, rss_mb() - baseline))
    return {
        "cache": cache,
        "cache_size": settings.result_cache_size,
        "entries": len(results) if results is not None else 0,
        "entries_at_baseline": entries_at_baseline,
        "baseline_mb": baseline,
        "samples": samples,
        "seconds": time.perf_counter() - started,
    }


def run_children(tokens: int) -> list[dict[str, Any]]:
    """Every configuration, side by side, each in a fresh interpreter."""
    processes = [
        subprocess.Popen(
            [sys.executable, __file__, "--child", cache, f"--tokens={tokens}"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for cache in LABELS
    ]
    results = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise SystemExit(f"memory child failed with exit code {process.returncode}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def table(results: list[dict[str, Any]]) -> str:
    """RSS growth per checkpoint, in MB, one row per configuration."""
    checkpoints = [n for n, _ in results[0]["samples"]]
    lines = [
        "| result cache | entries at the end | baseline RSS MB | "
        + " | ".join(f"growth after {n:,} tokens MB" for n in checkpoints)
        + " |",
        "|---|---:|---:|" + "---:|" * len(checkpoints),
    ]
    for result in results:
        label = LABELS[result["cache"]].format(size=result["cache_size"])
        growth = " | ".join(f"{mb:.1f}" for _, mb in result["samples"])
        lines.append(
            f"| {label} | {result['entries']:,} | {result['baseline_mb']:.1f} | {growth} |"
        )
    return "\n".join(lines)


def main() -> int:
    """Parent: run both children, print the table, write ``RESULTS.md`` in full mode."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few thousand tokens, for CI")
    parser.add_argument("--tokens", type=int, default=100_000)
    parser.add_argument("--child", choices=tuple(LABELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.tokens)))
        return 0
    tokens = 2_000 if args.quick else args.tokens
    results = run_children(tokens)
    rendered = table(results)
    print(rendered)
    default, users, off = results

    def per_entry_kb(cached: dict[str, Any]) -> float:
        added = cached["entries"] - cached["entries_at_baseline"]
        growth = cached["samples"][-1][1] - off["samples"][-1][1]
        return growth * 1024 / added if added else 0.0

    added = default["entries"] - default["entries_at_baseline"]
    summary = (
        f"≈ {per_entry_kb(default):.1f} KB per cached token, ≈ {per_entry_kb(users):.1f} KB "
        f"with its `CognitoUser` (final growth with the cache minus growth without, divided "
        f"by the {added:,} entries added after the baseline); {default['seconds']:.0f} s to "
        f"mint and verify {tokens:,} tokens"
    )
    print(summary)
    if args.quick:
        return 0
    write_section(machine_section(_peers.peers_markdown()), first=True)
    write_section(
        f"""{SECTION}

`python benchmarks/memory.py` ({machine()}). Three fresh processes each verify {tokens:,}
distinct valid access tokens (one user per token, each minted just before it is
verified, so nothing but the verifier keeps them) with `CognitoVerifier.verify_sync`,
the second with `build=CognitoUser.from_claims` as `current_user` does (the user kept in
the token's cache entry);
RSS growth is measured from a baseline taken after {WARMUP} warm-up verifications,
after a `gc.collect()` at each checkpoint.

{rendered}

{summary}.

What it means: with the default result cache, memory grows until the cache holds its
10,000 most recent tokens and then stays flat however many distinct tokens arrive (a
flood of valid tokens cannot grow the process without bound); with the cache off, the
verifier retains nothing per token. A web app's entries also hold the user each token
built (the second row: one entry per token, not a second cache), so its cache costs that
row's figure per entry. Set `COGNITO_RESULT_CACHE_SIZE` to trade memory for the RSA check
a repeated token skips. RSS depends on the allocator and the machine;
the shape (bounded, flat after the cache fills) is the point.
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
