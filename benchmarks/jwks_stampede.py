"""JWKS stampedes: cold start under a burst, a flood of unknown kids, and outages.

Run: ``python benchmarks/jwks_stampede.py [--quick]``. Each contender is the
minimal app from ``benchmarks/_apps.py`` (this library's ``current_user``,
fastapi-cognito's ``auth_required``, fastapi-cloudauth's ``Cognito``), driven
in-process through ``httpx.ASGITransport`` (lifespan included), while its keys
come over real HTTP from its own ``tests/jwks_server.JWKSServer`` on
127.0.0.1, which counts every JWKS request and can fail on command.

1. Cold start: ``--burst`` (1,000) concurrent requests, each with a different
   user's valid token, hit a just-started app: JWKS fetches, time to the first
   200 and to the last answer.
2. Unknown kids: ``--flood-seconds`` of requests whose tokens name kids that
   are not in the JWKS (a made-up kid per token): JWKS fetches per minute. Then,
   on a fresh app, a key published after start-up: is it picked up?
3. Outage while running: keys loaded, then the JWKS answers HTTP 500 for
   ``--outage-seconds``; valid tokens keep coming. This library runs with
   ``jwks_ttl_seconds=1`` here so its keys go stale during the outage (the
   peers never refresh their keys at all).
4. Restart during an outage: the app starts while the JWKS answers HTTP 500
   (a JSON error body) or refuses connections; then the JWKS comes back.

Scenarios 2-4 run the contenders concurrently (each against its own JWKS
server), so the counts do not depend on who ran first. Full mode writes its
section into ``RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as ``python benchmarks/jwks_stampede.py``: import ``benchmarks.*`` and
    # ``tests.*`` from the repository root, not from benchmarks/ (whose http.py would
    # shadow the standard library's ``http``).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import contextlib
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import FastAPI

from benchmarks import _apps, _peers
from benchmarks._results import machine, machine_section, write_section
from fastapi_cognito_guard.testing import LocalIssuer
from tests.jwks_server import JWKSServer

SECTION = "## JWKS stampedes and outages"

AppFactory = Callable[[str], FastAPI]


@dataclass(frozen=True)
class Contender:
    """An app factory (``jwks_url -> FastAPI``) and the peer it needs, if any."""

    name: str
    build: AppFactory
    peer: str | None = None

    def status(self) -> str | None:
        """``None`` when usable, else why it is skipped."""
        if self.peer is None:
            return None
        status = _peers.PEERS[self.peer].status()
        return status.removeprefix("skipped: ") if status.startswith("skipped") else None


def contenders(*, stale_ttl: bool = False, prefetch_variants: bool = False) -> list[Contender]:
    """The apps compared; ``stale_ttl`` gives this library a 1 s key TTL."""
    extra: dict[str, Any] = {"jwks_ttl_seconds": 1} if stale_ttl else {}
    guard: list[Contender] = [
        Contender("this library", lambda url: _apps.guard_app(url, **extra)),
    ]
    if prefetch_variants:
        guard = [
            Contender("this library (lifespan prefetch)", lambda url: _apps.guard_app(url)),
            Contender(
                "this library, no prefetch", lambda url: _apps.guard_app(url, prefetch=False)
            ),
        ]
    return [
        *guard,
        Contender("fastapi-cognito", _apps.fastapi_cognito_app, "fastapi-cognito"),
        Contender("fastapi-cloudauth", _apps.cloudauth_app, "fastapi-cloudauth"),
    ]


@dataclass
class Answer:
    """One response: status, when it arrived, its ``Retry-After``."""

    status: int
    at: float
    retry_after: str | None = None


@dataclass
class Outcome:
    """What one contender did in one scenario."""

    name: str
    started: bool = True
    startup_ms: float = 0.0
    fetches: int = 0
    answers: list[Answer] = field(default_factory=list)
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def statuses(self) -> str:
        if not self.started:
            return "app did not start"
        counts = Counter(answer.status for answer in self.answers)
        return ", ".join(f"{count}× {status}" for status, count in sorted(counts.items())) or "–"

    def error_rate(self) -> str:
        if not self.answers:
            return "–"
        errors = sum(answer.status != 200 for answer in self.answers)
        return f"{errors / len(self.answers):.1%}"


@contextlib.asynccontextmanager
async def running(build: AppFactory, url: str) -> AsyncIterator[tuple[httpx.AsyncClient, float]]:
    """Build the app, run its lifespan; yields a client and the start-up time in ms."""
    started = time.perf_counter()
    app = build(url)
    async with app.router.lifespan_context(app):
        startup_ms = (time.perf_counter() - started) * 1000
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench.local") as client:
            yield client, startup_ms


async def get_me(client: httpx.AsyncClient, token: str) -> Answer:
    """``GET /me`` with ``token``."""
    response = await client.get("/me", headers={"Authorization": f"Bearer {token}"})
    return Answer(response.status_code, time.perf_counter(), response.headers.get("retry-after"))


def _start_failure(exc: BaseException) -> str:
    return f"{type(exc).__name__} at start-up"


# -- 1. cold start -------------------------------------------------------------------------


async def cold_start(contender: Contender, issuer: LocalIssuer, tokens: list[str]) -> Outcome:
    """A burst of concurrent requests on a just-started app."""
    outcome = Outcome(contender.name)
    with JWKSServer(issuer) as server:
        try:
            async with running(contender.build, server.url) as (client, startup_ms):
                outcome.startup_ms = startup_ms
                burst_start = time.perf_counter()
                outcome.answers = list(await asyncio.gather(*(get_me(client, t) for t in tokens)))
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result
            outcome.started, outcome.note = False, _start_failure(exc)
            return outcome
        outcome.fetches = server.requests
    ok = [answer.at for answer in outcome.answers if answer.status == 200]
    outcome.extra["first_ok_ms"] = (min(ok) - burst_start) * 1000 if ok else None
    outcome.extra["last_ms"] = (max(a.at for a in outcome.answers) - burst_start) * 1000
    return outcome


# -- 2. unknown kids -------------------------------------------------------------------------


def unknown_kid_tokens(issuer: LocalIssuer, count: int) -> list[str]:
    """Validly shaped tokens for ``issuer``'s pool naming kids its JWKS does not have."""
    forger = LocalIssuer(issuer.user_pool_id, issuer.client_id)
    claims = {
        "sub": str(uuid.uuid4()),
        "iss": issuer.issuer,
        "token_use": "access",
        "client_id": issuer.client_id,
        "scope": "aws.cognito.signin.user.admin",
        "username": "mallory",
        "auth_time": int(time.time()),
        "iat": int(time.time()),
        "exp": int(time.time()) + 3600,
        "jti": str(uuid.uuid4()),
    }
    return [
        forger.sign(claims, header={"kid": str(uuid.uuid4()), "alg": "RS256"}) for _ in range(count)
    ]


async def drive(
    client: httpx.AsyncClient, tokens: list[str], seconds: float, max_requests: int, workers: int
) -> list[Answer]:
    """``workers`` concurrent loops cycling through ``tokens`` until time or count runs out."""
    answers: list[Answer] = []
    deadline = time.perf_counter() + seconds

    async def loop(offset: int) -> None:
        index = offset
        while time.perf_counter() < deadline and len(answers) < max_requests:
            answers.append(await get_me(client, tokens[index % len(tokens)]))
            index += workers
            # An in-process request may never suspend: yield, so the other loops, other
            # contenders and background key refreshes get their turn.
            await asyncio.sleep(0)

    await asyncio.gather(*(loop(n) for n in range(workers)))
    return answers


async def flood(
    contender: Contender, issuer: LocalIssuer, good: str, forged: list[str], seconds: float
) -> Outcome:
    """Unknown-kid tokens for ``seconds`` on a warm app; counts JWKS fetches."""
    outcome = Outcome(contender.name)
    with JWKSServer(issuer) as server:
        try:
            async with running(contender.build, server.url) as (client, _):
                await get_me(client, good)  # keys loaded
                server.reset_requests()
                started = time.perf_counter()
                outcome.answers = await drive(client, forged, seconds, 200_000, workers=16)
                elapsed = time.perf_counter() - started
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result
            outcome.started, outcome.note = False, _start_failure(exc)
            return outcome
        outcome.fetches = server.requests
    outcome.extra["per_minute"] = outcome.fetches / elapsed * 60
    outcome.extra["seconds"] = elapsed
    return outcome


async def new_key(contender: Contender) -> str:
    """Start the app, publish a second key, send a token signed with it: the status."""
    issuer = LocalIssuer()
    with JWKSServer(issuer) as server:
        try:
            async with running(contender.build, server.url) as (client, _):
                before = await get_me(client, issuer.access_token())
                issuer.rotate_keys(keep_old=True)
                after = await get_me(client, issuer.access_token())
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result
            return _start_failure(exc)
    if before.status != 200:
        return f"{before.status} even before rotation"
    return "yes (200)" if after.status == 200 else f"**no** ({after.status})"


# -- 3. outage while running ----------------------------------------------------------------


async def outage_running(
    contender: Contender, issuer: LocalIssuer, tokens: list[str], seconds: float
) -> Outcome:
    """Keys loaded, then the JWKS fails with HTTP 500 while valid tokens keep coming."""
    outcome = Outcome(contender.name)
    with JWKSServer(issuer) as server:
        try:
            async with running(contender.build, server.url) as (client, _):
                await get_me(client, tokens[0])
                await asyncio.sleep(1.1)  # past this library's 1 s TTL: keys are stale now
                server.reset_requests()
                server.fault = "status_500"
                outcome.answers = await drive(client, tokens, seconds, 100_000, workers=8)
                outcome.fetches = server.requests
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result
            outcome.started, outcome.note = False, _start_failure(exc)
    return outcome


# -- 4. restart during an outage -------------------------------------------------------------


async def outage_restart(
    contender: Contender,
    issuer: LocalIssuer,
    tokens: list[str],
    fault: str,
    seconds: float,
    recovery_seconds: float,
) -> Outcome:
    """Start while the JWKS fails (``fault``: ``status_500`` or ``refused``), then restore it."""
    outcome = Outcome(contender.name)
    with JWKSServer(issuer) as server:
        if fault == "refused":
            server.close()
        else:
            server.fault = fault
        try:
            async with running(contender.build, server.url) as (client, _):
                outcome.answers = await drive(client, tokens, seconds, 100_000, workers=8)
                outcome.fetches = server.requests
                if fault == "refused":
                    server.start()
                server.fault = None
                back = time.perf_counter()
                recovered: float | None = None
                while time.perf_counter() - back < recovery_seconds:
                    if (await get_me(client, tokens[0])).status == 200:
                        recovered = time.perf_counter() - back
                        break
                    await asyncio.sleep(0.05)
        except Exception as exc:  # noqa: BLE001 - a peer failing is a result
            outcome.started, outcome.note = False, _start_failure(exc)
            return outcome
    outcome.extra["retry_after"] = next(
        (a.retry_after for a in outcome.answers if a.retry_after is not None), None
    )
    outcome.extra["recovered"] = (
        f"{recovered:.1f} s"
        if recovered is not None
        else f"**not within {recovery_seconds:.0f} s**"
    )
    return outcome


# -- tables --------------------------------------------------------------------------------


def _skipped_row(name: str, reason: str, columns: int) -> str:
    return f"| {name} | skipped: {reason} |" + " |" * (columns - 2)


def cold_table(outcomes: list[Outcome], burst: int) -> str:
    """Scenario 1 in Markdown."""
    lines = [
        f"| contender | start-up ms | JWKS fetches | first 200 after ms | all {burst} answered "
        "after ms | statuses |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for o in outcomes:
        if not o.started:
            lines.append(f"| {o.name} | {o.note} | – | – | – | app did not start |")
            continue
        first = o.extra["first_ok_ms"]
        lines.append(
            f"| {o.name} | {o.startup_ms:.0f} | {o.fetches} "
            f"| {'–' if first is None else f'{first:.0f}'} | {o.extra['last_ms']:.0f} "
            f"| {o.statuses()} |"
        )
    return "\n".join(lines)


def flood_table(outcomes: list[Outcome], rotation: dict[str, str]) -> str:
    """Scenario 2 in Markdown."""
    lines = [
        "| contender | unknown-kid requests | seconds | JWKS fetches | fetches per minute "
        "| statuses | picks up a newly published key |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for o in outcomes:
        if not o.started:
            lines.append(f"| {o.name} | {o.note} | – | – | – | – | {rotation[o.name]} |")
            continue
        lines.append(
            f"| {o.name} | {len(o.answers)} | {o.extra['seconds']:.0f} | {o.fetches} "
            f"| {o.extra['per_minute']:.1f} | {o.statuses()} | {rotation[o.name]} |"
        )
    return "\n".join(lines)


def outage_table(outcomes: list[Outcome]) -> str:
    """Scenario 3 in Markdown."""
    lines = [
        "| contender | requests during the outage | error rate | statuses | JWKS attempts |",
        "|---|---:|---:|---|---:|",
    ]
    for o in outcomes:
        if not o.started:
            lines.append(f"| {o.name} | {o.note} | – | – | – |")
            continue
        lines.append(
            f"| {o.name} | {len(o.answers)} | {o.error_rate()} | {o.statuses()} | {o.fetches} |"
        )
    return "\n".join(lines)


def restart_table(rows: list[tuple[str, Outcome]]) -> str:
    """Scenario 4 in Markdown."""
    lines = [
        "| JWKS | contender | requests | error rate | statuses (Retry-After) | JWKS attempts "
        "| first 200 after the JWKS is back |",
        "|---|---|---:|---:|---|---:|---|",
    ]
    for fault, o in rows:
        if not o.started:
            lines.append(f"| {fault} | {o.name} | – | – | app did not start: {o.note} | – | – |")
            continue
        retry = o.extra.get("retry_after")
        statuses = o.statuses() + (f" (Retry-After: {retry})" if retry else "")
        attempts = "n/a (refused)" if fault == "connection refused" else str(o.fetches)
        lines.append(
            f"| {fault} | {o.name} | {len(o.answers)} | {o.error_rate()} | {statuses} "
            f"| {attempts} | {o.extra['recovered']} |"
        )
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """Sizes and durations of one run."""

    burst: int
    flood_seconds: float
    outage_seconds: float
    restart_seconds: float
    recovery_seconds: float


async def run(plan: Plan) -> tuple[str, list[str]]:
    """Every scenario; returns the Markdown tables and the peers skipped."""
    issuer = LocalIssuer()
    tokens = [issuer.access_token(username=f"user{n}") for n in range(plan.burst)]
    skipped: list[str] = []

    def usable(candidates: list[Contender]) -> list[Contender]:
        kept = []
        for contender in candidates:
            reason = contender.status()
            if reason is None:
                kept.append(contender)
            elif f"{contender.name}: {reason}" not in skipped:
                skipped.append(f"{contender.name}: {reason}")
        return kept

    cold = [await cold_start(c, issuer, tokens) for c in usable(contenders(prefetch_variants=True))]

    steady = usable(contenders())
    forged = unknown_kid_tokens(issuer, 200)
    floods = await asyncio.gather(
        *(flood(c, issuer, tokens[0], forged, plan.flood_seconds) for c in steady)
    )
    rotation = {c.name: await new_key(c) for c in steady}

    stale = usable(contenders(stale_ttl=True))
    outages = await asyncio.gather(
        *(outage_running(c, issuer, tokens, plan.outage_seconds) for c in stale)
    )

    restarts: list[tuple[str, Outcome]] = []
    for fault, label in (("status_500", "HTTP 500, JSON body"), ("refused", "connection refused")):
        outcomes = await asyncio.gather(
            *(
                outage_restart(
                    c, issuer, tokens, fault, plan.restart_seconds, plan.recovery_seconds
                )
                for c in steady
            )
        )
        restarts += [(label, o) for o in outcomes]

    tables = [
        f"**1. Cold start: {plan.burst} concurrent requests, distinct valid tokens.**\n\n"
        + cold_table(cold, plan.burst),
        f"**2. Unknown kids for {plan.flood_seconds:g} s (16 concurrent clients), then a key "
        "published after start-up.**\n\n" + flood_table(list(floods), rotation),
        f"**3. The JWKS answers HTTP 500 for {plan.outage_seconds:g} s while the app runs "
        "(this library: `jwks_ttl_seconds=1`, so its keys are stale throughout).**\n\n"
        + outage_table(list(outages)),
        f"**4. Restart during an outage: {plan.restart_seconds:g} s of valid requests, then "
        "the JWKS comes back.**\n\n" + restart_table(restarts),
    ]
    return "\n\n".join(tables), skipped


def main() -> int:
    """Parse arguments, run every scenario, print the tables, write ``RESULTS.md``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few seconds in total, for CI")
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--flood-seconds", type=float, default=30)
    parser.add_argument("--outage-seconds", type=float, default=10)
    parser.add_argument("--restart-seconds", type=float, default=3)
    parser.add_argument("--recovery-seconds", type=float, default=15)
    args = parser.parse_args()
    plan = (
        Plan(
            burst=100,
            flood_seconds=0.5,
            outage_seconds=0.5,
            restart_seconds=0.3,
            recovery_seconds=1,
        )
        if args.quick
        else Plan(
            args.burst,
            args.flood_seconds,
            args.outage_seconds,
            args.restart_seconds,
            args.recovery_seconds,
        )
    )
    logging.getLogger("fastapi_cognito_guard").setLevel(logging.ERROR)  # expected warnings
    logging.getLogger("fastapi_cognito").setLevel(logging.CRITICAL)
    rendered, skipped = asyncio.run(run(plan))
    print(rendered)
    for line in skipped:
        print(f"skipped {line}")
    if args.quick:
        return 0
    skipped_note = "".join(f"\nSkipped: {line}." for line in skipped)
    write_section(machine_section(_peers.peers_markdown()), first=True)
    write_section(
        f"""{SECTION}

`python benchmarks/jwks_stampede.py` ({machine()}). Each app is driven in-process through
`httpx.ASGITransport` with its lifespan running; its keys come over real HTTP from its own
`tests/jwks_server.JWKSServer` on 127.0.0.1, which counts every JWKS request. Scenarios 2–4
run the contenders concurrently. Times here are dominated by the in-process driver and are
machine-dependent; the fetch counts and statuses are the point.{skipped_note}

{rendered}

What it means for a user:

- Cold start: however many requests arrive at once, this library fetches the JWKS once
  (before the first request when the lifespan runs, else on the first requests, which
  all wait for the same fetch). fastapi-cognito dedupes its fetch too; fastapi-cloudauth
  fetches synchronously while the app is being built.
- Unknown kids: a client inventing kids costs this library at most one JWKS fetch per
  10 s cooldown, and a key Cognito publishes after start-up is picked up by the first token
  that uses it. The peers never refetch, so the flood is free for them, but so is missing
  a rotated key: they reject every token signed with it until the process restarts.
- Outage while running: stale keys keep serving (no errors) while the refresh fails, with
  at most one attempt per cooldown; the peers also keep serving because they never refresh.
- Restart during an outage: this library answers 503 with `Retry-After` (clients retry; no
  valid user is told their token is bad), tries the JWKS at most once per cooldown, and
  serves again once a retry after the cooldown succeeds. fastapi-cognito answers 401 to
  valid tokens; when the endpoint refuses connections it tries a fetch on every request
  (hence its few requests) and recovers at once, but a JSON error body is cached as "no
  keys" (its `async_lru` cache keeps the `None`) for the life of the process.
  fastapi-cloudauth cannot start while the JWKS is unreachable and, after an error body,
  starts with no keys and never fetches again.
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
