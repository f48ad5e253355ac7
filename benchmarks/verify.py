"""Microseconds per verification of one Cognito access token, against the RSA floor.

Run: ``python benchmarks/verify.py [--quick]``. Every contender verifies the
same token in alternating rounds of the same run, so background noise hits them
alike; the table reports each one's median over the rounds, the spread
(min-max of the round medians) and the ratio to the floor (a bare
``cryptography`` RSA verify with pre-built padding and hash objects).
"""

from __future__ import annotations

import argparse
import base64
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from jose import jwt as jose_jwt

from fastapi_cognito_guard import CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer

RESULTS = Path(__file__).with_name("RESULTS.md")
SECTION = "## Verify path"


def contenders() -> dict[str, Callable[[], object]]:
    issuer = LocalIssuer()
    token = issuer.access_token(groups=["premium", "staff"], scopes=["orders/read", "orders/write"])
    jwk = issuer.jwks()["keys"][0]

    uncached = CognitoVerifier(issuer.settings(result_cache_size=0))
    uncached.cache_jwks(issuer.jwks())
    cached = CognitoVerifier(issuer.settings())
    cached.cache_jwks(issuer.jwks())
    cached.verify_sync(token)

    public_key = issuer._keys[-1].private_key.public_key()
    signing_input, _, signature_b64 = token.rpartition(".")
    signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
    message = signing_input.encode()
    pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()

    def floor() -> None:
        public_key.verify(signature, message, pkcs1, sha256)

    def naive_jose() -> object:
        return jose_jwt.decode(
            token,
            jwk,
            algorithms=["RS256"],
            issuer=issuer.issuer,
            options={"verify_aud": False},
        )

    return {
        "raw cryptography RSA verify (floor)": floor,
        "CognitoVerifier, result cache off": lambda: uncached.verify_sync(token),
        "CognitoVerifier, result cache hit": lambda: cached.verify_sync(token),
        "python-jose jwt.decode with the JWK dict": naive_jose,
    }


def measure(fn: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls * 1e6


def run(rounds: int, calls: int) -> list[tuple[str, float, float, float]]:
    cases = contenders()
    samples: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():  # warm up
        measure(fn, max(10, calls // 10))
    for _ in range(rounds):
        for name, fn in cases.items():
            samples[name].append(measure(fn, calls))
    floor = statistics.median(next(iter(samples.values())))
    return [
        (
            name,
            statistics.median(values),
            min(values),
            max(values),
            statistics.median(values) / floor,
        )
        for name, values in samples.items()
    ]  # type: ignore[misc]


def table(rows: list[tuple[str, float, float, float, float]]) -> str:
    lines = [
        "| contender | µs per verify (median) | spread of round medians | × floor |",
        "|---|---:|---:|---:|",
    ]
    for name, median, low, high, ratio in rows:
        lines.append(f"| {name} | {median:.2f} | {low:.2f}–{high:.2f} | {ratio:.2f} |")
    return "\n".join(lines)


def machine() -> str:
    return f"Python {platform.python_version()} on {platform.machine()}, {platform.system()}"


def write_results(text: str) -> None:
    existing = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    head, _, rest = existing.partition(SECTION)
    tail = rest.split("\n## ", 1)
    after = f"\n## {tail[1]}" if len(tail) > 1 else ""
    RESULTS.write_text(f"{head.rstrip()}\n\n{text.strip()}\n{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a few rounds, for CI")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    rounds, calls = (3, 200) if args.quick else (args.rounds, args.calls)
    rows = run(rounds, calls)
    rendered = table(rows)
    print(rendered)
    if args.quick:
        return
    write_results(
        f"""{SECTION}

`python benchmarks/verify.py` ({rounds} alternating rounds of {calls} calls; {machine()}).
The same Cognito-shaped access token (2048-bit RS256, two groups, two scopes) for every row.

{rendered}

What it means: with the result cache off, parsing, key lookup and every claim check
add the difference between the second row and the floor to the RSA check itself; a
client that repeats its token pays only the cache-hit row. Absolute numbers depend on
the machine; the ratios are the point.
"""
    )


if __name__ == "__main__":
    sys.exit(main())
