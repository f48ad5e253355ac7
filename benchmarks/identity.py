"""What identity-pool credentials cost once cached, and what an exchange costs.

Run: ``python benchmarks/identity.py [--quick]``. An ``IdentityPoolClient`` talks
to ``tests.identity_server.IdentityServer`` on 127.0.0.1 (real HTTP; it also plays
STS for the basic flow). The cache rows are microseconds per call, timed inside
one event loop in alternating rounds, with the ratio to the RSA floor (a bare
``cryptography`` verify of the same ID token); the exchange rows are
milliseconds per uncached exchange over loopback. Full mode (no ``--quick``)
writes its section into ``RESULTS.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__" and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
    sys.path[0] = str(Path(__file__).resolve().parent.parent)  # import benchmarks.*, tests.*

import argparse
import asyncio
import base64
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from pydantic import SecretStr

from benchmarks._results import machine, median_spread, write_section
from fastapi_cognito_guard import CognitoVerifier, IdentityPoolClient, IdTokenClaims
from fastapi_cognito_guard.stores import MemoryStore
from fastapi_cognito_guard.testing import LocalIssuer
from tests.identity_server import IdentityServer

SECTION = "## Identity-pool credentials"
FLOOR = "raw cryptography RSA verify of the ID token (floor)"
POOL = "eu-central-1:11111111-2222-3333-4444-555555555555"
ROLE = "arn:aws:iam::123456789012:role/reader"

Step = Callable[[], Awaitable[Any]]


class _SharedMemory:
    """A store the client treats as shared (not a ``MemoryStore``): credentials are
    sealed on the way in and opened on the way out, as with Redis, minus the network."""

    def __init__(self) -> None:
        self.memory = MemoryStore()

    async def get(self, key: str) -> bytes | None:
        return await self.memory.get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self.memory.set(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        await self.memory.delete(key)


def _settings(issuer: LocalIssuer, idp: IdentityServer, **extra: Any) -> Any:
    """The issuer's settings for ID tokens, with the identity pool at ``idp``."""
    token_use = "id"  # not a secret (ruff's S106 reads any *_use= "..." as one)
    return issuer.settings(
        token_use=token_use, identity_pool_id=POOL, identity_endpoint=idp.url, **extra
    )


async def _time(step: Step, calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        await step()
    return (time.perf_counter() - start) / calls * 1e6


async def cache_rows(
    issuer: LocalIssuer, idp: IdentityServer, rounds: int, calls: int
) -> list[tuple[str, list[float]]]:
    settings = _settings(
        issuer, idp, session_secret=[SecretStr("a-benchmark-session-secret-of-32-chars!")]
    )
    verifier = CognitoVerifier(settings)
    verifier.cache_jwks(issuer.jwks())
    client = IdentityPoolClient(settings, verifier=verifier)
    shared = _SharedMemory()
    writer = IdentityPoolClient(settings, verifier=verifier, store=shared)
    reader = IdentityPoolClient(settings, verifier=verifier, store=shared)
    token = issuer.id_token("bench", groups=["readers"], **{"cognito:roles": [ROLE]})
    claims = await verifier.verify(token)
    assert isinstance(claims, IdTokenClaims)
    await client.credentials_for(token)
    await writer.credentials_for(token)

    signing_input, _, signature_b64 = token.rpartition(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    public_key = issuer._keys[-1].private_key.public_key()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    async def floor() -> None:
        public_key.verify(signature, signing_input.encode(), pkcs1, sha256)

    async def shared_hit() -> Any:
        reader._credentials.clear()  # another worker: only the sealed store entry helps
        return await reader.credentials_for_claims(token, claims)

    steps: dict[str, Step] = {
        FLOOR: floor,
        "verifier.verify(id_token), result cache hit": lambda: verifier.verify(token),
        "credentials_for(id_token), cached": lambda: client.credentials_for(token),
        "credentials_for_claims (what the dependency calls), cached": lambda: (
            client.credentials_for_claims(token, claims)
        ),
        "credentials_for_claims, groups_to_roles, cached": lambda: client.credentials_for_claims(
            token, claims, groups_to_roles={"readers": ROLE}
        ),
        "credentials_for_claims, sealed shared-store hit (AES-GCM open)": shared_hit,
    }
    samples: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            samples[name].append(await _time(step, calls))
    for each in (client, writer, reader):
        await each.aclose()
    return list(samples.items())


async def exchange_rows(
    issuer: LocalIssuer, idp: IdentityServer, exchanges: int
) -> list[tuple[str, list[float], str]]:
    settings = _settings(issuer, idp, sts_endpoint=idp.url)
    verifier = CognitoVerifier(settings)
    verifier.cache_jwks(issuer.jwks())
    rows: list[tuple[str, list[float], str]] = []
    for flow, calls in (
        ("enhanced", "GetId + GetCredentialsForIdentity"),
        ("basic", "GetId + GetOpenIdToken + AssumeRoleWithWebIdentity"),
    ):
        client = IdentityPoolClient(settings, verifier=verifier, flow=flow)
        tokens = [
            issuer.id_token(f"u{uuid.uuid4().hex[:8]}", **{"cognito:roles": [ROLE]})
            for _ in range(exchanges)
        ]
        timings = []
        for token in tokens:
            start = time.perf_counter()
            await client.credentials_for(token, ROLE)
            timings.append((time.perf_counter() - start) * 1e3)
        await client.aclose()
        rows.append((f"{flow} flow, new user ({calls})", timings, calls))
    return rows


def tables(
    cache: list[tuple[str, list[float]]], exchanges: list[tuple[str, list[float], str]]
) -> str:
    floor = statistics.median(dict(cache)[FLOOR])
    lines = [
        "| cached path | µs per call (median) | spread of round medians | × floor |",
        "|---|---:|---:|---:|",
    ]
    for name, values in cache:
        median, spread = median_spread(values)
        lines.append(f"| {name} | {median} | {spread} | {statistics.median(values) / floor:.2f} |")
    lines += [
        "",
        "| uncached exchange over loopback | ms per exchange (median) | min–max |",
        "|---|---:|---:|",
    ]
    for name, values, _ in exchanges:
        median, spread = median_spread(values)
        lines.append(f"| {name} | {median} | {spread} |")
    return "\n".join(lines)


async def run(rounds: int, calls: int, exchanges: int) -> str:
    issuer = LocalIssuer()
    with IdentityServer() as idp:
        cache = await cache_rows(issuer, idp, rounds, calls)
        exchanged = await exchange_rows(issuer, idp, exchanges)
    return tables(cache, exchanged)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few calls, for CI")
    args = parser.parse_args()
    rounds, calls, exchanges = (3, 200, 5) if args.quick else (15, 2000, 50)
    table = asyncio.run(run(rounds, calls, exchanges))
    print(table)
    if not args.quick:
        write_section(
            f"""{SECTION}

`python benchmarks/identity.py` ({rounds} alternating rounds of {calls} calls; {exchanges}
exchanges per flow; {machine()}). An `IdentityPoolClient` against
`tests/identity_server.py` on 127.0.0.1 (real HTTP; it plays STS too). A cached
credential costs the ID token's verification (a result-cache hit) plus one SHA-256
of the role-deciding claims and an LRU look-up; a worker that finds another
worker's credentials in a shared store also opens them (AES-256-GCM).

{table}
"""
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
