"""End-to-end HTTP throughput: a guarded route against an open one, under uvicorn.

Run: ``python benchmarks/http.py [--quick]`` from anywhere. For each server
(this library with the result cache on, with it off, and the same app built
with fastapi-cognito; uvicorn with 1 and with 2 worker processes, each
started by ``python -m benchmarks._apps`` on a random 127.0.0.1 port) the load
generator alternates between ``GET /open`` and ``GET /me`` (the same valid
access token on every request) for ``--rounds`` rounds of ``--seconds`` each,
bounded by ``--max-requests`` too. The table reports requests/s (median and
spread over the rounds), p50/p99 latency and the guarded/open ratio (median
and spread of the per-round ratios).

The load generator is ``wrk`` when it is installed (Debian:
``apt-get install -y wrk``), else a raw-asyncio client in its own process; it
runs on the same machine as the server and takes CPU from it, which lowers
both routes alike. Full mode writes its section into ``RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as ``python benchmarks/http.py``: import ``benchmarks.*`` from the
    # repository root, not from benchmarks/ (whose http.py would shadow the standard
    # library's ``http``).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import contextlib
import functools
import os
import signal
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from importlib.util import find_spec
from typing import IO, Any

import httpx

from benchmarks import _apps, _baseline, _loadgen, _peers
from benchmarks._loadgen import LoadResult
from benchmarks._results import (
    machine,
    machine_section,
    median_spread,
    package_version,
    write_section,
)
from fastapi_cognito_guard.testing import LocalIssuer

SECTION = "## HTTP throughput"
ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"on": 0.85, "off": 0.6, "small": 0.65, "many": 0.85}
DISTINCT_TOKENS = 2000


ROUTES = {"open": "/open", "bearer": "/bearer", "guarded": "/me"}


@dataclass(frozen=True)
class Server:
    """One uvicorn configuration to measure (``generator`` overrides the command line's)."""

    label: str
    app: str
    workers: int
    cache: str = "on"
    generator: str | None = None
    distinct: bool = False
    """Each request carries the next of ``DISTINCT_TOKENS`` valid tokens (Python generator)."""
    baseline: bool = False
    """Serve 0.2.0 (its package and ``benchmarks/_apps.py``) instead of this version."""

    @property
    def target(self) -> float | None:
        return TARGETS[self.cache] if self.app == "guard" and not self.baseline else None


@dataclass
class Measured:
    """The rounds of one server: a run per route per round, routes in alternation."""

    server: Server
    runs: dict[str, list[LoadResult]] = field(default_factory=lambda: {r: [] for r in ROUTES})
    skipped: str | None = None
    generator: str = ""

    def ratios(self, route: str) -> list[float]:
        """Per-round ratio of ``route``'s requests/s to the open route's."""
        pairs = zip(self.runs["open"], self.runs[route], strict=True)
        return [run.rps / base.rps for base, run in pairs if base.rps]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def serve(
    server: Server, jwks_url: str, token: str, baseline_dir: Path | None = None
) -> Iterator[str]:
    """Start uvicorn for ``server``; yields its base URL once ``/me`` answers 200.

    A 0.2.0 server runs from ``baseline_dir`` (0.2.0 extracted there), importing
    0.2.0's package and apps."""
    port = _free_port()
    root, env = ROOT, dict(os.environ)
    if server.baseline:
        assert baseline_dir is not None
        root, env = baseline_dir, _baseline.environment(baseline_dir)
    env |= {
        "BENCH_APP": server.app,
        "BENCH_JWKS_URL": jwks_url,
        "BENCH_CACHE": "on" if server.cache == "many" else server.cache,
        "PYTHONWARNINGS": "ignore",
    }
    command = [sys.executable, "-m", "benchmarks._apps", f"--port={port}"]
    command.append(f"--workers={server.workers}")
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            _wait_ready(process, base, token, log)
            yield base
        finally:
            _stop(process)


def _wait_ready(process: subprocess.Popen[bytes], base: str, token: str, log: IO[str]) -> None:
    """Poll ``/me`` until it answers 200; on failure, raise with the server's output."""
    deadline = time.monotonic() + 30
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(trust_env=False, timeout=2) as client:
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{base}/me", headers=headers).is_success:
                    return
            time.sleep(0.1)
    log.seek(0)
    raise RuntimeError(f"the server at {base} did not become ready:\n{log.read()[-2000:]}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the uvicorn we started (its supervisor stops its workers), by its id."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # our own session: the server and its workers
            process.wait()


def measure(
    server: Server,
    jwks_url: str,
    token: str,
    *,
    rounds: int,
    seconds: float,
    max_requests: int,
    connections: int,
    generator: str,
    warmup: bool,
    tokens_file: str,
    baseline_dir: Path | None = None,
) -> Measured:
    """Alternate the open, bearer-only and guarded routes against one server."""
    generator = server.generator or generator
    result = Measured(server, generator=generator)
    auth = {} if server.distinct else {"Authorization": f"Bearer {token}"}
    load = functools.partial(
        _loadgen.run_load,
        max_requests=max_requests,
        connections=connections,
        generator=generator,
        headers=auth,
        tokens_file=tokens_file if server.distinct else None,
    )
    with serve(server, jwks_url, token, baseline_dir) as base:
        if warmup:  # every worker loads its keys and warms its caches
            for path in ROUTES.values():
                load(f"{base}{path}", seconds=1)
        for _ in range(rounds):
            for route, path in ROUTES.items():
                result.runs[route].append(load(f"{base}{path}", seconds=seconds))
    return result


def servers(quick: bool) -> list[Server]:
    """The configurations: every app with 1 and 2 workers, the distinct-token loads, and
    0.2.0 beside this version for the one-token and distinct-token rows.

    Quick mode keeps one server per code path: 2 workers with the chosen load
    generator, then 1 worker with the cache off, the distinct-token loads, 0.2.0 and
    fastapi-cognito under the Python generator (so the fallback generator cannot rot
    where wrk is installed).
    """
    python = "1 worker (Python load generator)"
    old = _baseline.VERSION

    def many(label: str, baseline: bool = False) -> Server:
        return Server(
            f"{label}, {DISTINCT_TOKENS:,} distinct tokens, result cache on (every token "
            f"cached), {python}",
            "guard",
            1,
            "many",
            "python",
            distinct=True,
            baseline=baseline,
        )

    def misses(label: str, baseline: bool = False) -> Server:
        return Server(
            f"{label}, {DISTINCT_TOKENS:,} distinct tokens, result cache on (256 entries: "
            f"every request a miss), {python}",
            "guard",
            1,
            "small",
            "python",
            distinct=True,
            baseline=baseline,
        )

    if quick:
        return [
            Server("this library, result cache on, 2 workers", "guard", 2),
            Server(f"this library, result cache off, {python}", "guard", 1, "off", "python"),
            many("this library"),
            misses("this library"),
            Server(
                f"{old}, result cache on, {python}", "guard", 1, generator="python", baseline=True
            ),
            Server(f"fastapi-cognito, {python}", "fastapi-cognito", 1, generator="python"),
        ]
    return [
        *(
            Server(f"{label}, {workers} worker{'s' if workers > 1 else ''}", app, workers, cache)
            for workers in (1, 2)
            for label, app, cache in (
                ("this library, result cache on", "guard", "on"),
                ("this library, result cache off", "guard", "off"),
                ("fastapi-cognito", "fastapi-cognito", "on"),
            )
        ),
        Server(f"{old}, result cache on, 1 worker", "guard", 1, baseline=True),
        many("this library"),
        many(old, baseline=True),
        misses("this library"),
        misses(old, baseline=True),
    ]


def table(results: list[Measured]) -> str:
    """The throughput table in Markdown: medians with (min-max) over the rounds."""
    lines = [
        "| server | open req/s | bearer-only req/s | guarded req/s | bearer-only / open "
        "| **guarded / open** | target | open p50 / p99 ms | guarded p50 / p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for measured in results:
        if measured.skipped:
            lines.append(f"| {measured.server.label} | skipped: {measured.skipped} |" + " |" * 8)
            continue
        rps = {
            route: "{} ({})".format(*median_spread([r.rps for r in runs], ".0f"))
            for route, runs in measured.runs.items()
        }
        bearer = "{} ({})".format(*median_spread(measured.ratios("bearer")))
        guarded = "**{}** ({})".format(*median_spread(measured.ratios("guarded")))
        target = f"≥ {measured.server.target}" if measured.server.target else "–"
        latency = {
            route: f"{statistics.median(r.p50_ms for r in runs):.2f} / "
            f"{statistics.median(r.p99_ms for r in runs):.2f}"
            for route, runs in measured.runs.items()
        }
        errors = sum(r.errors + r.non_2xx for runs in measured.runs.values() for r in runs)
        lines.append(
            f"| {measured.server.label} | {rps['open']} | {rps['bearer']} | {rps['guarded']} "
            f"| {bearer} | {guarded} | {target} | {latency['open']} | {latency['guarded']} "
            f"| {errors} |"
        )
    return "\n".join(lines)


# -- in-process breakdown ------------------------------------------------------------------


async def _asgi_get(app: Any, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """One ``GET`` straight through the ASGI app: no server, no sockets."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _asgi_breakdown(
    jwks_url: str, token: str, rounds: int, calls: int
) -> list[tuple[str, dict[str, list[float]]]]:
    """µs per request of each route of each app, called in-process in alternating rounds."""
    builds: list[tuple[str, Callable[[], Any]]] = [
        ("this library, result cache on", lambda: _apps.guard_app(jwks_url)),
        ("this library, result cache off", lambda: _apps.guard_app(jwks_url, cache=False)),
    ]
    if not _peers.PEERS["fastapi-cognito"].status().startswith("skipped"):
        builds.append(("fastapi-cognito", lambda: _apps.fastapi_cognito_app(jwks_url)))
    headers = [(b"authorization", f"Bearer {token}".encode())]
    results: list[tuple[str, dict[str, list[float]]]] = []
    async with contextlib.AsyncExitStack() as stack:
        apps = []
        for label, build in builds:
            app = build()
            await stack.enter_async_context(app.router.lifespan_context(app))
            for path in ROUTES.values():  # keys fetched, caches warm
                for _ in range(max(10, calls // 10)):
                    if await _asgi_get(app, path, headers) != 200:
                        raise RuntimeError(f"{label} {path} did not answer 200")
            samples: dict[str, list[float]] = {route: [] for route in ROUTES}
            apps.append((app, samples))
            results.append((label, samples))
        for _ in range(rounds):
            for app, samples in apps:
                for route, path in ROUTES.items():
                    started = time.perf_counter()
                    for _ in range(calls):
                        await _asgi_get(app, path, headers)
                    samples[route].append((time.perf_counter() - started) / calls * 1e6)
    return results


def breakdown_table(results: list[tuple[str, dict[str, list[float]]]]) -> str:
    """The in-process table: µs per request, median (min-max over rounds)."""
    lines = [
        "| app | open µs | bearer-only µs | guarded µs | guarded − open µs |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, samples in results:
        cells = {
            route: "{} ({})".format(*median_spread(values, ".1f"))
            for route, values in samples.items()
        }
        extra = statistics.median(samples["guarded"]) - statistics.median(samples["open"])
        lines.append(
            f"| {label} | {cells['open']} | {cells['bearer']} | {cells['guarded']} | {extra:.1f} |"
        )
    return "\n".join(lines)


# -- session cookie against bearer ------------------------------------------------------

SESSION_SECTION = "## Session cookie vs bearer"
SESSION_SECRET = "benchmark-session-secret-of-32-characters"
SESSION_TARGET = 1.15


def session_cookie(issuer: LocalIssuer, token: str) -> str:
    """A ``Cookie`` header carrying a sealed session whose access token is ``token``
    (with an ID token and a Cognito-sized opaque refresh token, as a real one has)."""
    from fastapi_cognito_guard.sealing import Sealer
    from fastapi_cognito_guard.sessions.session import Session, SessionCodec

    now = int(time.time())
    session = Session(
        sid="benchmark",
        sub="sub",
        id_token=issuer.id_token(email="alice@example.com"),
        access_token=token,
        refresh_token="r" * 1700,
        expires_at=now + 3600,
        started_at=now,
    )
    return f"fcg_session={SessionCodec(Sealer([SESSION_SECRET], 'session-cookie')).seal(session)}"


async def _asgi_session_breakdown(
    jwks_url: str,
    oauth_url: str,
    credentials: dict[str, list[tuple[bytes, bytes]]],
    rounds: int,
    calls: int,
) -> dict[str, list[float]]:
    """µs per ``GET /me`` in-process, for each way of sending the same access token."""
    app = _apps.guard_app(jwks_url, session_secret=SESSION_SECRET, oauth_url=oauth_url)
    samples: dict[str, list[float]] = {way: [] for way in credentials}
    async with app.router.lifespan_context(app):
        for headers in credentials.values():
            for _ in range(max(10, calls // 10)):
                if await _asgi_get(app, "/me", headers) != 200:
                    raise RuntimeError("the session benchmark app did not answer 200")
        for _ in range(rounds):
            for way, headers in credentials.items():
                started = time.perf_counter()
                for _ in range(calls):
                    await _asgi_get(app, "/me", headers)
                samples[way].append((time.perf_counter() - started) / calls * 1e6)
    return samples


def measure_sessions(
    issuer: LocalIssuer,
    jwks_url: str,
    token: str,
    *,
    quick: bool,
    generator: str,
    rounds: int,
    seconds: float,
    max_requests: int,
    connections: int,
) -> tuple[str, str]:
    """The session-cookie / bearer tables: uvicorn throughput and in-process µs."""
    cookie = session_cookie(issuer, token)
    assert issuer.url is not None
    bearer = {"Authorization": f"Bearer {token}"}
    ways = {
        "bearer": bearer,
        "cookie": {"Cookie": cookie},
        # The same bytes on the wire as the session cookie, in a cookie the library
        # ignores: what the larger request costs the server and client by itself.
        "padded": {**bearer, "Cookie": "other=" + "x" * (len(cookie) - len(token))},
    }
    in_process = asyncio.run(
        _asgi_session_breakdown(
            jwks_url,
            issuer.url,
            {
                way: [(n.lower().encode(), v.encode()) for n, v in h.items()]
                for way, h in ways.items()
            },
            rounds=3 if quick else 7,
            calls=50 if quick else 2000,
        )
    )
    asgi = {way: statistics.median(values) for way, values in in_process.items()}
    ratios = [c / b for b, c in zip(in_process["bearer"], in_process["cookie"], strict=True)]
    asgi_table = "\n".join(
        [
            "| in-process | bearer µs | cookie µs | bearer + same-size cookie µs "
            "| **cookie / bearer** | target |",
            "|---|---:|---:|---:|---:|---:|",
            f"| `GET /me`, result cache on | {asgi['bearer']:.1f} | {asgi['cookie']:.1f} "
            f"| {asgi['padded']:.1f} "
            f"| **{statistics.median(ratios):.2f}** ({min(ratios):.2f}–{max(ratios):.2f}) "
            f"| ≤ {SESSION_TARGET} |",
        ]
    )
    server = Server("this library, sessions on, 1 worker", "guard", 1)
    runs: dict[str, list[LoadResult]] = {way: [] for way in ways}
    os.environ.update(BENCH_SESSION_SECRET=SESSION_SECRET, BENCH_OAUTH_URL=issuer.url)
    try:
        with serve(server, jwks_url, token) as base:
            for _ in range(rounds):
                for way, headers in ways.items():
                    runs[way].append(
                        _loadgen.run_load(
                            f"{base}/me",
                            seconds=seconds,
                            max_requests=max_requests,
                            connections=connections,
                            generator=generator,
                            headers=headers,
                        )
                    )
    finally:
        for name in ("BENCH_SESSION_SECRET", "BENCH_OAUTH_URL"):
            os.environ.pop(name, None)
    rps = {way: statistics.median(r.rps for r in results) for way, results in runs.items()}
    slowdown = [b.rps / c.rps for b, c in zip(runs["bearer"], runs["cookie"], strict=True)]
    padded = [p.rps / c.rps for p, c in zip(runs["padded"], runs["cookie"], strict=True)]
    http_table = "\n".join(
        [
            "| uvicorn | bearer req/s | cookie req/s | bearer + same-size cookie req/s "
            "| **bearer / cookie throughput** | padded bearer / cookie | target | errors |",
            "|---|---:|---:|---:|---:|---:|---:|---:|",
            f"| {server.label} | {rps['bearer']:.0f} | {rps['cookie']:.0f} "
            f"| {rps['padded']:.0f} "
            f"| **{statistics.median(slowdown):.2f}** ({min(slowdown):.2f}–{max(slowdown):.2f}) "
            f"| {statistics.median(padded):.2f} ({min(padded):.2f}–{max(padded):.2f}) "
            f"| ≤ {SESSION_TARGET} "
            f"| {sum(r.errors + r.non_2xx for v in runs.values() for r in v)} |",
        ]
    )
    return http_table, asgi_table


def extract_baseline(cleanup: contextlib.ExitStack) -> tuple[Path | None, str]:
    """0.2.0 extracted into a directory that ``cleanup`` removes, or None and why not."""
    directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="fcg-baseline-")))
    try:
        return _baseline.extract(directory), ""
    except _baseline.BaselineUnavailable as exc:
        return None, str(exc)


def stack() -> str:
    """The server stack: uvicorn's version and which HTTP parser and loop it picks."""
    http_impl = "httptools" if find_spec("httptools") else "h11"
    loop = "uvloop" if find_spec("uvloop") else "asyncio"
    return f"uvicorn {package_version('uvicorn')} ({http_impl}, {loop} loop), no access log"


def main() -> int:
    """Parse arguments, measure every server, print the table, write ``RESULTS.md``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds in total, for CI")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2, help="per run (wrk: whole seconds)")
    parser.add_argument("--max-requests", type=int, default=200_000, help="per run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument(
        "--sessions-only", action="store_true", help="only the session cookie vs bearer section"
    )
    args = parser.parse_args()
    rounds, seconds = (1, 1.0) if args.quick else (args.rounds, args.seconds)
    max_requests = 5_000 if args.quick else args.max_requests
    generator = _loadgen.available(args.loadgen)

    issuer = LocalIssuer()
    token = issuer.access_token(groups=["premium"], scopes=["orders/read"])
    distinct = [
        issuer.access_token(f"user{i}", groups=["premium"], scopes=["orders/read"])
        for i in range(20 if args.quick else DISTINCT_TOKENS)
    ]
    results: list[Measured] = []
    with (
        issuer.serve() as jwks_url,
        tempfile.NamedTemporaryFile("w", suffix=".tokens") as tokens_file,
        contextlib.ExitStack() as cleanup,
    ):
        tokens_file.write("\n".join(distinct))
        tokens_file.flush()
        session_tables = measure_sessions(
            issuer,
            jwks_url,
            token,
            quick=args.quick,
            generator=generator,
            rounds=rounds,
            seconds=0.3 if args.quick else seconds,
            max_requests=max_requests,
            connections=args.connections,
        )
        print("\n\n".join(session_tables))
        if not args.quick:
            write_session_section(session_tables, rounds, seconds, generator)
        if args.sessions_only:
            return 0
        baseline_dir, no_baseline = extract_baseline(cleanup)
        for server in servers(args.quick):
            if server.app != "guard":
                status = _peers.PEERS[server.app].status()
                if status.startswith("skipped"):
                    results.append(Measured(server, skipped=status.removeprefix("skipped: ")))
                    continue
            if server.baseline and baseline_dir is None:
                results.append(Measured(server, skipped=no_baseline))
                continue
            results.append(
                measure(
                    server,
                    jwks_url,
                    token,
                    rounds=rounds,
                    seconds=0.3 if args.quick and server.generator == "python" else seconds,
                    max_requests=max_requests,
                    connections=args.connections,
                    generator=generator,
                    warmup=not args.quick,
                    tokens_file=tokens_file.name,
                    baseline_dir=baseline_dir,
                )
            )
        in_process = asyncio.run(
            _asgi_breakdown(
                jwks_url, token, rounds=3 if args.quick else 7, calls=50 if args.quick else 2000
            )
        )
    rendered, rendered_breakdown = table(results), breakdown_table(in_process)
    print(rendered)
    print(f"load generator: {generator}; server: {stack()}")
    print()
    print(rendered_breakdown)
    if args.quick:
        return 0
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    write_section(machine_section(_peers.peers_markdown()), first=True)
    write_section(
        f"""{SECTION}

`python benchmarks/http.py` ({rounds} alternating rounds of {seconds:g} s per route, at most
{max_requests:,} requests per run; {args.connections} keep-alive connections from
`{generator}` with one thread; {stack()}; {machine()}). Each server is its own
`uvicorn.run(..., workers=N)` process tree serving `benchmarks/_apps.py`; the load generator
runs on the same 2 cores and takes CPU from the server. Every request carries the same valid
access token, except in the distinct-tokens rows, where each request carries the next of
{DISTINCT_TOKENS:,} valid tokens: with the default result cache (10,000 entries) every token
is cached after its first request (a service with a few thousand active users), and with a
result cache of 256 every guarded request verifies afresh (a busy API's many clients).
`/open` ignores the token, `/bearer` reads it with FastAPI's own `HTTPBearer` and verifies
nothing (the floor any auth dependency pays), `/me` depends on `current_user`. The rows
marked {_baseline.VERSION} serve the previous release (main at `{_baseline.COMMIT}`, its
package and `benchmarks/_apps.py` extracted with `git archive`) in the same run. Load
average when the run ended: {load}.
Cells: median (min–max over the rounds); ratios are medians of the per-round ratios.

Two uvicorn behaviours are corrected in `benchmarks/_apps.py` so that 2 workers measure the
app: with `workers > 1` uvicorn's listening socket loses `TCP_NODELAY` on accepted
connections (uvicorn issue #3149: every keep-alive request then waits ~40 ms for a delayed
ACK; any app served with `--workers N` on Linux is affected), and asyncio accepts every
queued connection on one wake-up, so a load generator's burst of connections lands on one
worker (each worker is made to accept one connection per wake-up).

{rendered}

The same apps called in-process through ASGI (no server, no sockets, no load generator;
{3 if args.quick else 7} alternating rounds of 2,000 calls), in µs per request:

{rendered_breakdown}

What it means: the ratio is the share of an open route's throughput a route keeps when it
verifies a Cognito token. With the result cache on (the default), a client that repeats its
token pays one dictionary lookup: the verified claims and the `CognitoUser` built from them
share one cache entry (`verify(token, build=...)`), as many as `result_cache_size`, so
2,000 active users cost what one does. In {_baseline.VERSION} the users lived in a separate
cache of 1,024 beside the verifier's results: with 2,000 distinct tokens every request
rebuilt its user although the token's verification was cached (compare its
distinct-tokens row). Almost all the guarded route adds is FastAPI resolving one
dependency (compare the bearer-only column, FastAPI's own `HTTPBearer` verifying nothing);
with the cache off every request also pays the RSA check and builds its user, which is what
a flood of distinct valid tokens costs. fastapi-cognito has no result cache and rebuilds the
key from the JWK on every request. Absolute numbers depend on the machine and the server
stack (h11 vs httptools, asyncio vs uvloop: a faster stack makes the open route cheaper and
every ratio lower); the ratios are the point.
"""
    )
    return 0


def write_session_section(
    tables: tuple[str, str], rounds: int, seconds: float, generator: str
) -> None:
    http_table, asgi_table = tables
    write_section(
        f"""{SESSION_SECTION}

`python benchmarks/http.py --sessions-only` ({rounds} alternating rounds of {seconds:g} s;
`{generator}`; {stack()}; {machine()}). One app with browser sessions on serves `GET /me`
(`current_user`, result cache on) to the same access token sent two ways: as
`Authorization: Bearer`, and inside the sealed session cookie (with an ID token and a
Cognito-sized refresh token, about 4.5 KB, so two cookie chunks' worth of text in one
header). The cookie path parses the `Cookie` header, finds the opened session in a small
cache keyed by the sealed value (AES-GCM runs once per distinct cookie) and checks its
times and the request's method; bearer requests pass the same middleware and skip it.
The third way sends the bearer token plus an unrelated cookie as large as the session
cookie: the gap between it and the cookie is what the library adds; the gap between it
and the plain bearer is the bigger request itself (client, socket and HTTP parser: h11 is
pure Python). Timing on a busy machine is noisy: read the ratios, not the absolute numbers.

{http_table}

{asgi_table}
"""
    )


if __name__ == "__main__":
    sys.exit(main())
