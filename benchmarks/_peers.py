"""The Python peers, each pointed at a local JWKS URL and a Cognito-shaped issuer.

Peers are optional (the ``bench`` extra installs them); every factory here
raises ``PeerUnavailable`` when its peer cannot be imported, and the scripts
report it as skipped. ``PEERS`` says, per peer, what had to be done to point it
at 127.0.0.1 and which checks it does not make (the "Skips" column is part of
the comparison: a check that is not made costs nothing).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from benchmarks._results import package_version

__all__ = [
    "PEERS",
    "Peer",
    "PeerUnavailable",
    "cloudauth_dependency",
    "cognitojwt_decoder",
    "fastapi_cognito_auth",
    "peers_markdown",
    "pyjwt_decoder",
]

# requests (fastapi-cloudauth, cognitojwt) and httpx honour proxy variables:
# keep every loopback request on loopback.
for _name in ("NO_PROXY", "no_proxy"):
    _hosts = [h for h in os.environ.get(_name, "").split(",") if h]
    os.environ[_name] = ",".join(dict.fromkeys([*_hosts, "127.0.0.1", "localhost"]))

# The peers are written for older pydantic / async-lru; their warnings are noise here.
warnings.filterwarnings("ignore", category=DeprecationWarning)
warnings.filterwarnings("ignore", message=".*alru_cache detected event loop change.*")


class PeerUnavailable(Exception):
    """A peer that is not installed or does not import; the message says why."""


@dataclass(frozen=True)
class Peer:
    """One peer: its distribution, how it was wired to 127.0.0.1 and what it skips."""

    name: str
    distribution: str
    module: str
    wiring: str
    skips: str

    @property
    def version(self) -> str | None:
        return package_version(self.distribution)

    def status(self) -> str:
        """``"<version>"`` when it imports, else why it was skipped."""
        try:
            _import(self.module)
        except PeerUnavailable as exc:
            return f"skipped: {exc}"
        return self.version or "installed"


PEERS: dict[str, Peer] = {
    "fastapi-cognito": Peer(
        name="fastapi-cognito",
        distribution="fastapi-cognito",
        module="fastapi_cognito",
        wiring=(
            "its own per-pool `jwks_url` option (`userpools={...: {region, userpool_id, "
            "app_client_id, jwks_url}}`); no patching. Keys are fetched with `httpx2` "
            "through an `async_lru` cache with no TTL."
        ),
        skips=(
            "`iss` is never checked; `nbf`/`iat` are not checked; `token_use` only picks "
            "`client_id` or `aud`, so an ID token passes `decode_cognito_jwt` and then fails "
            "the `CognitoToken` model (an unhandled error: a 500, not a 401); no leeway on "
            "`exp`; keys are never refreshed and an unknown `kid` never triggers a refetch."
        ),
    ),
    "fastapi-cloudauth": Peer(
        name="fastapi-cloudauth",
        distribution="fastapi-cloudauth",
        module="fastapi_cloudauth",
        wiring=(
            "`Cognito.__init__` hard-codes the AWS JWKS URL and fetches it synchronously "
            "(`requests`) in the constructor, so the benchmark builds a `Cognito` with "
            "`Cognito.__new__` and calls `ScopedAuth.__init__` with exactly the arguments "
            "`Cognito.__init__` passes (same issuer, client id, `token_use={'access'}`, "
            "`scope_key='cognito:groups'`) except `JWKS(url=<local url>)`."
        ),
        skips=(
            "`client_id` of access tokens is never checked (`audience=` only applies to an "
            "`aud` claim, which access tokens lack); no leeway on `exp`; keys are fetched "
            "once at construction and never refreshed; an unknown `kid` never triggers "
            "a refetch; the app cannot start while the JWKS is unreachable."
        ),
    ),
    "cognitojwt": Peer(
        name="cognitojwt",
        distribution="cognitojwt",
        module="cognitojwt.jwt_sync",
        wiring=(
            "its own `AWS_COGNITO_JWKS_PATH` environment variable set to the local URL "
            "(the sync `cognitojwt.decode`, i.e. `cognitojwt[sync]`; keys cached by "
            "`functools.lru_cache`, no TTL)."
        ),
        skips=(
            "`iss` is never checked; `nbf`/`iat` are not checked; `token_use` only picks "
            "`client_id` or `aud`; no leeway; the JWK is rebuilt on every call; keys are "
            "never refreshed."
        ),
    ),
    "PyJWT": Peer(
        name="PyJWT",
        distribution="PyJWT",
        module="jwt",
        wiring=(
            "a hand-rolled verifier: the JWK loaded once with `jwt.PyJWK`, then "
            "`jwt.decode(token, key, algorithms=['RS256'], issuer=..., leeway=30)` and "
            "`token_use`/`client_id` compared in Python. No JWKS fetching at all."
        ),
        skips="nothing the benchmark checks, but it has no JWKS handling (keys are static).",
    ),
}


def _import(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # noqa: BLE001 - any import failure means "skip this peer"
        raise PeerUnavailable(f"`import {module}` failed: {type(exc).__name__}: {exc}") from None


def peers_markdown() -> str:
    """The peers table for ``RESULTS.md``: version (or why skipped), wiring, skipped checks."""
    lines = [
        "How each peer was pointed at the local JWKS and issuer, and which checks it skips:",
        "",
        "| peer | version | how it was wired | checks it does not make |",
        "|---|---|---|---|",
    ]
    for peer in PEERS.values():
        lines.append(f"| {peer.name} | {peer.status()} | {peer.wiring} | {peer.skips} |")
    return "\n".join(lines)


# -- factories ---------------------------------------------------------------------------


def fastapi_cognito_auth(*, region: str, user_pool_id: str, client_id: str, jwks_url: str) -> Any:
    """A ``fastapi_cognito.CognitoAuth`` whose keys come from ``jwks_url``."""
    module = _import("fastapi_cognito")
    settings = module.CognitoSettings(
        check_expiration=True,
        jwt_header_name="Authorization",
        jwt_header_prefix="Bearer",
        userpools={
            "bench": {
                "region": region,
                "userpool_id": user_pool_id,
                "app_client_id": client_id,
                "jwks_url": jwks_url,
            }
        },
    )
    return module.CognitoAuth(settings=settings)


def fastapi_cognito_verify(auth: Any) -> Callable[[str], Awaitable[Any]]:
    """fastapi-cognito's verify path: ``auth_required`` minus reading the header."""
    token_model = auth._cognito_token_model

    async def verify(token: str) -> Any:
        return token_model(**await auth._decode_token(token))

    return verify


def cloudauth_dependency(*, region: str, user_pool_id: str, client_id: str, jwks_url: str) -> Any:
    """A ``fastapi_cloudauth.Cognito`` built as its constructor would, keys from ``jwks_url``.

    Like the real constructor, this fetches the JWKS synchronously.
    """
    cognito = _import("fastapi_cloudauth.cognito")
    base = _import("fastapi_cloudauth.base")
    issuer = f"https://cognito-idp.{region}.amazonaws.com/{user_pool_id}"
    auth = cognito.Cognito.__new__(cognito.Cognito)
    base.ScopedAuth.__init__(
        auth,
        cognito.JWKS(url=jwks_url),
        audience=client_id,
        issuer=issuer,
        scope_key="cognito:groups",
        auto_error=True,
        extra=cognito.CognitoExtraVerifier(
            client_id=client_id, issuer=issuer, token_use={"access"}
        ),
    )
    return auth


def cloudauth_verify(auth: Any) -> Callable[[str], Awaitable[Any]]:
    """fastapi-cloudauth's verify path: its dependency called with parsed credentials."""
    from fastapi.security import HTTPAuthorizationCredentials

    async def verify(token: str) -> Any:
        return await auth(HTTPAuthorizationCredentials(scheme="Bearer", credentials=token))

    return verify


def cognitojwt_decoder(
    *, region: str, user_pool_id: str, client_id: str, jwks_url: str
) -> Callable[[str], Any]:
    """``cognitojwt.decode`` (sync) with its JWKS URL set through ``AWS_COGNITO_JWKS_PATH``."""
    module = _import("cognitojwt.jwt_sync")
    os.environ["AWS_COGNITO_JWKS_PATH"] = jwks_url
    module.get_keys.cache_clear()

    def decode(token: str) -> Any:
        return module.decode(token, region, user_pool_id, app_client_id=client_id)

    return decode


def pyjwt_decoder(*, issuer: str, client_id: str, jwk: dict[str, Any]) -> Callable[[str], Any]:
    """Plain PyJWT with a pre-loaded key, plus the two Cognito checks it cannot express."""
    jwt = _import("jwt")
    key = jwt.PyJWK(jwk).key

    def decode(token: str) -> Any:
        claims = jwt.decode(
            token,
            key,
            algorithms=["RS256"],
            issuer=issuer,
            leeway=30,
            options={"require": ["exp", "iss", "token_use"]},
        )
        if claims["token_use"] != "access" or claims.get("client_id") != client_id:
            raise jwt.InvalidTokenError("wrong token_use or client_id")
        return claims

    return decode
