"""The command line: ``python -m fastapi_cognito_guard inspect|verify|jwks|revoke|dev-issuer``.

``inspect`` decodes a token without trusting it, ``verify`` runs every check
with the ``COGNITO_*`` settings (or flags) and names the one that failed, and
``jwks`` lists the keys an issuer publishes and whether each would be used;
``revoke`` adds a user or a session to the revocation list shared through Redis;
``dev-issuer`` runs a local Cognito (:mod:`.testing.dev_issuer`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

import httpx
from pydantic import ValidationError

from .errors import InvalidTokenError, KeysUnavailableError
from .jwks import MAX_JWKS_BYTES
from .jwt import b64url_decode
from .keys import VerifyingKey, load_jwk
from .revocation import SESSION, USER, RevocationList, shared_revocations
from .settings import CognitoSettings, env_name
from .stores import RedisLink, valid_id
from .verifier import CognitoVerifier

__all__ = ["main"]

_TIME_CLAIMS = ("iat", "nbf", "auth_time", "exp")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def _relative(seconds: float) -> str:
    amount = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if amount >= size:
            text = f"{amount / size:.0f} {unit}"
            break
    else:
        text = f"{amount:.0f} s"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _human_time(value: Any, now: float) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return repr(value)
    try:
        stamp = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):  # NaN, or outside what datetime can show
        return f"{value!r} (not a representable time)"
    return f"{stamp} ({_relative(value - now)})"


def _read_token(value: str) -> str:
    return sys.stdin.read().strip() if value == "-" else value.strip()


def _inspect(token: str, out: TextIO) -> int:
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise InvalidTokenError("malformed", "token does not have three segments")
        header = json.loads(b64url_decode(parts[0].encode("ascii")))
        claims = json.loads(b64url_decode(parts[1].encode("ascii")))
    except (InvalidTokenError, ValueError, RecursionError) as exc:
        message = exc.message if isinstance(exc, InvalidTokenError) else "segment is not JSON"
        print(f"not a decodable JWT: {message}", file=sys.stderr)
        return EXIT_FAILED
    print("UNVERIFIED: decoded only; neither the signature nor any claim was checked.", file=out)
    print("header:", json.dumps(header, indent=2, sort_keys=True), sep="\n", file=out)
    print("claims:", json.dumps(claims, indent=2, sort_keys=True), sep="\n", file=out)
    if isinstance(claims, dict):
        now = time.time()
        times = [(name, claims[name]) for name in _TIME_CLAIMS if name in claims]
        if times:
            print("times:", file=out)
            for name, value in times:
                print(f"  {name:<10} {_human_time(value, now)}", file=out)
    return EXIT_OK


def _settings(args: argparse.Namespace) -> CognitoSettings:
    flags = {
        "user_pool_id": args.user_pool_id,
        "client_ids": args.client_id or None,
        "token_use": args.token_use,
        "jwks_url": args.jwks_url,
        "issuer": args.issuer,
        "region": args.region,
    }
    return CognitoSettings(**{name: value for name, value in flags.items() if value is not None})


async def _verify(settings: CognitoSettings, token: str, out: TextIO) -> int:
    verifier = CognitoVerifier(settings)
    try:
        claims = await verifier.verify(token)
    except InvalidTokenError as exc:
        print(f"invalid token: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    except KeysUnavailableError as exc:
        print(f"keys unavailable: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await verifier.aclose()
    print(f"verified: {claims.token_use} token from user pool {claims.user_pool_id}", file=out)
    print(json.dumps(claims.to_dict(), indent=2, sort_keys=True), file=out)
    return EXIT_OK


def _jwks(urls: Sequence[str], out: TextIO) -> int:
    status = EXIT_OK
    for url in urls:
        print(url, file=out)
        try:
            response = httpx.get(url, timeout=10)
            response.raise_for_status()
            if len(response.content) > MAX_JWKS_BYTES:
                raise ValueError(f"response is larger than {MAX_JWKS_BYTES} bytes")
            entries = response.json().get("keys")
            if not isinstance(entries, list):
                raise ValueError("no 'keys' list")
        except (httpx.HTTPError, ValueError, AttributeError) as exc:
            print(f"  fetch failed: {type(exc).__name__}: {exc}", file=out)
            status = EXIT_FAILED
            continue
        for jwk in entries:
            if not isinstance(jwk, dict):
                print("  (an entry that is not an object)", file=out)
                continue
            kid = str(jwk.get("kid"))
            key = load_jwk(kid, jwk)
            if isinstance(key, VerifyingKey):
                verdict = f"RSA {key.key_size} bits, used"
            else:
                verdict = f"ignored: {key}"
            described = f"kid={kid} kty={jwk.get('kty')} alg={jwk.get('alg')} use={jwk.get('use')}"
            print(f"  {described}: {verdict}", file=out)
    return status


def _revoke(sub: str | None, origin_jti: str | None, out: TextIO) -> int:
    """Add one entry to the shared list every process mirrors (needs only the Redis
    settings; the user pool settings are not required)."""
    kind, member = (USER, sub) if sub is not None else (SESSION, origin_jti or "")
    if not valid_id(member):
        option = "--sub" if kind == USER else "--origin-jti"
        print(f"{option} must be 1-256 visible ASCII characters", file=sys.stderr)
        return EXIT_USAGE
    placeholders: dict[str, Any] = {
        name: value
        for name, value in (("user_pool_id", "us-east-1_unused"), ("client_ids", ["unused"]))
        if not os.environ.get(env_name(name))
    }
    try:
        settings = CognitoSettings(**placeholders)
    except ValidationError as exc:
        return _invalid_settings(exc)
    if settings.redis_url is None:
        print("revoke needs COGNITO_REDIS_URL (the shared revocation list)", file=sys.stderr)
        return EXIT_USAGE
    return asyncio.run(_publish(settings, kind, member, out))


async def _publish(settings: CognitoSettings, kind: str, member: str, out: TextIO) -> int:
    assert settings.redis_url is not None
    link = RedisLink(settings.redis_url, settings.redis_prefix)
    revocations = RevocationList(settings.refresh_token_validity_seconds)
    at = revocations.revoke_user(member) if kind == USER else revocations.revoke_session(member)
    try:
        shared = await shared_revocations(link, revocations).publish(kind, member, at)
    finally:
        await link.aclose()
    if not shared:
        print("Redis could not be reached: nothing was revoked", file=sys.stderr)
        return EXIT_FAILED
    print(f"revoked {kind} {member}", file=out)
    return EXIT_OK


def _invalid_settings(exc: ValidationError) -> int:
    # Each message names its field and environment variable already.
    problems = "; ".join(
        error["msg"] for error in exc.errors(include_url=False, include_input=False)
    )
    print(f"invalid settings (COGNITO_* or flags): {problems}", file=sys.stderr)
    return EXIT_USAGE


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastapi_cognito_guard",
        description="Inspect and verify Amazon Cognito tokens.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    revoke = commands.add_parser(
        "revoke", help="add a user or session to the shared revocation list (COGNITO_REDIS_URL)"
    )
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--sub", help="revoke every token of this user issued up to now")
    target.add_argument("--origin-jti", help="revoke every token of this sign-in")
    inspect = commands.add_parser("inspect", help="decode a token without verifying it")
    inspect.add_argument("token", help="the token, or - to read it from stdin")
    for name, text in (
        ("verify", "verify a token with the COGNITO_* settings (flags override them)"),
        ("jwks", "fetch the JWKS and list its keys"),
    ):
        command = commands.add_parser(name, help=text)
        if name == "verify":
            command.add_argument("token", help="the token, or - to read it from stdin")
        else:
            command.add_argument("url", nargs="?", help="a JWKS URL (default: from the settings)")
        command.add_argument("--user-pool-id")
        command.add_argument("--client-id", action="append", help="repeat for several")
        command.add_argument("--token-use", choices=("access", "id", "any"))
        command.add_argument("--jwks-url")
        command.add_argument("--issuer")
        command.add_argument("--region")
    dev = commands.add_parser("dev-issuer", help="run a local Cognito (hosted UI, token minting)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    dev.add_argument("--port", type=int, default=8001, help="0: any free port")
    dev.add_argument("--public-url", help="base URL the app and browser use (default: bound)")
    dev.add_argument("--pool-id", default="eu-central-1_Local")
    dev.add_argument("--client-id", default="local-client")
    dev.add_argument("--client-secret", help="make the app client confidential")
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 usage)."""
    out = out or sys.stdout
    args = _parser().parse_args(argv)
    if args.command == "inspect":
        return _inspect(_read_token(args.token), out)
    if args.command == "revoke":
        return _revoke(args.sub, args.origin_jti, out)
    if args.command == "dev-issuer":
        from .testing import LocalIssuer, dev_issuer

        issuer = LocalIssuer(args.pool_id, args.client_id, client_secret=args.client_secret)
        return dev_issuer.run(
            issuer, out, host=args.host, port=args.port, public_url=args.public_url
        )
    if args.command == "jwks" and args.url:
        return _jwks([args.url], out)
    try:
        settings = _settings(args)
    except ValidationError as exc:
        return _invalid_settings(exc)
    if args.command == "jwks":
        urls = dict.fromkeys(settings.jwks_url_for(issuer) for issuer in settings.issuers)
        return _jwks(list(urls), out)
    return asyncio.run(_verify(settings, _read_token(args.token), out))
