"""The command line: ``python -m fastapi_cognito_guard <command>``.

Commands: ``inspect``, ``verify``, ``jwks``, ``revoke``, ``routes``, ``dev-issuer``.

``inspect`` decodes a token without trusting it, ``verify`` runs every check
with the ``COGNITO_*`` settings (or flags) and names the one that failed, and
``jwks`` lists the keys an issuer publishes and whether each would be used;
``revoke`` adds a user, a session or a sign-in key to the revocation list shared
through Redis;
``routes module:app`` prints what protects each route (:mod:`.route_records`);
``dev-issuer`` runs a local Cognito (:mod:`.testing.dev_issuer`).

A token may be pasted as it travels (``Bearer …`` or a whole
``Authorization: Bearer …`` line). Nothing read from a token or a JWKS reaches
the terminal raw: control characters are shown escaped. Each subcommand is one
``add_parser`` call with ``set_defaults(run=...)``; ``run(args, out)`` returns
the exit status.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, TextIO

import httpx
from pydantic import ValidationError

from ._version import __version__
from .errors import InvalidTokenError, KeysUnavailableError
from .jwks import JWKSFetchError, download_jwks, issuer_form_twin
from .jwt import b64url_decode
from .keys import VerifyingKey, load_jwk
from .revocation import SESSION, SIGN_IN, USER, RevocationList, shared_revocations, sign_in_key
from .settings import CognitoSettings, env_name
from .stores import RedisLink, valid_id
from .verifier import CognitoVerifier

__all__ = ["main"]

_TIME_CLAIMS = ("iat", "nbf", "auth_time", "exp")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
_JWKS_DEADLINE = 10.0
_SHOWN_LIMIT = 200
_BEARER = re.compile(r"(?:authorization\s*:\s*)?bearer\s+", re.IGNORECASE)
_UNUSED_CLIENT_ID = "unused-by-jwks"


def _shown(value: object) -> str:
    """``value`` safe for a terminal: escapes for control and format characters
    (ANSI escapes, bidi overrides), long strings cut, containers named by type."""
    if isinstance(value, str):
        text = "".join(ch if ch.isprintable() else f"\\u{ord(ch):04x}" for ch in value)
        return text if len(text) <= _SHOWN_LIMIT else f"{text[:_SHOWN_LIMIT]}…"
    if value is None or isinstance(value, (bool, int, float)):
        return repr(value)
    return f"<{type(value).__name__}>"


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
        return _shown(value)
    try:
        stamp = datetime.fromtimestamp(value, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (ValueError, OverflowError, OSError):  # NaN, or outside what datetime can show
        return f"{value!r} (not a representable time)"
    return f"{stamp} ({_relative(value - now)})"


def _read_token(value: str) -> str:
    """The token from the argument (or stdin for ``-``), without a ``Bearer`` prefix."""
    text = (sys.stdin.read() if value == "-" else value).strip()
    prefix = _BEARER.match(text)
    return text[prefix.end() :].strip() if prefix else text


def _decode(token: str) -> tuple[Any, Any]:
    """The header and claims of ``token``, unverified; ``malformed`` if they do not decode."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidTokenError("malformed", "token does not have three segments")
    try:
        header = json.loads(b64url_decode(parts[0].encode("ascii")))
        claims = json.loads(b64url_decode(parts[1].encode("ascii")))
    except (ValueError, RecursionError):
        raise InvalidTokenError("malformed", "segment is not JSON") from None
    return header, claims


def _inspect(args: argparse.Namespace, out: TextIO) -> int:
    try:
        header, claims = _decode(_read_token(args.token))
    except InvalidTokenError as exc:
        print(f"not a decodable JWT: {exc.message}", file=sys.stderr)
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


class _SettingsError(Exception):
    """Settings (``COGNITO_*`` or flags) that do not validate; the message names each field."""


def _settings(args: argparse.Namespace) -> CognitoSettings:
    flags = {
        "user_pool_id": args.user_pool_id,
        "client_ids": getattr(args, "client_id", None),
        "token_use": getattr(args, "token_use", None),
        "jwks_url": args.jwks_url,
        "issuer": args.issuer,
        "region": args.region,
    }
    if args.command == "jwks":
        # Keys are the pool's, whoever the client: jwks needs no COGNITO_CLIENT_IDS.
        flags["client_ids"] = [_UNUSED_CLIENT_ID]
    try:
        return CognitoSettings(
            **{name: value for name, value in flags.items() if value is not None}
        )
    except ValidationError as exc:
        # Each message names its field and environment variable already.
        raise _SettingsError(
            "; ".join(error["msg"] for error in exc.errors(include_url=False, include_input=False))
        ) from None


def _differences(claims: Mapping[str, Any], settings: CognitoSettings) -> list[str]:
    """The token's iss, token_use, client_id/aud and (with ``audiences``) an access
    token's aud, where they differ from the settings."""
    found: list[tuple[str, object, str]] = []
    if claims.get("iss") not in settings.issuers:
        found.append(("iss", claims.get("iss"), " | ".join(settings.issuers)))
    token_use = claims.get("token_use")
    allowed = ("access", "id") if settings.token_use == "any" else (settings.token_use,)
    if token_use not in allowed:
        found.append(("token_use", token_use, " | ".join(allowed)))
    name = "client_id" if token_use == "access" else "aud"
    client = claims.get(name)
    clients = client if isinstance(client, list) else [client]
    if not any(isinstance(c, str) and c in settings.client_ids for c in clients):
        found.append((name, client, " | ".join(settings.client_ids)))
    if token_use == "access" and settings.audiences:
        aud = claims.get("aud")
        named = aud if isinstance(aud, list) else [aud]
        if not any(isinstance(a, str) and a in settings.audiences for a in named):
            found.append(("aud", aud, " | ".join(settings.audiences)))
    return [
        f"  {claim:<10} token: {_shown(value)}\n  {'':<10} configured: {_shown(configured)}"
        for claim, value, configured in found
    ]


async def _verify_token(settings: CognitoSettings, token: str, out: TextIO) -> int:
    verifier = CognitoVerifier(settings)
    try:
        claims = await verifier.verify(token)
    except InvalidTokenError as exc:
        print(f"invalid token: {exc.code}: {exc.message}", file=sys.stderr)
        _print_differences(token, settings)
        return EXIT_FAILED
    except KeysUnavailableError as exc:
        print(f"keys unavailable: {exc.code}: {exc.message}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await verifier.aclose()
    print(f"verified: {claims.token_use} token from user pool {claims.user_pool_id}", file=out)
    print(json.dumps(claims.to_dict(), indent=2, sort_keys=True), file=out)
    return EXIT_OK


def _print_differences(token: str, settings: CognitoSettings) -> None:
    try:
        _, claims = _decode(token)
    except InvalidTokenError:
        return
    lines = _differences(claims, settings) if isinstance(claims, dict) else []
    if lines:
        print("the token differs from the settings:", *lines, sep="\n", file=sys.stderr)


def _verify(args: argparse.Namespace, out: TextIO) -> int:
    settings = _settings(args)
    return asyncio.run(_verify_token(settings, _read_token(args.token), out))


def _key_lines(document: Mapping[str, Any]) -> list[str]:
    entries = document.get("keys")
    if not isinstance(entries, list):
        return ["  no 'keys' list"]
    lines = []
    for jwk in entries:
        if not isinstance(jwk, dict):
            lines.append("  (an entry that is not an object)")
            continue
        kid = _shown(jwk.get("kid"))
        key = load_jwk(kid, jwk)
        if isinstance(key, VerifyingKey):
            verdict = f"RSA {key.key_size} bits, used"
        else:
            verdict = f"ignored: {key}"
        fields = " ".join(f"{name}={_shown(jwk.get(name))}" for name in ("kty", "alg", "use"))
        lines.append(f"  kid={kid} {fields}: {verdict}")
    return lines


async def _fetch(client: httpx.AsyncClient, url: str) -> list[str] | str:
    """The key lines of one JWKS URL, or why it could not be fetched."""
    try:
        document = await asyncio.wait_for(download_jwks(client, url), _JWKS_DEADLINE)
    except (httpx.HTTPError, JWKSFetchError) as exc:
        return _shown(str(exc) or type(exc).__name__)
    except asyncio.TimeoutError:
        return f"no answer within {_JWKS_DEADLINE:.0f} s"
    if not isinstance(document.get("keys"), list):
        return "no 'keys' list"
    return _key_lines(document)


def _groups(urls: Sequence[str]) -> list[list[str]]:
    """The URLs, with a pool's two issuer forms in one group (alternatives)."""
    groups: list[list[str]] = []
    placed: set[str] = set()
    for url in urls:
        if url in placed:
            continue
        twin = issuer_form_twin(url)
        group = [url, twin] if twin is not None and twin in urls else [url]
        placed.update(group)
        groups.append(group)
    return groups


async def _list_keys(urls: Sequence[str], out: TextIO) -> int:
    status = EXIT_OK
    async with httpx.AsyncClient(timeout=_JWKS_DEADLINE) as client:
        for group in _groups(urls):
            results = [await _fetch(client, url) for url in group]
            answered = any(isinstance(result, list) for result in results)
            for url, result in zip(group, results, strict=True):
                print(_shown(url), file=out)
                if isinstance(result, list):
                    print(*result, sep="\n", file=out)
                elif answered:
                    print(
                        f"  not served ({result}); not needed: the other issuer form answered",
                        file=out,
                    )
                else:
                    print(f"  fetch failed: {result}", file=out)
            if not answered:
                status = EXIT_FAILED
    return status


def _jwks(args: argparse.Namespace, out: TextIO) -> int:
    if args.url:
        urls = [args.url]
    else:
        settings = _settings(args)
        urls = list(dict.fromkeys(settings.jwks_url_for(issuer) for issuer in settings.issuers))
    return asyncio.run(_list_keys(urls, out))


def _dev_issuer(args: argparse.Namespace, out: TextIO) -> int:
    from .testing import LocalIssuer, dev_issuer

    issuer = LocalIssuer(args.pool_id, args.client_id, client_secret=args.client_secret)
    return dev_issuer.run(issuer, out, host=args.host, port=args.port, public_url=args.public_url)


def _add_pool_flags(command: argparse.ArgumentParser) -> None:
    """Flags that override the ``COGNITO_*`` settings naming the pool and its keys."""
    command.add_argument("--user-pool-id")
    command.add_argument("--jwks-url")
    command.add_argument("--issuer")
    command.add_argument("--region")


def _revoke(kind: str, member: str, out: TextIO) -> int:
    """Add one entry to the shared list every process mirrors (needs only the Redis
    settings; the user pool settings are not required)."""
    option = _REVOKE_OPTIONS[kind]
    if not valid_id(member):
        print(f"{option} must be 1-256 visible ASCII characters", file=sys.stderr)
        return EXIT_USAGE
    if kind == SIGN_IN and not _is_sign_in_key(member):
        print(f"{option} must be SUB:AUTH_TIME (auth_time in whole seconds)", file=sys.stderr)
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
    at = revocations.add(kind, member)
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


_REVOKE_OPTIONS = {USER: "--sub", SESSION: "--origin-jti", SIGN_IN: "--sign-in"}


def _is_sign_in_key(key: str) -> bool:
    """``SUB:AUTH_TIME`` with a ``sub`` and ``auth_time`` in whole seconds."""
    sub, _, stamp = key.rpartition(":")
    return bool(sub) and stamp.isascii() and stamp.isdigit() and sign_in_key(sub, int(stamp)) == key


def _revoke_command(args: argparse.Namespace, out: TextIO) -> int:
    if args.sub is not None:
        return _revoke(USER, args.sub, out)
    if args.origin_jti is not None:
        return _revoke(SESSION, args.origin_jti, out)
    return _revoke(SIGN_IN, args.sign_in, out)


def _routes(args: argparse.Namespace, out: TextIO) -> int:
    module_name, _, attribute = args.app.partition(":")
    factory = attribute.endswith("()")
    attribute = attribute.removesuffix("()")
    if not module_name or not attribute:
        print(f"name the app as module:attribute, got {args.app!r}", file=sys.stderr)
        return EXIT_USAGE
    sys.path.insert(0, os.getcwd())  # as uvicorn does: the app's package from here
    try:
        app = getattr(importlib.import_module(module_name), attribute)
        if factory:
            app = app()
    except (ImportError, AttributeError) as exc:
        print(f"cannot load {args.app}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except ValidationError as exc:
        return _invalid_settings(exc)
    from .route_records import dumps, format_table, route_map, route_map_json

    print(
        dumps(route_map_json(app)) if args.json else format_table(route_map(app)), file=out, end=""
    )
    return EXIT_OK


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m fastapi_cognito_guard",
        description="Inspect and verify Amazon Cognito tokens.",
    )
    parser.add_argument(
        "--version", action="version", version=f"fastapi-cognito-guard {__version__}"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    token_help = "the token (a pasted 'Bearer ...' works), or - to read it from stdin"

    revoke = commands.add_parser(
        "revoke", help="add a user or session to the shared revocation list (COGNITO_REDIS_URL)"
    )
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("--sub", help="revoke every token of this user issued up to now")
    target.add_argument("--origin-jti", help="revoke every token of this sign-in")
    target.add_argument(
        "--sign-in",
        metavar="SUB:AUTH_TIME",
        help="revoke every token of this sign-in of an app client without token revocation "
        "(its tokens carry no origin_jti)",
    )
    revoke.set_defaults(run=_revoke_command)

    inspect = commands.add_parser("inspect", help="decode a token without verifying it")
    inspect.add_argument("token", help=token_help)
    inspect.set_defaults(run=_inspect)

    verify = commands.add_parser(
        "verify", help="verify a token with the COGNITO_* settings (flags override them)"
    )
    verify.add_argument("token", help=token_help)
    _add_pool_flags(verify)
    verify.add_argument("--client-id", action="append", help="repeat for several")
    verify.add_argument("--token-use", choices=("access", "id", "any"))
    verify.set_defaults(run=_verify)

    jwks = commands.add_parser("jwks", help="fetch the JWKS and list its keys")
    jwks.add_argument("url", nargs="?", help="a JWKS URL (default: from the settings)")
    _add_pool_flags(jwks)
    jwks.set_defaults(run=_jwks)

    routes = commands.add_parser(
        "routes", help="print what protects each route of an app (the route map)"
    )
    routes.add_argument(
        "app", help="the app as module:attribute, or module:factory() to call a factory"
    )
    routes.add_argument("--json", action="store_true", help="JSON for machines")
    routes.set_defaults(run=_routes)

    dev = commands.add_parser("dev-issuer", help="run a local Cognito (hosted UI, token minting)")
    dev.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback)")
    dev.add_argument("--port", type=int, default=8001, help="0: any free port")
    dev.add_argument("--public-url", help="base URL the app and browser use (default: bound)")
    dev.add_argument("--pool-id", default="eu-central-1_Local")
    dev.add_argument("--client-id", default="local-client")
    dev.add_argument("--client-secret", help="make the app client confidential")
    dev.set_defaults(run=_dev_issuer)
    return parser


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 check failed, 2 usage)."""
    args = _parser().parse_args(argv)
    try:
        status: int = args.run(args, out or sys.stdout)
    except _SettingsError as exc:
        print(f"invalid settings (COGNITO_* or flags): {exc}", file=sys.stderr)
        return EXIT_USAGE
    return status
