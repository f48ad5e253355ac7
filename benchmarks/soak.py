"""Soak: a real server verifying a stream of good and hostile tokens through key rotation
and a JWKS outage, with every request's right answer known in advance.

Run: ``python benchmarks/soak.py [--quick | --requests N] [--concurrency C]``. The
full run writes a "Soak" section into ``benchmarks/RESULTS.md``; ``tests/test_soak.py``
runs the same code (``run_soak``) in a short mode.

Set-up, all on 127.0.0.1: a uvicorn server (its own process) runs a FastAPI app
whose ``GET /me`` depends on ``current_user``, configured only by the ``COGNITO_*``
environment, with a short JWKS TTL and cooldown. Its JWKS comes from a JWKS
server in this process that publishes exactly the keys the schedule says and
can fail on command. An async httpx client keeps ``concurrency`` requests in
flight. Tokens come from ``LocalIssuer``s: valid ones, expired ones, forgeries
(a signature from another token, ``alg: none``, HS256 keyed with the public key,
another key under a published kid), tokens of another user pool, and tokens of
a key that is never published.

The schedule (phases run back to back; within a phase the order is random):

1. ``steady``: key K1 published; valid K1 tokens.
2. ``rotation``: K1 and K2 published (``rotate_keys(keep_old=True)``); valid
   tokens of both. The first K2 token is a kid miss: one refetch.
3. ``outage``: the JWKS endpoint answers 500, then hangs past the fetch timeout,
   for several TTLs; requests arrive in ticks a TTL apart, so refreshes keep
   failing. Valid tokens of K1 and K2 must still be served from the stale keys.
   Tokens of a never-published key may get 503 (keys unavailable) here and just
   after: those are counted apart, never as 5xx errors.
4. ``drop``: the endpoint recovers and publishes K2 only; valid K2 tokens, no
   K1 token until the server has fetched the new JWKS.
5. ``revoked``: valid K2 tokens; K1 tokens (ones the server accepted and cached
   before included) must now be rejected.

Every response is checked against its expected status (and a 200 against the
token's ``sub``): a 200 for a token that must be rejected is a false accept; a
non-200 for a valid token whose key is published is a false reject.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as ``python benchmarks/soak.py``: import from the repository root, not from
    # benchmarks/ (whose http.py would shadow the standard library's ``http``).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import socket
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization

from fastapi_cognito_guard.testing import LocalIssuer

__all__ = ["SoakReport", "create_app", "main", "run_soak"]

ROOT = Path(__file__).resolve().parent.parent
SECTION = "## Soak"
POOL_ID = "eu-central-1_Soak"
CLIENT_ID = "soak-client"
FOREIGN_POOL_ID = "eu-central-1_Foreign"
JWKS_PATH = f"/{POOL_ID}/.well-known/jwks.json"

# -- the server under test (runs in its own process) --------------------------------


def create_app() -> Any:
    """The guarded app, configured by the ``COGNITO_*`` environment."""
    from fastapi import Depends, FastAPI

    from fastapi_cognito_guard import CognitoAuth, CognitoUser, current_user

    auth: CognitoAuth[CognitoUser] = CognitoAuth()
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/me")
    async def me(user: CognitoUser = Depends(current_user)) -> dict[str, Any]:
        return {"sub": user.sub, "username": user.username}

    return app


def _serve() -> None:
    """Child-process entry: bind a free port, print it, serve ``create_app`` with uvicorn."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(
        create_app,
        factory=True,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=120,  # the schedule pauses; idle connections must not be cut
    )
    uvicorn.Server(config).run(sockets=[sock])


def _tail(log: Path, lines: int = 20) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def app_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """Start the app in a child process; yields its base URL; stops it afterwards."""
    child_env = {k: v for k, v in os.environ.items() if not k.startswith("COGNITO_")}
    child_env.update(env)
    child_env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [child_env.get("PYTHONPATH")])]
    )
    with open(log, "wb") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.soak", "--serve"],
            cwd=ROOT,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=errors,
        )
        try:
            assert process.stdout is not None
            line = process.stdout.readline().decode().strip()
            if not line.isdigit():
                raise RuntimeError(f"the soak server did not start:\n{_tail(log)}")
            base = f"http://127.0.0.1:{line}"
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError(f"the soak server never became ready:\n{_tail(log)}")
                time.sleep(0.05)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# -- the JWKS endpoint ---------------------------------------------------------------


class JWKSEndpoint:
    """Publishes ``document`` at ``JWKS_PATH``; while ``fault`` is ``"error"`` answers
    500, while ``"hang"`` answers nothing until ``hang_seconds`` have passed."""

    def __init__(self, hang_seconds: float) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fault: str | None = None
        self.hang_seconds = hang_seconds
        self.version = 0
        self.served: Counter[int] = Counter()  # good answers per document version
        self.failed = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != JWKS_PATH:
                    self.send_error(404)
                    return
                with endpoint._lock:
                    fault, version = endpoint.fault, endpoint.version
                    body = json.dumps(endpoint.document).encode()
                    if fault is None:
                        endpoint.served[version] += 1
                    else:
                        endpoint.failed += 1
                if fault == "hang" and endpoint._stop.wait(endpoint.hang_seconds):
                    return
                status = 200 if fault is None else 500
                if fault is not None:
                    body = b'{"message": "unavailable"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{JWKS_PATH}"

    def publish(self, keys: Sequence[dict[str, Any]]) -> int:
        """Serve ``keys`` from now on; returns the document's version."""
        with self._lock:
            self.document = {"keys": list(keys)}
            self.version += 1
            return self.version

    def fetches(self, since_version: int = 0) -> int:
        with self._lock:
            return sum(n for version, n in self.served.items() if version >= since_version)

    def __enter__(self) -> JWKSEndpoint:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


# -- tokens and the schedule ---------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    """One request: its token, the kind of token and the statuses that are right."""

    kind: str
    token: str
    expect: frozenset[int]
    sub: str | None = None  # the sub a 200 must name


OK = frozenset({200})
REJECT = frozenset({401})
REJECT_OR_UNAVAILABLE = frozenset({401, 503})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _segments(token: str) -> list[str]:
    return token.split(".")


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _unverified_sub(token: str) -> str:
    return str(json.loads(_b64url_decode(_segments(token)[1]))["sub"])


class Tokens:
    """Pools of tokens of every kind, minted up front (RSA signing is slow)."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.rng = rng
        self.issuer = LocalIssuer(POOL_ID, CLIENT_ID)
        self.k1 = self.issuer.jwks()["keys"][0]
        self.valid_k1 = self._valid(size, "k1")
        self.probe = self.issuer.access_token("probe")  # K1, never in the schedule
        self.expired = [self.issuer.access_token(f"gone{i}", expires_in=-3600) for i in range(8)]
        self.issuer.rotate_keys(keep_old=True)
        self.k2 = self.issuer.jwks()["keys"][-1]
        self.valid_k2 = self._valid(size, "k2")
        self.expired += [self.issuer.access_token(f"gone{i}", expires_in=-3600) for i in range(8)]
        stranger = LocalIssuer(POOL_ID, CLIENT_ID)  # same pool and claims, its own key
        self.unpublished = [stranger.access_token(f"ghost{i}") for i in range(16)]
        self.foreign_key = [
            stranger.sign(
                json.loads(_b64url_decode(_segments(t)[1])),
                header={"kid": self.k1["kid"], "alg": "RS256"},
            )
            for t in self.unpublished[:8]
        ]
        foreign = LocalIssuer(FOREIGN_POOL_ID, "foreign-client")
        self.foreign_pool = [foreign.access_token(f"alien{i}") for i in range(16)]
        self.bad_signature = [
            ".".join([*_segments(a)[:2], _segments(b)[2]])
            for a, b in zip(
                self.valid_k1[:8] + self.valid_k2[:8], self.valid_k1[8:16] * 2, strict=True
            )
        ]
        pem = (
            self.issuer._keys[0]
            .private_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.PKCS1)
        )
        self.hs256 = [self._hmac(t, pem, self.k1["kid"]) for t in self.valid_k1[:8]]
        self.alg_none = [self._alg_none(t) for t in self.valid_k1[:8]]

    def _valid(self, size: int, tag: str) -> list[str]:
        return [self.issuer.access_token(f"{tag}-user{i}") for i in range(size)]

    @staticmethod
    def _hmac(token: str, secret: bytes, kid: str) -> str:
        header = _b64url(json.dumps({"alg": "HS256", "kid": kid}).encode())
        signing_input = f"{header}.{_segments(token)[1]}"
        mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{_b64url(mac)}"

    @staticmethod
    def _alg_none(token: str) -> str:
        header = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        return f"{header}.{_segments(token)[1]}."

    def pick(self, kind: str, phase: str) -> Planned:
        """One request of ``kind`` in ``phase``, with its expected statuses."""
        choice = self.rng.choice
        if kind == "valid":
            pools = {
                "steady": [self.valid_k1],
                "rotation": [self.valid_k1, self.valid_k2],
                "outage": [self.valid_k1, self.valid_k2],
                "drop": [self.valid_k2],
                "revoked": [self.valid_k2],
            }[phase]
            token = choice(choice(pools))
            return Planned(kind, token, OK, _unverified_sub(token))
        if kind == "revoked":  # K1 tokens once K1 has left the JWKS
            return Planned(kind, choice(self.valid_k1), REJECT)
        if kind == "unpublished":
            expect = REJECT_OR_UNAVAILABLE if phase in ("outage", "drop") else REJECT
            return Planned(kind, choice(self.unpublished), expect)
        pool = {
            "expired": self.expired,
            "bad_signature": self.bad_signature,
            "foreign_key": self.foreign_key,
            "foreign_pool": self.foreign_pool,
            "hs256": self.hs256,
            "alg_none": self.alg_none,
        }[kind]
        return Planned(kind, choice(pool), REJECT)


MIX = {
    "valid": 60,
    "expired": 6,
    "bad_signature": 6,
    "foreign_key": 4,
    "foreign_pool": 6,
    "hs256": 4,
    "alg_none": 4,
    "unpublished": 4,
}
PHASES = (  # name, share of the requests
    ("steady", 0.2),
    ("rotation", 0.2),
    ("outage", 0.25),
    ("drop", 0.1),
    ("revoked", 0.25),
)


def plan(tokens: Tokens, requests: int, rng: random.Random) -> dict[str, list[Planned]]:
    """Every phase's requests, in order, with their expected answers."""
    schedule: dict[str, list[Planned]] = {}
    left = requests
    for index, (phase, share) in enumerate(PHASES):
        count = left if index == len(PHASES) - 1 else round(requests * share)
        left -= count
        mix = dict(MIX)
        if phase == "revoked":
            mix["revoked"] = 8
        kinds = rng.choices(list(mix), weights=list(mix.values()), k=count)
        schedule[phase] = [tokens.pick(kind, phase) for kind in kinds]
    return schedule


# -- the run -------------------------------------------------------------------------


@dataclass
class SoakReport:
    """What a soak run saw. ``false_accepts``, ``false_rejects``, ``server_errors``,
    ``unexpected`` and ``transport_errors`` must all be zero."""

    requests: int
    concurrency: int
    ttl: float
    cooldown: float
    timeout: float
    served: int = 0
    false_accepts: int = 0
    false_rejects: int = 0
    server_errors: int = 0  # 5xx that no schedule allows
    unexpected: int = 0  # any other status that is not the expected one
    transport_errors: int = 0
    outage_unavailable: int = 0  # 503 for never-published keys while keys could not be fetched
    jwks_fetches: int = 0  # answered with a JWKS
    jwks_failed_fetches: int = 0  # answered with a fault during the outage
    probes: int = 0  # unscored requests that waited for the old key to be dropped
    duration: float = 0.0
    by_kind: Counter[str] = field(default_factory=Counter)
    statuses: Counter[int] = field(default_factory=Counter)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    server_log: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.served / self.duration if self.duration else 0.0

    def record(self, item: Planned, status: int | None, body: bytes) -> None:
        self.by_kind[item.kind] += 1
        if status is None:
            self.transport_errors += 1
            return
        self.served += 1
        self.statuses[status] += 1
        if status in item.expect:
            if status == 200 and _sub_of(body) != item.sub:
                self.unexpected += 1  # a 200 for someone else
            elif status == 503:
                self.outage_unavailable += 1
            return
        if status == 200:
            self.false_accepts += 1
        elif 200 in item.expect:
            self.false_rejects += 1
        if status >= 500:
            self.server_errors += 1
        elif 200 not in item.expect:
            self.unexpected += 1

    def table(self) -> str:
        rows = [
            ("requests sent / answered", f"{self.requests:,} / {self.served:,}"),
            ("concurrency", str(self.concurrency)),
            ("false accepts", str(self.false_accepts)),
            ("false rejects (valid token, key published)", str(self.false_rejects)),
            ("5xx", str(self.server_errors)),
            (
                "unexpected status / transport errors",
                f"{self.unexpected} / {self.transport_errors}",
            ),
            ("503 for never-published keys during the outage", str(self.outage_unavailable)),
            (
                "JWKS fetches (good / failed in the outage)",
                f"{self.jwks_fetches} / {self.jwks_failed_fetches}",
            ),
            ("duration", f"{self.duration:.1f} s ({self.rate:,.0f} requests/s)"),
        ]
        lines = ["| measure | value |", "|---|---:|"]
        lines += [f"| {name} | {value} |" for name, value in rows]
        return "\n".join(lines)


def _sub_of(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("sub")
    except (ValueError, AttributeError):
        return None
    return value if isinstance(value, str) else None


async def _drive(
    client: httpx.AsyncClient, items: Sequence[Planned], concurrency: int, report: SoakReport
) -> None:
    """Send ``items`` keeping ``concurrency`` requests in flight; record each answer."""
    cursor = iter(items)

    async def worker() -> None:
        for item in cursor:
            scheme = "Bearer" if len(item.token) % 2 else "bearer"
            try:
                response = await client.get(
                    "/me", headers={"Authorization": f"{scheme} {item.token}"}
                )
            except httpx.HTTPError:
                report.record(item, None, b"")
                continue
            report.record(item, response.status_code, response.content)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _until_dropped(
    client: httpx.AsyncClient, probe: str, pause: float, report: SoakReport
) -> None:
    """Wait until the server has stored the JWKS without K1, i.e. rejects a K1 token
    (one never in the schedule). These probes are not scored."""
    deadline = time.monotonic() + 20 * pause + 10
    while True:
        response = await client.get("/me", headers={"Authorization": f"Bearer {probe}"})
        report.probes += 1
        if response.status_code == 401:
            return
        if time.monotonic() > deadline:
            raise RuntimeError("the server never dropped the old key")
        await asyncio.sleep(0.05)


async def _run(
    base: str,
    jwks: JWKSEndpoint,
    tokens: Tokens,
    schedule: dict[str, list[Planned]],
    report: SoakReport,
    *,
    ttl: float,
    cooldown: float,
    timeout: float,
    outage_ticks: int,
    progress: Callable[[str], None],
) -> None:
    pause = max(ttl, cooldown) + 0.1  # a tick apart: stale keys, cooldown over
    limits = httpx.Limits(max_connections=report.concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        started = time.perf_counter()
        for phase, _ in PHASES:
            ticks = {"outage": outage_ticks, "drop": 2}.get(phase, 1)
            items = schedule[phase]
            if phase == "rotation":
                jwks.publish([tokens.k1, tokens.k2])
                # No fetch from before the rotation still in flight, no kid-miss cooldown.
                await asyncio.sleep(max(cooldown, timeout) + 0.2)
            elif phase == "outage":
                jwks.fault = "error"
            elif phase == "drop":
                jwks.fault = None
                jwks.publish([tokens.k2])
                await asyncio.sleep(timeout + pause)  # a hung fetch has timed out
            elif phase == "revoked":
                await _until_dropped(client, tokens.probe, pause, report)
            phase_started = time.perf_counter()
            size = -(-len(items) // ticks)
            for tick in range(ticks):
                if tick:
                    await asyncio.sleep(pause)
                if phase == "outage" and tick == ticks // 2:
                    jwks.fault = "hang"
                await _drive(
                    client, items[tick * size : (tick + 1) * size], report.concurrency, report
                )
            report.phase_seconds[phase] = time.perf_counter() - phase_started
            progress(f"{phase}: {len(items)} requests in {report.phase_seconds[phase]:.1f} s")
        report.duration = time.perf_counter() - started


def run_soak(
    requests: int,
    concurrency: int,
    *,
    ttl: float = 1.0,
    cooldown: float = 0.5,
    timeout: float = 1.0,
    outage_ticks: int = 6,
    seed: int = 7,
    progress: Callable[[str], None] = lambda line: None,
) -> SoakReport:
    """Run the whole schedule against a fresh server; see the module docstring."""
    rng = random.Random(seed)
    tokens = Tokens(size=max(16, min(500, requests // 40)), rng=rng)
    schedule = plan(tokens, requests, rng)
    report = SoakReport(requests, concurrency, ttl=ttl, cooldown=cooldown, timeout=timeout)
    with JWKSEndpoint(hang_seconds=timeout + 1.5) as jwks, tempfile.TemporaryDirectory() as tmp:
        jwks.publish([tokens.k1])
        env = {
            "COGNITO_USER_POOL_ID": POOL_ID,
            "COGNITO_CLIENT_IDS": CLIENT_ID,
            "COGNITO_JWKS_URL": jwks.url,
            "COGNITO_JWKS_TTL_SECONDS": str(ttl),
            "COGNITO_JWKS_COOLDOWN_SECONDS": str(cooldown),
            "COGNITO_JWKS_TIMEOUT_SECONDS": str(timeout),
        }
        log = Path(tmp) / "server.log"
        with app_server(env, log) as base:
            asyncio.run(
                _run(
                    base,
                    jwks,
                    tokens,
                    schedule,
                    report,
                    ttl=ttl,
                    cooldown=cooldown,
                    timeout=timeout,
                    outage_ticks=outage_ticks,
                    progress=progress,
                )
            )
        report.jwks_fetches = jwks.fetches()
        report.jwks_failed_fetches = jwks.failed
        report.server_log = [line for line in log.read_text().splitlines() if line.strip()]
    return report


# -- command line --------------------------------------------------------------------


def write_results(report: SoakReport, command: str) -> None:
    from benchmarks._results import machine, write_section

    kinds = ", ".join(f"{kind} {count:,}" for kind, count in sorted(report.by_kind.items()))
    phases = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in report.phase_seconds.items())
    write_section(
        f"""{SECTION}

`{command}` on {machine()}.
One uvicorn process serving `GET /me` behind `current_user`, {report.concurrency}
requests in flight from an httpx client; JWKS TTL {report.ttl:g} s, cooldown
{report.cooldown:g} s and fetch timeout {report.timeout:g} s, so the run sees many
refreshes: a rotation (K1 → K1+K2), an outage (500, then hanging past the fetch
timeout) lasting several TTLs, and the old key dropped. Every request's right
answer is known in advance; a mix of valid, expired, forged (signature of another
token, `alg: none`, HS256 keyed with the public key, another key under a published
kid), other-pool and never-published-key tokens.

{report.table()}

Requests by token kind: {kinds}. Phases: {phases}.
The requests/s figure is the client and the server sharing two cores; see the HTTP
section for throughput.
"""
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2,000 requests; RESULTS.md untouched")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        _serve()
        return 0
    requests = 2_000 if args.quick else args.requests
    report = run_soak(requests, args.concurrency, progress=print)
    print(report.table())
    for line in report.server_log:
        print(f"server: {line}")
    failures = (
        report.false_accepts
        + report.false_rejects
        + report.server_errors
        + report.unexpected
        + report.transport_errors
    )
    if not args.quick:
        command = "python benchmarks/soak.py" + (
            f" --requests {requests}" if requests != 50_000 else ""
        )
        write_results(report, command)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
