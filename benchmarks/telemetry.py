"""What OpenTelemetry costs the verify path: without an SDK, and with one configured.

Run: ``python benchmarks/telemetry.py [--quick]``. In alternating rounds of one run:
the bare ``cryptography`` RSA check (the floor); ``verify_sync`` with the result cache
off and on a cache hit, each three ways: its own steps without any telemetry hook
(the same result-cache, split, route, key and ``_finish`` steps: the
baseline, as 0.2.0 had no hooks), with the hooks and no SDK configured, and with an
SDK configured (a ``MeterProvider`` with an in-memory reader, a ``TracerProvider``
with a batch processor whose exporter drops everything, and a recording span
current for the whole batch, as FastAPI's instrumentation would provide).

An SDK can be installed only once per process, so the rounds without it set the API's
two provider globals back to ``None`` (what ``telemetry.recording()`` reads) and the
rounds with it restore them: the same process, the same instruments, alternating.
Full mode (no ``--quick``) writes its section into ``RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as ``python benchmarks/telemetry.py``: import ``benchmarks.*`` from the
    # repository root, not from benchmarks/ (whose http.py would shadow ``http``).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from opentelemetry import metrics, trace
from opentelemetry.metrics import _internal as metrics_state
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from benchmarks._results import machine, median_spread, package_version, write_section
from fastapi_cognito_guard import CognitoVerifier, TokenClaims, telemetry
from fastapi_cognito_guard.jwt import split
from fastapi_cognito_guard.testing import LocalIssuer

SECTION = "## Telemetry cost"
FLOOR = "raw cryptography RSA verify (floor)"


class _Dropping(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        return SpanExportResult.SUCCESS


class Sdk:
    """The process's SDK, switchable on and off between rounds."""

    def __init__(self) -> None:
        self.meters = MeterProvider(metric_readers=[InMemoryMetricReader()])
        self.tracers = TracerProvider()
        self.tracers.add_span_processor(BatchSpanProcessor(_Dropping()))
        metrics.set_meter_provider(self.meters)
        trace.set_tracer_provider(self.tracers)
        self.tracer = trace.get_tracer("benchmark")
        self.off()

    def on(self) -> None:
        metrics_state._METER_PROVIDER = self.meters
        trace._TRACER_PROVIDER = self.tracers  # type: ignore[attr-defined]

    def off(self) -> None:
        metrics_state._METER_PROVIDER = None
        trace._TRACER_PROVIDER = None  # type: ignore[attr-defined]

    @contextmanager
    def recording(self, on: bool) -> Iterator[None]:
        """The SDK on (inside one recording span) or off, for one batch."""
        if not on:
            self.off()
            yield
            return
        self.on()
        with self.tracer.start_as_current_span("GET /items"):
            yield
        self.off()


def baseline(verifier: CognitoVerifier) -> Callable[[str], TokenClaims]:
    """``verify_sync``'s own steps without the telemetry hooks (0.2.0 had none)."""

    def verify(token: str) -> TokenClaims:
        results = verifier._results
        cached = None if results is None else results.valid(token)
        if cached is not None:
            return verifier._deliver(cached.claims, cached, None)  # type: ignore[no-any-return]
        parts = split(token)
        kid = parts[0].kid
        route, key = verifier._route(kid, parts[1])
        if key is None:
            key = verifier._jwks.cached_key(route.jwks_url, kid)
        return verifier._finish(token, parts, route, key)[0]

    return verify


def contenders(issuer: LocalIssuer, token: str) -> dict[str, tuple[Callable[[str], object], bool]]:
    """Every contender as ``(verify(token), with the SDK on)``."""
    uncached = CognitoVerifier(issuer.settings(result_cache_size=0))
    uncached.cache_jwks(issuer.jwks())
    cached = CognitoVerifier(issuer.settings())
    cached.cache_jwks(issuer.jwks())
    cached.verify_sync(token)

    public_key = issuer._keys[-1].private_key.public_key()
    signing_input, _, signature_b64 = token.rpartition(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    message, pkcs1, sha256 = signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()

    def floor(_: str) -> None:
        public_key.verify(signature, message, pkcs1, sha256)

    return {
        FLOOR: (floor, False),
        "result cache off: the same steps, no hooks": (baseline(uncached), False),
        "result cache off: hooks, no SDK": (uncached.verify_sync, False),
        "result cache off: hooks, SDK configured": (uncached.verify_sync, True),
        "result cache hit: the same steps, no hooks": (baseline(cached), False),
        "result cache hit: hooks, no SDK": (cached.verify_sync, False),
        "result cache hit: hooks, SDK configured": (cached.verify_sync, True),
    }


def measure(sdk: Sdk, fn: Callable[[str], object], token: str, calls: int, on: bool) -> float:
    """CPU microseconds per call (``time.process_time``: other processes not counted)."""
    with sdk.recording(on):
        start = time.process_time()
        for _ in range(calls):
            fn(token)
        elapsed = time.process_time() - start
    return elapsed / calls * 1e6


def hook_cost(calls: int, claims: TokenClaims, *, hit: bool) -> float:
    """CPU nanoseconds of the hooks alone on an accepted token, no SDK configured: a
    result-cache hit's one call, or a full verification's two."""
    clock, verified, cache_hit = telemetry.clock, telemetry.verified, telemetry.cache_hit
    start = time.process_time()
    if hit:
        for _ in range(calls):
            cache_hit(claims, claims)
    else:
        for _ in range(calls):
            verified(clock(), claims, claims)
    return (time.process_time() - start) / calls * 1e9


def run(rounds: int, calls: int) -> tuple[list[tuple[str, list[float]]], dict[str, float]]:
    """The timed rows, and the hooks' own cost (ns) on a hit and on a full verification."""
    issuer = LocalIssuer()
    token = issuer.access_token(groups=["premium", "staff"], scopes=["orders/read", "orders/write"])
    sdk = Sdk()
    cases = contenders(issuer, token)
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn, on in cases.values():  # warm up (and create the instruments)
        measure(sdk, fn, token, max(10, calls // 10), on)
    for _ in range(rounds):
        for name, (fn, on) in cases.items():
            samples[name].append(measure(sdk, fn, token, calls, on))
    sdk.off()
    verifier = CognitoVerifier(issuer.settings())
    verifier.cache_jwks(issuer.jwks())
    claims = verifier.verify_sync(token)
    hooks = {
        kind: statistics.median(hook_cost(calls * 10, claims, hit=hit) for _ in range(5))
        for kind, hit in (("hit", True), ("full", False))
    }
    return list(samples.items()), hooks


# -- instruction counts (``--callgrind``): stable where timings on a shared VM are not --

_COUNTED = """
import os, sys, time
sys.path.insert(0, {root!r})
from benchmarks.telemetry import baseline
from fastapi_cognito_guard import CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer
issuer = LocalIssuer()
verifier = CognitoVerifier(issuer.settings(result_cache_size={cache}))
verifier.cache_jwks(issuer.jwks())
token = issuer.access_token(groups=["premium", "staff"], scopes=["orders/read"])
verify = baseline(verifier) if {baseline} else verifier.verify_sync
verify(token)
time.sleep(0)  # callgrind zeroes its counts here
for _ in range({calls}):
    verify(token)
os.getpid()  # and dumps them here
"""


def instructions(cache: int, use_baseline: bool, calls: int) -> float:
    """Instructions per ``verify_sync`` (no SDK) counted by callgrind over the loop alone."""
    root = str(Path(__file__).resolve().parent.parent)
    script = _COUNTED.format(root=root, cache=cache, baseline=use_baseline, calls=calls)
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "callgrind.out"
        subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--zero-before=time_sleep",
                "--dump-before=os_getpid",
                f"--callgrind-out-file={out}",
                sys.executable,
                "-c",
                script,
            ],
            check=True,
            capture_output=True,
        )
        (dump,) = [path for path in Path(work).iterdir() if path.name.endswith(".1")]
        summary = next(
            line for line in dump.read_text().splitlines() if line.startswith("summary:")
        )
    return int(summary.split()[1]) / calls


def instruction_table(calls: int) -> str:
    lines = [
        "| path | no hooks | with the hooks, no SDK | added per verify |",
        "|---|---:|---:|---:|",
    ]
    for name, cache in (("result cache off", 0), ("result cache hit", 1000)):
        base = instructions(cache, True, calls)
        hooked = instructions(cache, False, calls)
        lines.append(
            f"| {name} | {base:,.0f} | {hooked:,.0f} | {hooked - base:+,.0f} "
            f"({(hooked - base) / base:+.1%}) |"
        )
    return "\n".join(lines)


def table(rows: list[tuple[str, list[float]]]) -> str:
    floor = statistics.median(dict(rows)[FLOOR])
    baselines = {
        name.split(":")[0]: statistics.median(values)
        for name, values in rows
        if name.endswith("the same steps, no hooks")
    }
    lines = [
        "| contender | µs per verify (median) | spread of round medians | × floor | × no hooks |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in rows:
        median, spread = median_spread(values)
        base = baselines.get(name.split(":")[0])
        versus = f"{statistics.median(values) / base:.2f}" if base and name != FLOOR else ""
        lines.append(
            f"| {name} | {median} | {spread} | {statistics.median(values) / floor:.2f} | {versus} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few rounds, for CI")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--callgrind", action="store_true", help="also count instructions (needs valgrind)"
    )
    args = parser.parse_args()
    rounds, calls = (3, 100) if args.quick else (args.rounds, args.calls)
    rows, hooks = run(rounds, calls)
    rendered = table(rows)
    print(rendered)
    print(
        f"\nhooks alone, no SDK: {hooks['hit']:.0f} ns on a result-cache hit, "
        f"{hooks['full']:.0f} ns on a full verification"
    )
    counted = ""
    if args.callgrind and shutil.which("valgrind"):
        counted = instruction_table(200 if args.quick else 2000)
        print()
        print(counted)
    if args.quick:
        return 0
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    counted_text = (
        f"""

Instructions per `verify_sync` without an SDK, counted by callgrind over the timed loop
alone (`--callgrind`; stable where the timings above wander with the machine's load):

{counted}"""
        if counted
        else ""
    )
    write_section(
        f"""{SECTION}

`python benchmarks/telemetry.py` ({rounds} alternating rounds of {calls} calls; {machine()};
opentelemetry-sdk {package_version("opentelemetry-sdk")}; load average when the run ended:
{load}). CPU time of the benchmark process, medians over alternating rounds. "The same steps,
no hooks" is `verify_sync`'s body without the telemetry hooks (the baseline: 0.2.0 had
none); "no SDK" is this
version with `opentelemetry-api` installed and no provider set (without the package the
check reads two constants instead); "SDK configured" has a meter provider with an
in-memory reader, a tracer provider with a batch span processor, and a recording span
current, so every verification adds to the counters, records a duration (full
verifications) and sets the span's attributes.

{rendered}

The hooks alone, with no SDK, cost {hooks["hit"]:.0f} ns on a result-cache hit (one call
and one increment for `auth.health()`'s counts) and {hooks["full"]:.0f} ns on a full
verification (one call more): within the rounds' noise on the RSA path, a visible share
of a cache hit, which itself costs a fiftieth of the floor.{counted_text}

With the SDK configured, the added time is the SDK's own work: each measurement is
validated, offered as an exemplar and aggregated in Python (three measurements per full
verification, two per cache hit), and the span's attributes are set; the library's part
is building the attribute dicts and one current-span lookup. A service that cannot afford
it per request can keep traces and drop the library's metrics with an SDK view.
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
