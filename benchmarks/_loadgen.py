"""HTTP load generators for ``benchmarks/http.py``: Debian's ``wrk``, or a Python fallback.

Both run in their own process, keep a fixed number of keep-alive connections
busy against one URL on 127.0.0.1, stop at a time limit or a request-count
limit (whichever comes first) and report a ``LoadResult``.

- ``wrk`` (``apt-get install -y wrk``): one thread, ``-c`` connections; a Lua
  script stops each thread at its share of the request limit and reports the
  time up to that stop (``wrk`` itself always sleeps for ``-d``), plus p50/p99.
- The fallback, ``python -m benchmarks._loadgen``: a raw asyncio HTTP/1.1
  client (no httpx: its per-request overhead would make the client, not the
  server, the bottleneck), printing one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

__all__ = ["LoadResult", "available", "run_load"]

_ROOT = Path(__file__).resolve().parent.parent

_WRK_LUA = r"""
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
]]
local function now()
  local ts = ffi.new("bench_timespec")
  ffi.C.clock_gettime(1, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end
local limit = tonumber(os.getenv("BENCH_THREAD_LIMIT") or "0")
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) count = 0; started = now(); stopped = 0 end
function response(status, headers, body)
  count = count + 1
  if limit > 0 and count >= limit and stopped == 0 then
    stopped = now()
    wrk.thread:stop()
  end
end
function done(summary, latency, requests)
  local first, last = math.huge, 0
  for _, t in ipairs(threads) do first = math.min(first, t:get("started")) end
  for _, t in ipairs(threads) do
    local s = t:get("stopped")
    if s == 0 then s = first + summary.duration / 1e6 end
    last = math.max(last, s)
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH_RESULT %d %.6f %.3f %.3f %d %d\n",
    summary.requests, last - first, latency:percentile(50) / 1000,
    latency:percentile(99) / 1000, e.connect + e.read + e.write + e.timeout, e.status))
end
"""


@dataclass
class LoadResult:
    """One load run: completed requests, how long it took and the latency percentiles."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    non_2xx: int
    generator: str

    @property
    def rps(self) -> float:
        """Requests per second."""
        return self.requests / self.seconds if self.seconds > 0 else 0.0


def available(choice: str = "auto") -> str:
    """The generator to use: ``wrk`` when asked for or found on ``PATH``, else ``python``."""
    if choice == "auto":
        return "wrk" if shutil.which("wrk") else "python"
    if choice == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian: apt-get install -y wrk)")
    return choice


def run_load(
    url: str,
    *,
    seconds: float,
    max_requests: int,
    connections: int,
    headers: dict[str, str] | None = None,
    generator: str = "auto",
    tokens_file: str | None = None,
) -> LoadResult:
    """Drive ``url`` for at most ``seconds`` and ``max_requests`` requests.

    ``wrk`` counts whole seconds (at least one). ``tokens_file`` (one token a line;
    the Python generator only) sends ``Authorization: Bearer <next token>`` on each
    request, cycling through the file.
    """
    generator = available(generator)
    headers = headers or {}
    if generator == "wrk":
        if tokens_file:
            raise ValueError("distinct tokens need the Python load generator")
        return _run_wrk(url, seconds, max_requests, connections, headers)
    command = [
        sys.executable,
        "-m",
        "benchmarks._loadgen",
        url,
        f"--seconds={seconds}",
        f"--max-requests={max_requests}",
        f"--connections={connections}",
        *(f"--header={name}: {value}" for name, value in headers.items()),
        *([f"--tokens-file={tokens_file}"] if tokens_file else []),
    ]
    done = subprocess.run(
        command, cwd=_ROOT, capture_output=True, text=True, timeout=seconds + 30, check=True
    )
    return LoadResult(**json.loads(done.stdout.strip().splitlines()[-1]))


def _run_wrk(
    url: str, seconds: float, max_requests: int, connections: int, headers: dict[str, str]
) -> LoadResult:
    whole = max(1, round(seconds))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_LUA)
    try:
        command = ["wrk", "-t1", f"-c{connections}", f"-d{whole}s", "-s", script.name]
        for name, value in headers.items():
            command += ["-H", f"{name}: {value}"]
        env = {**os.environ, "BENCH_THREAD_LIMIT": str(max_requests)}
        done = subprocess.run(
            [*command, url],
            capture_output=True,
            text=True,
            timeout=whole + 30,
            check=True,
            env=env,
        )
    finally:
        os.unlink(script.name)
    line = next(line for line in done.stdout.splitlines() if line.startswith("BENCH_RESULT"))
    requests, elapsed, p50, p99, errors, non_2xx = line.split()[1:]
    return LoadResult(
        int(requests), float(elapsed), float(p50), float(p99), int(errors), int(non_2xx), "wrk"
    )


# -- the Python fallback (runs in its own process) ---------------------------------------


async def _drive(
    url: str,
    seconds: float,
    max_requests: int,
    connections: int,
    headers: list[str],
    tokens: list[str],
) -> LoadResult:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    head = "".join(f"{line}\r\n" for line in headers)
    template = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{head}"
    requests = [
        f"{template}Authorization: Bearer {token}\r\n\r\n".encode() for token in tokens
    ] or [f"{template}\r\n".encode()]
    following = itertools.cycle(requests).__next__
    latencies: list[float] = []
    counts = {"sent": 0, "errors": 0, "non_2xx": 0}
    deadline = time.perf_counter() + seconds

    async def connection() -> None:
        reader = writer = None
        while time.perf_counter() < deadline and counts["sent"] < max_requests:
            counts["sent"] += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection(host, port)
                assert reader is not None
                started = time.perf_counter()
                writer.write(following())
                response_head = await reader.readuntil(b"\r\n\r\n")
                lines = response_head.decode("latin-1").split("\r\n")
                fields = (line.split(":", 1) for line in lines[1:] if ":" in line)
                lowered = {name.strip().lower(): value.strip() for name, value in fields}
                await reader.readexactly(int(lowered.get("content-length", "0")))
                latencies.append(time.perf_counter() - started)
                if not lines[0].split(" ")[1].startswith("2"):
                    counts["non_2xx"] += 1
                if lowered.get("connection", "").lower() == "close":
                    writer.close()
                    reader = writer = None
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
                counts["errors"] += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    start = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies) or [0.0]
    return LoadResult(
        requests=len(latencies),
        seconds=elapsed,
        p50_ms=statistics.median(ordered) * 1000,
        p99_ms=ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000,
        errors=counts["errors"],
        non_2xx=counts["non_2xx"],
        generator="python",
    )


def main() -> None:
    """Command line of the Python fallback: prints one JSON ``LoadResult``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--max-requests", type=int, required=True)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--tokens-file", help="one bearer token a line, sent in turn")
    args = parser.parse_args()
    tokens = Path(args.tokens_file).read_text().split() if args.tokens_file else []
    result = asyncio.run(
        _drive(args.url, args.seconds, args.max_requests, args.connections, args.header, tokens)
    )
    print(json.dumps(asdict(result)))


if __name__ == "__main__":
    main()
