"""Microseconds per verification of one Cognito access token, against the RSA floor.

Run: ``python benchmarks/verify.py [--quick]``. Every contender verifies the
same token in alternating rounds of the same run, so background noise hits them
alike; the table reports each one's median over the rounds, the spread
(min-max of the round medians) and the ratio to the floor (a bare
``cryptography`` RSA verify with pre-built padding and hash objects).

The peers (fastapi-cognito, fastapi-cloudauth, cognitojwt, PyJWT; the
``bench`` extra) fetch their keys from the same JWKS, served on 127.0.0.1, and
are skipped when they do not import. Async verify paths are timed inside one
event loop (a coroutine awaiting the verify ``calls`` times), so the loop's
start-up is not counted. A second table shows which bad tokens each contender
rejects. Full mode (no ``--quick``) writes its section into ``RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    # Run as ``python benchmarks/verify.py``: import ``benchmarks.*`` from the
    # repository root, not from benchmarks/ (whose http.py would shadow the standard
    # library's ``http``).
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

import argparse
import asyncio
import base64
import inspect
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jose import jwt as jose_jwt
from pydantic import ValidationError

from benchmarks import _peers
from benchmarks._results import machine, machine_section, write_section
from fastapi_cognito_guard import CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer

SECTION = "## Verify path"
FLOOR = "raw cryptography RSA verify (floor)"

Contender = Callable[[str], Any]  # sync, or returning an awaitable


@contextmanager
def contenders(
    issuer: LocalIssuer, jwks_url: str
) -> Iterator[tuple[dict[str, Contender], list[str]]]:
    """Every contender as ``verify(token)``, and the peers skipped (with why)."""
    jwk = issuer.jwks()["keys"][0]

    uncached = CognitoVerifier(issuer.settings(result_cache_size=0))
    uncached.cache_jwks(issuer.jwks())
    cached = CognitoVerifier(issuer.settings())
    cached.cache_jwks(issuer.jwks())
    async_uncached = CognitoVerifier(issuer.settings(result_cache_size=0, jwks_url=jwks_url))

    public_key = issuer._keys[-1].private_key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
    floor_cache: dict[str, tuple[bytes, bytes]] = {}

    def floor(token: str) -> None:
        parts = floor_cache.get(token)
        if parts is None:
            signing_input, _, signature_b64 = token.rpartition(".")
            signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
            parts = floor_cache[token] = (signature, signing_input.encode())
        public_key.verify(parts[0], parts[1], pkcs1, sha256)

    def naive_jose(token: str) -> object:
        return jose_jwt.decode(
            token, jwk, algorithms=["RS256"], issuer=issuer.issuer, options={"verify_aud": False}
        )

    cases: dict[str, Contender] = {
        FLOOR: floor,
        "CognitoVerifier.verify_sync, result cache off": uncached.verify_sync,
        "CognitoVerifier.verify_sync, result cache hit": cached.verify_sync,
        "CognitoVerifier.verify (async), result cache off": async_uncached.verify,
        "python-jose jwt.decode with the JWK dict": naive_jose,
    }
    pool = {
        "region": issuer.region,
        "user_pool_id": issuer.user_pool_id,
        "client_id": issuer.client_id,
        "jwks_url": jwks_url,
    }
    skipped: list[str] = []
    peers: list[tuple[str, Callable[[], Contender]]] = [
        (
            "fastapi-cognito (decode + CognitoToken)",
            lambda: _peers.fastapi_cognito_verify(_peers.fastapi_cognito_auth(**pool)),
        ),
        (
            "fastapi-cloudauth Cognito dependency",
            lambda: _peers.cloudauth_verify(_peers.cloudauth_dependency(**pool)),
        ),
        ("cognitojwt.decode (sync)", lambda: _peers.cognitojwt_decoder(**pool)),
        (
            "PyJWT jwt.decode, pre-loaded key + Cognito checks",
            lambda: _peers.pyjwt_decoder(issuer=issuer.issuer, client_id=issuer.client_id, jwk=jwk),
        ),
    ]
    for name, build in peers:
        try:
            cases[name] = build()
        except _peers.PeerUnavailable as exc:
            skipped.append(f"{name}: {exc}")
    try:
        yield cases, skipped
    finally:
        for verifier in (uncached, cached, async_uncached):
            asyncio.run(verifier.aclose())


def _is_async(fn: Contender, token: str, loop: asyncio.AbstractEventLoop) -> bool:
    """Call ``fn`` once (warming its caches, e.g. fetching keys) and say if it is async."""
    result = fn(token)
    if inspect.isawaitable(result):
        loop.run_until_complete(_awaited(result))
        return True
    return False


async def _awaited(result: Awaitable[Any]) -> Any:
    return await result


def measure(
    fn: Contender, token: str, calls: int, loop: asyncio.AbstractEventLoop, is_async: bool
) -> float:
    """Microseconds per call of ``fn(token)`` over ``calls`` calls."""
    if is_async:

        async def batch() -> float:
            start = time.perf_counter()
            for _ in range(calls):
                await fn(token)
            return time.perf_counter() - start

        elapsed = loop.run_until_complete(batch())
    else:
        start = time.perf_counter()
        for _ in range(calls):
            fn(token)
        elapsed = time.perf_counter() - start
    return elapsed / calls * 1e6


Row = tuple[str, float, float, float, float]


def run(rounds: int, calls: int) -> tuple[list[Row], list[str], dict[str, dict[str, str]]]:
    """Time every contender; returns the rows, the skipped peers and the checks matrix."""
    issuer = LocalIssuer()
    token = issuer.access_token(groups=["premium", "staff"], scopes=["orders/read", "orders/write"])
    loop = asyncio.new_event_loop()
    try:
        with issuer.serve() as jwks_url, contenders(issuer, jwks_url) as (cases, skipped):
            kinds = {name: _is_async(fn, token, loop) for name, fn in cases.items()}
            for name, fn in cases.items():  # warm up
                measure(fn, token, max(10, calls // 10), loop, kinds[name])
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for _ in range(rounds):
                for name, fn in cases.items():
                    samples[name].append(measure(fn, token, calls, loop, kinds[name]))
            checks = check_matrix(issuer, cases, kinds, loop)
    finally:
        loop.close()
    floor = statistics.median(samples[FLOOR])
    rows = [
        (
            name,
            statistics.median(values),
            min(values),
            max(values),
            statistics.median(values) / floor,
        )
        for name, values in samples.items()
    ]
    return rows, skipped, checks


def bad_tokens(issuer: LocalIssuer) -> dict[str, str]:
    """Tokens every Cognito verifier for this pool and client must reject, by what is wrong."""
    now = int(time.time())
    good = issuer.access_token()
    head, payload, signature = good.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    other_pool = issuer.issuer.rsplit("/", 1)[0] + "/eu-central-1_Other"
    return {
        "bad signature": f"{head}.{payload}.{flipped}",
        "wrong `iss`, signed by a trusted key": issuer.access_token(iss=other_pool),
        "another app client (`client_id`)": issuer.access_token(client_id="another-client"),
        "an ID token where access tokens are expected": issuer.id_token(),
        "expired 5 minutes ago": issuer.access_token(exp=now - 300, iat=now - 3900),
        "issued 10 minutes in the future (`iat`)": issuer.access_token(iat=now + 600),
        "not valid for 10 minutes (`nbf`)": issuer.access_token(nbf=now + 600),
    }


def check_matrix(
    issuer: LocalIssuer,
    cases: dict[str, Contender],
    kinds: dict[str, bool],
    loop: asyncio.AbstractEventLoop,
) -> dict[str, dict[str, str]]:
    """``{check: {contender: "rejects" | "**accepts**"}}`` for the real verifiers."""
    verifiers = {
        name: fn
        for name, fn in cases.items()
        if name != FLOOR and "cache hit" not in name and "(async)" not in name
    }
    matrix: dict[str, dict[str, str]] = {}
    for check, token in bad_tokens(issuer).items():
        row = matrix[check] = {}
        for name, fn in verifiers.items():
            try:
                result = fn(token)
                if kinds[name]:
                    result = loop.run_until_complete(_awaited(result))
            except ValidationError:  # unhandled in a FastAPI dependency: a 500, not a 401
                row[name] = "rejects (as a 500)"
            except Exception:  # noqa: BLE001 - any other exception is a rejection
                row[name] = "rejects"
            else:
                row[name] = "rejects" if result in (None, False) else "**accepts**"
    return matrix


def table(rows: list[Row]) -> str:
    """The timing table in Markdown."""
    lines = [
        "| contender | µs per verify (median) | spread of round medians | × floor |",
        "|---|---:|---:|---:|",
    ]
    for name, median, low, high, ratio in rows:
        lines.append(f"| {name} | {median:.2f} | {low:.2f}–{high:.2f} | {ratio:.2f} |")
    return "\n".join(lines)


def checks_table(matrix: dict[str, dict[str, str]]) -> str:
    """The bad-token matrix in Markdown (one column per contender)."""
    names = list(next(iter(matrix.values())))
    short = [name.split(" ")[0].rstrip(",") for name in names]
    lines = [
        "| token | " + " | ".join(short) + " |",
        "|---|" + "---|" * len(names),
    ]
    for check, row in matrix.items():
        lines.append(f"| {check} | " + " | ".join(row[name] for name in names) + " |")
    return "\n".join(lines)


def main() -> int:
    """Parse arguments, run, print the tables and (full mode) write ``RESULTS.md``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few rounds, for CI")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rounds, calls = (3, 100) if args.quick else (args.rounds, args.calls)
    rows, skipped, matrix = run(rounds, calls)
    rendered, rendered_checks = table(rows), checks_table(matrix)
    print(rendered)
    print()
    print(rendered_checks)
    for line in skipped:
        print(f"skipped {line}")
    if args.quick:
        return 0
    skipped_note = "".join(f"\nSkipped: {line}." for line in skipped)
    write_section(machine_section(_peers.peers_markdown()), first=True)
    write_section(
        f"""{SECTION}

`python benchmarks/verify.py` ({rounds} alternating rounds of {calls} calls; {machine()}).
The same Cognito-shaped access token (2048-bit RS256, two groups, two scopes) for every row;
the peers fetched their keys once from the JWKS on 127.0.0.1 before timing began.{skipped_note}

{rendered}

What it means: with the result cache off, parsing, key lookup and every claim check
add the difference between the second row and the floor to the RSA check itself; a
client that repeats its token pays only the cache-hit row, and the async `verify` costs
what the sync one does. Where the peers' time goes: fastapi-cognito (joserfc) and
cognitojwt (python-jose) rebuild the public key from the JWK on every call;
fastapi-cloudauth parses the token with python-jose four times; PyJWT 2.15 checks the
base64url alphabet of each segment one character at a time in Python, which costs more
than the RSA check. The peers that are faster than python-jose also make fewer checks:

Which bad tokens each contender rejects (same pool, same app client, tokens signed by the
pool's key unless the row says otherwise; `**accepts**` is a token that should have been
refused):

{rendered_checks}

What it means: a speed comparison is only fair between verifiers that make the same
checks. fastapi-cloudauth accepts access tokens issued to another app client of the
same pool; fastapi-cognito and cognitojwt accept any `iss` on a token signed by a key
they trust (harmless only while no other issuer shares those keys), and neither checks
`nbf` or `iat`.
"""
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
