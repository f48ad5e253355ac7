"""The attack-token catalogue: every way a token can lie, and the exact error each lie earns.

Each test forges one kind of hostile or broken token and proves that
``CognitoVerifier`` rejects it with the stable ``InvalidTokenError.code`` of the
rule it breaks (DESIGN.md §4), and that the error never carries the token or any
of its segments (``str``, ``repr``, ``.message``, ``.args`` and the formatted
traceback are all checked).

Forgeries are signed with the issuer's real RS256 key wherever that is
possible, so that a lenient implementation would *accept* them: each test
therefore fails if the rule it names is removed from the code, not merely
because some other check happens to trip.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import hmac
import json
import time
import traceback
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from fastapi_cognito_guard import (
    AccessTokenClaims,
    CognitoSettings,
    CognitoVerifier,
    IdTokenClaims,
    InvalidTokenError,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import b64url, public_jwk
from tests.loopback_server import LoopbackHandler, LoopbackServer

NOW = 1_800_000_000
"""The frozen wall clock of the time tests (2027-01-15)."""

LEEWAY = 30
"""The default ``leeway_seconds``."""

MAX_TOKEN_LENGTH = 16 * 1024

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

Signer = Callable[[bytes], bytes]


# -- encoding and signing helpers ---------------------------------------------------


def encode_part(part: dict[str, Any] | list[Any] | bytes) -> str:
    """A header or payload: JSON-encoded the way LocalIssuer does, or raw bytes as given."""
    return b64url(part if isinstance(part, bytes) else json.dumps(part).encode())


def issuer_key(issuer: LocalIssuer) -> rsa.RSAPrivateKey:
    return issuer._keys[-1].private_key


def rs256_signer(key: rsa.RSAPrivateKey) -> Signer:
    return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA256())


def signed(
    issuer: LocalIssuer,
    header: dict[str, Any] | list[Any] | bytes,
    payload: dict[str, Any] | list[Any] | bytes,
    *,
    key: rsa.RSAPrivateKey | None = None,
    signer: Signer | None = None,
) -> str:
    """A compact JWS over exactly these header and payload bytes (RS256 by default,
    with the issuer's real key unless another key or signer is given)."""
    signing_input = f"{encode_part(header)}.{encode_part(payload)}"
    sign = signer or rs256_signer(key or issuer_key(issuer))
    return f"{signing_input}.{b64url(sign(signing_input.encode('ascii')))}"


def header_for(issuer: LocalIssuer, **fields: Any) -> dict[str, Any]:
    """Cognito's header (``kid`` then ``alg``) with fields added, replaced or (None) removed."""
    header = {"kid": issuer.kid, "alg": "RS256", **fields}
    return {name: value for name, value in header.items() if value is not None}


def access_claims(issuer: LocalIssuer, now: int = NOW, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "5a0b6c1e-0000-4000-8000-000000000001",
        "iss": issuer.issuer,
        "client_id": issuer.client_id,
        "origin_jti": "2f7e1c3a-0000-4000-8000-000000000002",
        "event_id": "9d5f2b7c-0000-4000-8000-000000000003",
        "token_use": "access",
        "scope": "aws.cognito.signin.user.admin",
        "auth_time": now,
        "exp": now + 3600,
        "iat": now,
        "jti": "c4e8a9b2-0000-4000-8000-000000000004",
        "username": "alice",
        "version": 2,
    }
    claims.update(overrides)
    return claims


def id_claims(issuer: LocalIssuer, now: int = NOW, **overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "5a0b6c1e-0000-4000-8000-000000000001",
        "iss": issuer.issuer,
        "aud": issuer.client_id,
        "cognito:username": "alice",
        "token_use": "id",
        "auth_time": now,
        "exp": now + 3600,
        "iat": now,
        "jti": "c4e8a9b2-0000-4000-8000-000000000005",
        "email": "alice@example.com",
        "email_verified": True,
    }
    claims.update(overrides)
    return claims


def live_access_claims(issuer: LocalIssuer, **overrides: Any) -> dict[str, Any]:
    """Access claims valid against the real clock (for tests that do not freeze time)."""
    return access_claims(issuer, now=int(time.time()), **overrides)


def live_id_claims(issuer: LocalIssuer, **overrides: Any) -> dict[str, Any]:
    """ID claims valid against the real clock."""
    return id_claims(issuer, now=int(time.time()), **overrides)


def without(claims: dict[str, Any], *names: str) -> dict[str, Any]:
    return {name: value for name, value in claims.items() if name not in names}


def segments(token: str) -> list[str]:
    return token.split(".")


def with_segment(token: str, index: int, segment: str) -> str:
    parts = segments(token)
    parts[index] = segment
    return ".".join(parts)


def respelled_last_char(segment: str) -> str:
    """The same bytes spelled with non-zero unused low bits: a lenient decoder reads the
    result exactly like ``segment``, a canonical one refuses it."""
    rest = len(segment) % 4
    assert rest in (2, 3), "only a segment with a partial last quantum has unused bits"
    index = B64URL_ALPHABET.index(segment[-1])
    assert index % (16 if rest == 2 else 4) == 0
    respelled = segment[:-1] + B64URL_ALPHABET[index + 1]
    assert base64.urlsafe_b64decode(respelled + "=" * (-len(respelled) % 4)) == (
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return respelled


# -- assertions -----------------------------------------------------------------------


def assert_no_leak(err: InvalidTokenError, token: object) -> None:
    """Neither the token nor any of its segments appears in anything the error renders."""
    if isinstance(token, (bytes, bytearray)):
        token = bytes(token).decode("latin-1")
    if not isinstance(token, str):
        return
    # Short strings (an empty segment, "a.b") could match innocent words of a message.
    secrets = [part for part in (token, *token.split(".")) if len(part) >= 16]
    rendered = [
        str(err),
        repr(err),
        err.message,
        *(str(arg) for arg in err.args),
        "".join(traceback.format_exception(err)),
    ]
    for secret in secrets:
        for text in rendered:
            assert secret not in text, "the error carries the token or one of its segments"


def check_error(err: InvalidTokenError, token: object, code: str) -> InvalidTokenError:
    assert err.code == code, f"expected {code!r}, got {err.code!r} ({err.message})"
    assert err.status_code == 401
    assert_no_leak(err, token)
    return err


def reject(verifier: CognitoVerifier, token: object, code: str) -> InvalidTokenError:
    """``verify_sync`` raises ``InvalidTokenError`` with exactly ``code``, leaking nothing."""
    with pytest.raises(InvalidTokenError) as info:
        verifier.verify_sync(token)  # type: ignore[arg-type]
    return check_error(info.value, token, code)


async def areject(verifier: CognitoVerifier, token: object, code: str) -> InvalidTokenError:
    """The same through the async ``verify`` (which may fetch keys)."""
    with pytest.raises(InvalidTokenError) as info:
        await verifier.verify(token)  # type: ignore[arg-type]
    return check_error(info.value, token, code)


# -- fixtures -------------------------------------------------------------------------


@pytest.fixture
async def make_verifier(issuer: LocalIssuer) -> AsyncIterator[Callable[..., CognitoVerifier]]:
    """Builds verifiers (result cache off unless overridden) and closes them afterwards.

    ``make(**overrides)`` trusts ``issuer`` with its keys seeded; ``make(settings,
    jwks=None)`` leaves seeding to the test, ``make(jwks=...)`` seeds other keys.
    """
    made: list[CognitoVerifier] = []
    unset: Any = object()

    def make(
        settings: CognitoSettings | list[CognitoSettings] | None = None,
        *,
        jwks: Any = unset,
        http_client: httpx.AsyncClient | None = None,
        **overrides: Any,
    ) -> CognitoVerifier:
        if settings is None:
            settings = issuer.settings(**{"result_cache_size": 0, **overrides})
        verifier = CognitoVerifier(settings, http_client=http_client)
        made.append(verifier)
        if jwks is unset:
            verifier.cache_jwks(issuer.jwks())
        elif jwks is not None:
            verifier.cache_jwks(jwks)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


@asynccontextmanager
async def verifier_recording_fetches(
    issuer: LocalIssuer,
) -> AsyncIterator[tuple[CognitoVerifier, list[str]]]:
    """A verifier for ``issuer`` (keys seeded, result cache off) whose JWKS fetches are
    answered in-process with the issuer's JWKS; yields it and the URLs it fetched."""
    requested: list[str] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requested.append(str(request.url))
        return httpx.Response(200, json=issuer.jwks())

    async with httpx.AsyncClient(transport=httpx.MockTransport(handle)) as client:
        verifier = CognitoVerifier(issuer.settings(result_cache_size=0), http_client=client)
        verifier.cache_jwks(issuer.jwks())
        try:
            yield verifier, requested
        finally:
            await verifier.aclose()


@pytest.fixture
def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[float], None]:
    """Freezes the verifier's wall clock at ``NOW``; call the result to move it."""

    def set_now(value: float) -> None:
        monkeypatch.setattr("fastapi_cognito_guard.verifier.time.time", lambda: value)

    set_now(NOW)
    return set_now


@pytest.fixture(scope="module")
def attacker_key() -> rsa.RSAPrivateKey:
    """A perfectly good 2048-bit RSA key that no trusted JWKS contains."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def weak_key() -> rsa.RSAPrivateKey:
    """A 1024-bit RSA key: too short to be trusted even when published."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505 - on purpose


@pytest.fixture(scope="module")
def third_issuer() -> LocalIssuer:
    """A user pool no verifier here is configured for."""
    return LocalIssuer(user_pool_id="us-east-1_Third", client_id="third-client")


class _CountingHandler(LoopbackHandler["CountingServer"]):
    def do_GET(self) -> None:
        self.owner.requests.append(self.path)
        self.send(200, self.owner.body)


class CountingServer(LoopbackServer):
    """A JWKS server on 127.0.0.1 that publishes ``body`` (the attacker's key) and records
    the path of every request."""

    handler_class = _CountingHandler

    def __init__(self, body: bytes) -> None:
        super().__init__()
        self.body = body
        self.requests: list[str] = []

    @property
    def url(self) -> str:
        return f"{self.base_url}/.well-known/jwks.json"


@pytest.fixture(scope="module")
def attacker_server(
    issuer: LocalIssuer, attacker_key: rsa.RSAPrivateKey
) -> Iterator[CountingServer]:
    """Publishes the attacker's key under the issuer's kid: following it would verify."""
    body = json.dumps({"keys": [public_jwk(attacker_key, issuer.kid)]}).encode()
    with CountingServer(body) as server:
        yield server


def self_signed_certificate(key: rsa.RSAPrivateKey) -> str:
    """A base64 (standard, padded) DER certificate for ``key``, as ``x5c`` carries it."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "attacker")])
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc))
        .not_valid_after(datetime.datetime(2040, 1, 1, tzinfo=datetime.timezone.utc))
        .sign(key, hashes.SHA256())
    )
    return base64.b64encode(certificate.public_bytes(serialization.Encoding.DER)).decode()


# == header: alg ======================================================================


@pytest.mark.parametrize(
    "signature",
    ["real_rs256_signature", "junk_signature"],
)
def test_alg_none_with_signature_segment_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier, signature: str
) -> None:
    token = signed(issuer, header_for(issuer, alg="none"), live_access_claims(issuer))
    if signature == "junk_signature":
        token = with_segment(token, 2, b64url(b"not a signature at all"))
    reject(verifier, token, "unsupported_alg")


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
def test_alg_none_in_any_spelling_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier, alg: str
) -> None:
    reject(
        verifier,
        signed(issuer, header_for(issuer, alg=alg), live_access_claims(issuer)),
        "unsupported_alg",
    )


@pytest.mark.parametrize("shape", ["empty_signature_segment", "no_signature_segment"])
def test_alg_none_without_signature_segment_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, shape: str
) -> None:
    """The shape check (three non-empty segments) runs before the header is read."""
    unsigned = (
        f"{encode_part(header_for(issuer, alg='none'))}.{encode_part(live_access_claims(issuer))}"
    )
    token = unsigned + "." if shape == "empty_signature_segment" else unsigned
    reject(verifier, token, "malformed")


def _public_key_secret(issuer: LocalIssuer, form: str) -> bytes:
    public_key = issuer_key(issuer).public_key()
    encodings = {
        "pem_spki": (serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo),
        "pem_pkcs1": (serialization.Encoding.PEM, serialization.PublicFormat.PKCS1),
        "der_spki": (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo),
        "der_pkcs1": (serialization.Encoding.DER, serialization.PublicFormat.PKCS1),
    }
    if form == "jwk_json":
        return json.dumps(issuer.jwks()["keys"][0]).encode()
    return public_key.public_bytes(*encodings[form])


@pytest.mark.parametrize(
    ("alg", "secret_form"),
    [
        ("HS256", "pem_spki"),
        ("HS256", "pem_pkcs1"),
        ("HS256", "der_spki"),
        ("HS256", "der_pkcs1"),
        ("HS256", "jwk_json"),
        ("HS384", "pem_spki"),
        ("HS512", "pem_spki"),
    ],
)
def test_hmac_signed_with_the_public_key_as_secret_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier, alg: str, secret_form: str
) -> None:
    """The classic algorithm-confusion attack: the public key is public, so an
    HMAC 'signature' keyed with it is forgeable by anyone."""
    secret = _public_key_secret(issuer, secret_form)
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    token = signed(
        issuer,
        header_for(issuer, alg=alg),
        live_access_claims(issuer),
        signer=lambda data: hmac.new(secret, data, digest).digest(),
    )
    reject(verifier, token, "unsupported_alg")


def _other_algorithm_signer(issuer: LocalIssuer, alg: str) -> Signer:
    key = issuer_key(issuer)
    if alg == "RS384":
        return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA384())
    if alg == "RS512":
        return lambda data: key.sign(data, padding.PKCS1v15(), hashes.SHA512())
    if alg == "PS256":
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
        return lambda data: key.sign(data, pss, hashes.SHA256())
    ec_key = ec.generate_private_key(ec.SECP256R1())

    def es256(data: bytes) -> bytes:
        r, s = decode_dss_signature(ec_key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    return es256


@pytest.mark.parametrize("alg", ["RS384", "RS512", "PS256", "ES256"])
def test_correctly_signed_token_with_another_algorithm_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier, alg: str
) -> None:
    token = signed(
        issuer,
        header_for(issuer, alg=alg),
        live_access_claims(issuer),
        signer=_other_algorithm_signer(issuer, alg),
    )
    reject(verifier, token, "unsupported_alg")


def test_missing_alg_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    token = signed(issuer, {"kid": issuer.kid}, live_access_claims(issuer))
    reject(verifier, token, "unsupported_alg")


@pytest.mark.parametrize(
    "alg",
    [
        pytest.param(256, id="number"),
        pytest.param(True, id="true"),
        pytest.param(None, id="null"),
        pytest.param(2.5, id="float"),
        pytest.param(["RS256"], id="list"),
        pytest.param({"name": "RS256"}, id="object"),
    ],
)
def test_non_string_alg_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier, alg: Any
) -> None:
    token = signed(issuer, {"kid": issuer.kid, "alg": alg}, live_access_claims(issuer))
    reject(verifier, token, "unsupported_alg")


@pytest.mark.parametrize(
    "alg",
    ["rs256", "Rs256", "RS256 ", " RS256", "RS256\u0000", "RS 256", "RS-256", ""],
    ids=[
        "lower",
        "mixed",
        "trailing_space",
        "leading_space",
        "nul",
        "inner_space",
        "dash",
        "empty",
    ],
)
def test_alg_not_exactly_rs256_is_rejected_as_unsupported_alg(
    issuer: LocalIssuer, verifier: CognitoVerifier, alg: str
) -> None:
    """Signed with the real RS256 key: only the spelling of ``alg`` is wrong."""
    reject(
        verifier,
        signed(issuer, header_for(issuer, alg=alg), live_access_claims(issuer)),
        "unsupported_alg",
    )


# == header: kid and the keys it selects =============================================


def test_missing_kid_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    reject(verifier, signed(issuer, {"alg": "RS256"}, live_access_claims(issuer)), "malformed")


@pytest.mark.parametrize(
    "kid",
    [
        pytest.param(lambda kid: 123, id="number"),
        pytest.param(lambda kid: True, id="true"),
        pytest.param(lambda kid: None, id="null"),
        pytest.param(lambda kid: [kid], id="list"),
        pytest.param(lambda kid: {"kid": kid}, id="object"),
        pytest.param(lambda kid: "", id="empty_string"),
    ],
)
def test_non_string_or_empty_kid_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, kid: Callable[[str], Any]
) -> None:
    header = {"kid": kid(issuer.kid), "alg": "RS256"}
    reject(verifier, signed(issuer, header, live_access_claims(issuer)), "malformed")


def test_unknown_kid_is_rejected_as_unknown_kid(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    """Signed with the real key, but under a kid the JWKS does not list."""
    token = signed(
        issuer, header_for(issuer, kid="not-a-published-kid"), live_access_claims(issuer)
    )
    reject(verifier, token, "unknown_kid")


def test_kid_differing_only_in_case_is_rejected_as_unknown_kid(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    kid = issuer.kid.swapcase()
    assert kid != issuer.kid
    reject(
        verifier,
        signed(issuer, header_for(issuer, kid=kid), live_access_claims(issuer)),
        "unknown_kid",
    )


def test_key_of_another_pool_is_never_used_for_this_pools_issuer(
    issuer: LocalIssuer, other_issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    """Pool B's genuine key and kid, but the token claims pool A: A's JWKS has no such kid."""
    token = signed(
        issuer,
        header_for(other_issuer),
        live_access_claims(issuer),
        key=issuer_key(other_issuer),
    )
    reject(verifier, token, "unknown_kid")


@pytest.mark.parametrize(
    "jwk_overrides",
    [
        {"use": "enc"},
        {"alg": "RS512"},
        {"alg": "none"},
        {"alg": "HS256"},
        {"key_ops": ["encrypt"]},
        {"kty": "oct"},
    ],
    ids=["use_enc", "alg_RS512", "alg_none", "alg_HS256", "key_ops_encrypt", "kty_oct"],
)
def test_jwks_key_not_meant_for_rs256_signatures_is_never_used(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    attacker_key: rsa.RSAPrivateKey,
    jwk_overrides: dict[str, Any],
) -> None:
    """The only key under the token's kid is unfit, so the kid is unknown (the issuer's
    own key stays in the JWKS: a JWKS with no usable key at all is refused outright)."""
    jwks = {"keys": [*issuer.jwks()["keys"], public_jwk(attacker_key, "k1", **jwk_overrides)]}
    verifier = make_verifier(issuer.settings(result_cache_size=0), jwks=jwks)
    token = signed(
        issuer, header_for(issuer, kid="k1"), live_access_claims(issuer), key=attacker_key
    )
    reject(verifier, token, "unknown_kid")


def test_jwks_rsa_key_shorter_than_2048_bits_is_never_used(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], weak_key: rsa.RSAPrivateKey
) -> None:
    jwks = {"keys": [*issuer.jwks()["keys"], public_jwk(weak_key, "k1")]}
    verifier = make_verifier(issuer.settings(result_cache_size=0), jwks=jwks)
    token = signed(issuer, header_for(issuer, kid="k1"), live_access_claims(issuer), key=weak_key)
    reject(verifier, token, "unknown_kid")


def test_jwks_kid_listed_twice_is_never_used(
    issuer: LocalIssuer,
    other_issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    attacker_key: rsa.RSAPrivateKey,
) -> None:
    """Which of two keys under one kid is meant is unknowable, so neither is used."""
    real = issuer.jwks()["keys"][0]
    jwks = {"keys": [real, public_jwk(attacker_key, issuer.kid), *other_issuer.jwks()["keys"]]}
    verifier = make_verifier(issuer.settings(result_cache_size=0), jwks=jwks)
    reject(verifier, signed(issuer, header_for(issuer), live_access_claims(issuer)), "unknown_kid")


def test_a_fit_jwk_for_a_generated_key_verifies(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    attacker_key: rsa.RSAPrivateKey,
) -> None:
    """Control for the unfit-key tests: the same construction with a fit JWK is accepted."""
    jwks = {"keys": [*issuer.jwks()["keys"], public_jwk(attacker_key, "k1")]}
    verifier = make_verifier(issuer.settings(result_cache_size=0), jwks=jwks)
    token = signed(
        issuer, header_for(issuer, kid="k1"), live_access_claims(issuer), key=attacker_key
    )
    assert verifier.verify_sync(token).sub == live_access_claims(issuer)["sub"]


async def test_unknown_kid_refetches_the_configured_jwks_once_then_waits_for_the_cooldown(
    issuer: LocalIssuer, attacker_key: rsa.RSAPrivateKey
) -> None:
    async with verifier_recording_fetches(issuer) as (verifier, requested):
        token = signed(
            issuer,
            header_for(issuer, kid="made-up-kid"),
            live_access_claims(issuer),
            key=attacker_key,
        )
        await areject(verifier, token, "unknown_kid")
        assert requested == [issuer.jwks_url]
        for _ in range(5):
            await areject(verifier, token, "unknown_kid")
        assert requested == [issuer.jwks_url], "a kid miss within the cooldown must not refetch"


# == header: key URLs, embedded keys, crit ===========================================


@pytest.mark.parametrize("fields", ["jku", "x5u", "jwk", "x5c", "all_four"])
async def test_key_url_and_embedded_key_headers_are_never_followed(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    attacker_key: rsa.RSAPrivateKey,
    attacker_server: CountingServer,
    fields: str,
) -> None:
    """Signed by the attacker under the real kid, pointing at (or embedding) the
    attacker's key: only the configured JWKS decides, so the signature is bad."""
    offered = {
        "jku": attacker_server.url,
        "x5u": attacker_server.url,
        "jwk": public_jwk(attacker_key, issuer.kid),
        "x5c": [self_signed_certificate(attacker_key)],
    }
    chosen = offered if fields == "all_four" else {fields: offered[fields]}
    token = signed(
        issuer, header_for(issuer, **chosen), live_access_claims(issuer), key=attacker_key
    )
    before = len(attacker_server.requests)
    reject(verifier, token, "bad_signature")
    await areject(verifier, token, "bad_signature")
    assert len(attacker_server.requests) == before, "a header URL was fetched"


async def test_unknown_kid_with_jku_fetches_only_the_configured_jwks_url(
    issuer: LocalIssuer, attacker_key: rsa.RSAPrivateKey, attacker_server: CountingServer
) -> None:
    async with verifier_recording_fetches(issuer) as (verifier, requested):
        header = header_for(
            issuer,
            kid="attacker-kid",
            jku=attacker_server.url,
            x5u=attacker_server.url,
            jwk=public_jwk(attacker_key, "attacker-kid"),
        )
        before = len(attacker_server.requests)
        await areject(
            verifier,
            signed(issuer, header, live_access_claims(issuer), key=attacker_key),
            "unknown_kid",
        )
    assert requested == [issuer.jwks_url]
    assert len(attacker_server.requests) == before


@pytest.mark.parametrize(
    "crit_fields",
    [
        {"crit": ["exp"], "exp": NOW},
        {"crit": ["b64"], "b64": False},
        {"crit": ["urn:example:unknown"], "urn:example:unknown": 1},
        {"crit": []},
    ],
    ids=["exp", "b64", "private_name", "empty_list"],
)
def test_crit_header_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, crit_fields: dict[str, Any]
) -> None:
    """No extension is understood, so any ``crit`` makes the token unprocessable."""
    token = signed(issuer, header_for(issuer, **crit_fields), live_access_claims(issuer))
    reject(verifier, token, "malformed")


# == signature =========================================================================


@pytest.mark.parametrize("where", ["first_byte", "middle_byte", "last_byte"])
def test_flipped_signature_bit_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier, where: str
) -> None:
    token = issuer.access_token()
    signature = bytearray(base64.urlsafe_b64decode(segments(token)[2] + "=="))
    index = {"first_byte": 0, "middle_byte": len(signature) // 2, "last_byte": -1}[where]
    signature[index] ^= 0x01
    reject(verifier, with_segment(token, 2, b64url(bytes(signature))), "bad_signature")


def test_signature_from_another_key_under_the_right_kid_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier, attacker_key: rsa.RSAPrivateKey
) -> None:
    token = signed(issuer, header_for(issuer), live_access_claims(issuer), key=attacker_key)
    reject(verifier, token, "bad_signature")


@pytest.mark.parametrize(
    "change",
    [
        "drop_last_byte",
        "drop_first_byte",
        "keep_half",
        "keep_one_byte",
        "prepend_zero",
        "append_byte",
    ],
)
def test_signature_of_the_wrong_length_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier, change: str
) -> None:
    token = issuer.access_token()
    signature = base64.urlsafe_b64decode(segments(token)[2] + "==")
    changed = {
        "drop_last_byte": signature[:-1],
        "drop_first_byte": signature[1:],
        "keep_half": signature[: len(signature) // 2],
        "keep_one_byte": signature[:1],
        "prepend_zero": b"\x00" + signature,
        "append_byte": signature + b"\x00",
    }[change]
    reject(verifier, with_segment(token, 2, b64url(changed)), "bad_signature")


def test_all_zero_signature_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    token = issuer.access_token()
    reject(verifier, with_segment(token, 2, b64url(bytes(256))), "bad_signature")


def test_payload_swapped_between_two_valid_tokens_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    alice = issuer.access_token("alice")
    admin = issuer.access_token("admin", groups=["admin"])
    verifier.verify_sync(alice)
    verifier.verify_sync(admin)
    forged = with_segment(alice, 1, segments(admin)[1])
    reject(verifier, forged, "bad_signature")


def test_equivalent_but_reformatted_header_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    """The signature covers bytes, not meaning: the same header JSON re-spaced fails."""
    token = issuer.access_token()
    spaced = json.dumps({"kid": issuer.kid, "alg": "RS256"}, separators=(", ", ": ")).encode()
    assert b64url(spaced) != segments(token)[0]
    reject(verifier, with_segment(token, 0, b64url(spaced)), "bad_signature")


def test_signature_over_another_signing_input_is_rejected_as_bad_signature(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    """A genuine issuer signature, but over the payload alone."""
    token = issuer.access_token()
    header, payload, _ = segments(token)
    signature = rs256_signer(issuer_key(issuer))(payload.encode())
    reject(verifier, f"{header}.{payload}.{b64url(signature)}", "bad_signature")


# == issuer (pool selection) ===========================================================


@pytest.mark.parametrize(
    "iss",
    [
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Evil",
        "https://cognito-idp.us-east-1.amazonaws.com/eu-central-1_Test",
        "https://issuer-cognito-idp.us-east-1.amazonaws.com/eu-central-1_Test",
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test/",
        "https://COGNITO-IDP.eu-central-1.amazonaws.com/eu-central-1_Test",
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_test",
        "http://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
        "HTTPS://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
        "https://cognito-idp.eu-central-1.amazonaws.com:443/eu-central-1_Test",
        "cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test/.well-known/jwks.json",
        " https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
        "https://evil.example/https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
        "",
    ],
    ids=[
        "other_pool",
        "unconfigured_replica_region",
        "issuer_form_other_region",
        "trailing_slash",
        "upper_case_host",
        "pool_id_case",
        "http_scheme",
        "upper_case_scheme",
        "explicit_port",
        "no_scheme",
        "jwks_path_suffix",
        "leading_space",
        "embedded_in_other_url",
        "empty",
    ],
)
def test_validly_signed_token_naming_another_issuer_is_rejected_as_wrong_issuer(
    issuer: LocalIssuer, verifier: CognitoVerifier, iss: str
) -> None:
    """Same key, same kid, valid signature: only ``iss`` is not exactly one of the pool's."""
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, iss=iss))
    reject(verifier, token, "wrong_issuer")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(lambda c: without(c, "iss"), id="missing"),
        pytest.param(lambda c: {**c, "iss": 1}, id="number"),
        pytest.param(lambda c: {**c, "iss": [c["iss"]]}, id="list"),
        pytest.param(lambda c: {**c, "iss": None}, id="null"),
    ],
)
def test_missing_or_non_string_iss_is_rejected_as_malformed(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    claims: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    reject(
        verifier,
        signed(issuer, header_for(issuer), claims(live_access_claims(issuer))),
        "malformed",
    )


@pytest.mark.parametrize(
    "iss",
    [
        "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
        "https://issuer-cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Test",
    ],
    ids=["cognito_idp", "issuer_cognito_idp"],
)
def test_both_cognito_issuer_forms_of_the_pool_are_accepted(
    issuer: LocalIssuer, verifier: CognitoVerifier, iss: str
) -> None:
    claims = verifier.verify_sync(
        signed(issuer, header_for(issuer), live_access_claims(issuer, iss=iss))
    )
    assert claims.iss == iss
    assert claims.user_pool_id == issuer.user_pool_id


def test_replica_region_issuer_is_accepted_only_when_configured(
    issuer: LocalIssuer, verifier: CognitoVerifier, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    replica = "https://cognito-idp.eu-west-1.amazonaws.com/eu-central-1_Test"
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, iss=replica))
    reject(verifier, token, "wrong_issuer")
    replicated = make_verifier(additional_regions=["eu-west-1"])
    assert replicated.verify_sync(token).iss == replica
    other_replica = "https://cognito-idp.us-east-1.amazonaws.com/eu-central-1_Test"
    reject(
        replicated,
        signed(issuer, header_for(issuer), live_access_claims(issuer, iss=other_replica)),
        "wrong_issuer",
    )


def test_explicit_issuer_setting_replaces_the_cognito_defaults(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    custom = "https://auth.example.com/eu-central-1_Test"
    verifier = make_verifier(issuer=custom)
    assert verifier.verify_sync(
        signed(issuer, header_for(issuer), live_access_claims(issuer, iss=custom))
    )
    reject(verifier, signed(issuer, header_for(issuer), live_access_claims(issuer)), "wrong_issuer")


@pytest.fixture
def two_pools(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> CognitoVerifier:
    verifier = make_verifier(
        [issuer.settings(result_cache_size=0), other_issuer.settings(result_cache_size=0)],
        jwks=None,
    )
    verifier.cache_jwks(issuer.jwks(), user_pool_id=issuer.user_pool_id)
    verifier.cache_jwks(other_issuer.jwks(), user_pool_id=other_issuer.user_pool_id)
    return verifier


def test_two_pool_verifier_accepts_each_pools_tokens_and_names_the_pool(
    issuer: LocalIssuer, other_issuer: LocalIssuer, two_pools: CognitoVerifier
) -> None:
    for pool in (issuer, other_issuer):
        claims = two_pools.verify_sync(pool.access_token())
        assert isinstance(claims, AccessTokenClaims)
        assert claims.user_pool_id == pool.user_pool_id
        assert claims.client_id == pool.client_id


def test_two_pool_verifier_rejects_a_third_pools_token_as_wrong_issuer(
    third_issuer: LocalIssuer, two_pools: CognitoVerifier
) -> None:
    reject(two_pools, third_issuer.access_token(), "wrong_issuer")


def test_two_pool_verifier_checks_the_client_against_the_matched_pool_only(
    issuer: LocalIssuer, other_issuer: LocalIssuer, two_pools: CognitoVerifier
) -> None:
    """Pool A's genuine token for pool B's app client is not for any client of pool A."""
    token = signed(
        issuer, header_for(issuer), live_access_claims(issuer, client_id=other_issuer.client_id)
    )
    reject(two_pools, token, "wrong_client")


def test_token_naming_pool_b_is_checked_only_against_pool_b_keys(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    """Both pools publish a key under the same kid: a token signed with pool A's key
    but naming pool B is checked against B's key, and fails."""
    verifier = make_verifier(
        [issuer.settings(result_cache_size=0), other_issuer.settings(result_cache_size=0)],
        jwks=None,
    )
    verifier.cache_jwks(issuer.jwks(), user_pool_id=issuer.user_pool_id)
    b_key_under_a_kid = {**other_issuer.jwks()["keys"][0], "kid": issuer.kid}
    verifier.cache_jwks({"keys": [b_key_under_a_kid]}, user_pool_id=other_issuer.user_pool_id)
    claims = live_access_claims(issuer, iss=other_issuer.issuer, client_id=other_issuer.client_id)
    reject(verifier, signed(issuer, header_for(issuer), claims), "bad_signature")


# == token_use =========================================================================


def test_id_token_where_access_tokens_are_configured_is_rejected_as_wrong_token_use(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    reject(verifier, issuer.id_token(), "wrong_token_use")


def test_access_token_where_id_tokens_are_configured_is_rejected_as_wrong_token_use(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    reject(make_verifier(token_use="id"), issuer.access_token(), "wrong_token_use")


@pytest.mark.parametrize("configured", ["access", "id", "any"])
@pytest.mark.parametrize(
    "token_use",
    ["<missing>", "refresh", "ACCESS", "Id", "", 1, ["access"], None],
    ids=["missing", "refresh", "upper_access", "mixed_id", "empty", "number", "list", "null"],
)
def test_token_use_other_than_access_or_id_is_rejected_as_wrong_token_use(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    configured: str,
    token_use: Any,
) -> None:
    """The payload carries both ``client_id`` and ``aud`` so only ``token_use`` is wrong."""
    claims = live_access_claims(issuer, aud=issuer.client_id)
    claims = (
        without(claims, "token_use")
        if token_use == "<missing>"
        else {**claims, "token_use": token_use}
    )
    reject(
        make_verifier(token_use=configured),
        signed(issuer, header_for(issuer), claims),
        "wrong_token_use",
    )


def test_token_use_any_accepts_access_and_id_tokens(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    verifier = make_verifier(token_use="any")
    assert isinstance(verifier.verify_sync(issuer.access_token()), AccessTokenClaims)
    assert isinstance(verifier.verify_sync(issuer.id_token()), IdTokenClaims)


def test_token_use_is_checked_per_pool(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    """Pool A takes access tokens, pool B ID tokens: together the verifier parses both
    types, yet each pool still refuses the type it was not configured for."""
    verifier = make_verifier(
        [
            issuer.settings(result_cache_size=0, token_use="access"),
            other_issuer.settings(result_cache_size=0, token_use="id"),
        ],
        jwks=None,
    )
    verifier.cache_jwks(issuer.jwks(), user_pool_id=issuer.user_pool_id)
    verifier.cache_jwks(other_issuer.jwks(), user_pool_id=other_issuer.user_pool_id)
    assert verifier.verify_sync(issuer.access_token()).token_use == "access"
    assert verifier.verify_sync(other_issuer.id_token()).token_use == "id"
    reject(verifier, issuer.id_token(), "wrong_token_use")
    reject(verifier, other_issuer.access_token(), "wrong_token_use")


# == app client ========================================================================


@pytest.mark.parametrize(
    "overrides",
    [
        {"client_id": "another-client"},
        {"client_id": "TEST-CLIENT"},
        {"client_id": "test-client "},
        {"client_id": "another-client", "aud": "test-client"},
    ],
    ids=["other", "case", "trailing_space", "aud_is_ignored_for_access_tokens"],
)
def test_access_token_for_another_client_is_rejected_as_wrong_client(
    issuer: LocalIssuer, verifier: CognitoVerifier, overrides: dict[str, Any]
) -> None:
    reject(
        verifier,
        signed(issuer, header_for(issuer), live_access_claims(issuer, **overrides)),
        "wrong_client",
    )


def test_machine_token_for_another_client_is_rejected_as_wrong_client(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    reject(
        verifier,
        issuer.client_credentials_token(["orders/read"], client_id="robot"),
        "wrong_client",
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"aud": "another-client"},
        {"aud": "another-client", "client_id": "test-client"},
    ],
    ids=["other", "client_id_is_ignored_for_id_tokens"],
)
def test_id_token_for_another_audience_is_rejected_as_wrong_audience(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], overrides: dict[str, Any]
) -> None:
    token = signed(issuer, header_for(issuer), live_id_claims(issuer, **overrides))
    reject(make_verifier(token_use="id"), token, "wrong_audience")


# -- claim types (DESIGN §4): the same rules whatever the token type --------------------

MAX_NUMERIC_DATE = 253402300799
NUMERIC_DATES = ("exp", "nbf", "iat", "auth_time")
BAD_NUMERIC_DATES = {
    "null": None,
    "huge": 10**400,
    "beyond_year_9999": MAX_NUMERIC_DATE + 1,
    "negative": -1,
    "float": 1.5e9,
    "whole_float": 2.0e9,
    "true": True,
    "string": "1700000000",
}
# Claims the claim classes name, with a value of the wrong type for each.
BAD_CLAIM_TYPES = {
    "sub": [None, 7],
    "iss": [None],
    "jti": [None, 7],
    "origin_jti": [None, ["x"]],
    "event_id": [None],
    "client_id": [None, ["test-client"]],
    "username": [None, 7],
    "cognito:username": [None, 7, ["alice"]],
    "scope": [None, 12345, ["orders/read"]],
    "aud": [None, 7, {"client": "test-client"}, ["test-client", None]],
    "cognito:groups": [None, "admin", [7], ["admin", None]],
    "cognito:roles": [None, "arn:aws:iam::1:role/x", [False]],
    "cognito:preferred_role": [None, 7],
    "email": [None],
    "email_verified": [None, "yes", 1],
    "version": [None, True, "2"],
    "acr": [None, 7, ["urn:amazon:cognito:mfa"]],
    "amr": [None, "mfa", [7], ["pwd", None]],
}


def claims_of(issuer: LocalIssuer, token_use: str, **overrides: Any) -> dict[str, Any]:
    return (live_access_claims if token_use == "access" else live_id_claims)(issuer, **overrides)


BAD_CLAIMS = [
    *(
        (claim, value, f"{claim}_{kind}")
        for claim in NUMERIC_DATES
        for kind, value in BAD_NUMERIC_DATES.items()
    ),
    *(
        (claim, value, f"{claim}={value!r}")
        for claim, values in BAD_CLAIM_TYPES.items()
        for value in values
    ),
]


@pytest.mark.parametrize("token_use", ["access", "id"])
@pytest.mark.parametrize(
    ("claim", "value"),
    [(claim, value) for claim, value, _ in BAD_CLAIMS],
    ids=[name for _, _, name in BAD_CLAIMS],
)
def test_named_claim_of_the_wrong_type_is_rejected_as_malformed_on_every_token_type(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    token_use: str,
    claim: str,
    value: Any,
) -> None:
    token = signed(issuer, header_for(issuer), claims_of(issuer, token_use, **{claim: value}))
    err = reject(make_verifier(token_use="any"), token, "malformed")
    assert claim in err.message


@pytest.mark.parametrize("token_use", ["access", "id"])
def test_numeric_dates_at_the_bounds_are_accepted(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], token_use: str
) -> None:
    claims = claims_of(issuer, token_use, exp=MAX_NUMERIC_DATE, nbf=0, auth_time=0)
    verified = make_verifier(token_use="any").verify_sync(
        signed(issuer, header_for(issuer), claims)
    )
    assert (verified.exp, verified.nbf, verified.auth_time) == (MAX_NUMERIC_DATE, 0, 0)


@pytest.mark.parametrize(
    "aud",
    [["another-client", "test-client"], ["test-client"], ["another-client"], []],
    ids=["naming_the_client_second", "only_the_client", "other", "empty"],
)
def test_id_token_with_an_aud_list_is_rejected_as_malformed(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], aud: list[str]
) -> None:
    """Cognito issues an ID token's ``aud`` as a string; aws-jwt-verify refuses a list."""
    token = signed(issuer, header_for(issuer), live_id_claims(issuer, aud=aud))
    err = reject(make_verifier(token_use="id"), token, "malformed")
    assert "aud" in err.message


# -- resource binding: audiences (RFC 8707, DESIGN §18) --------------------------------

API = "https://api.example.com"
OTHER_API = "https://other.example.com"


@pytest.mark.parametrize(
    "aud", [API, [API], [OTHER_API, API]], ids=["string", "list", "list_naming_it_second"]
)
def test_access_token_bound_to_a_configured_audience_is_accepted(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], aud: Any
) -> None:
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, aud=aud))
    verified = make_verifier(audiences=[API, "urn:example:orders"]).verify_sync(token)
    assert verified.aud == aud


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param(lambda i: live_access_claims(i), id="no_aud"),
        pytest.param(lambda i: live_access_claims(i, aud=OTHER_API), id="foreign_string"),
        pytest.param(lambda i: live_access_claims(i, aud=[OTHER_API]), id="foreign_list"),
        pytest.param(lambda i: live_access_claims(i, aud=[]), id="empty_list"),
        pytest.param(lambda i: live_access_claims(i, aud=i.client_id), id="the_client_id"),
    ],
)
def test_access_token_not_bound_to_a_configured_audience_is_rejected_as_wrong_audience(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    claims: Callable[[LocalIssuer], dict[str, Any]],
) -> None:
    token = signed(issuer, header_for(issuer), claims(issuer))
    reject(make_verifier(audiences=[API]), token, "wrong_audience")


def test_audiences_do_not_replace_the_client_id_check(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    token = signed(
        issuer, header_for(issuer), live_access_claims(issuer, aud=API, client_id="another")
    )
    reject(make_verifier(audiences=[API]), token, "wrong_client")


def test_audiences_do_not_apply_to_id_tokens(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    token = signed(issuer, header_for(issuer), live_id_claims(issuer))
    verified = make_verifier(audiences=[API], token_use="id").verify_sync(token)
    assert verified.aud == issuer.client_id


@pytest.mark.parametrize(
    "aud", [OTHER_API, [OTHER_API, "x"], []], ids=["string", "list", "empty_list"]
)
def test_without_audiences_an_access_token_aud_is_not_checked(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], aud: Any
) -> None:
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, aud=aud))
    assert make_verifier().verify_sync(token).audiences == ([aud] if isinstance(aud, str) else aud)


def test_audience_check_holds_on_result_cache_hits(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    """A token cached by a verifier without audiences is not shared with one that has them."""
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, aud=OTHER_API))
    assert make_verifier(result_cache_size=10).verify_sync(token).sub
    reject(make_verifier(audiences=[API], result_cache_size=10), token, "wrong_audience")


# -- cost bound (DESIGN §4): the signature is checked before the claims ----------------

FORGED_PAYLOADS = {
    "5000_bad_list_items": {"cognito:groups": [7] * 5000},
    "1000_extra_claims": {f"c{i}": i for i in range(1000)},
    "null_and_huge_dates": {"exp": 10**400, "iat": None, "nbf": -1},
}


@pytest.mark.parametrize("extra", FORGED_PAYLOADS.values(), ids=FORGED_PAYLOADS.keys())
def test_forged_token_with_an_expensive_payload_fails_on_its_signature_first(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    attacker_key: rsa.RSAPrivateKey,
    extra: dict[str, Any],
) -> None:
    payload = json.dumps(live_access_claims(issuer, **extra), separators=(",", ":"))
    forged = signed(issuer, header_for(issuer), payload.encode(), key=attacker_key)
    assert len(forged) <= 16 * 1024
    reject(make_verifier(), forged, "bad_signature")


def test_issuer_spelled_with_escaped_slashes_is_routed_by_its_decoded_value(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    payload = json.dumps(live_access_claims(issuer)).replace("/", "\\/").encode()
    assert b'"iss": "https:\\/\\/' in payload
    verified = make_verifier().verify_sync(signed(issuer, header_for(issuer), payload))
    assert verified.iss == issuer.issuer


def test_payload_naming_a_trusted_issuer_then_another_is_rejected_as_wrong_issuer(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    """The quick route finds the trusted ``iss``; the decode keeps the last one."""
    body = json.dumps(live_access_claims(issuer))[1:]
    payload = f'{{"iss":"{issuer.issuer}",{body[:-1]}, "iss": "https://evil.example"}}'
    reject(make_verifier(), signed(issuer, header_for(issuer), payload.encode()), "wrong_issuer")


def test_access_token_with_a_string_aud_is_accepted(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, aud="anything"))
    assert make_verifier().verify_sync(token).sub


@pytest.mark.parametrize(
    ("token_use", "claims"),
    [
        pytest.param(
            "access",
            lambda i: without(live_access_claims(i), "client_id"),
            id="access_without_client_id",
        ),
        pytest.param(
            "access",
            lambda i: live_access_claims(i, client_id=["test-client"]),
            id="access_client_id_list",
        ),
        pytest.param("id", lambda i: without(live_id_claims(i), "aud"), id="id_without_aud"),
        pytest.param(
            "id", lambda i: live_id_claims(i, aud=["test-client", 7]), id="id_aud_list_non_string"
        ),
    ],
)
def test_missing_or_non_string_client_claim_is_rejected_as_malformed(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    token_use: str,
    claims: Callable[[LocalIssuer], dict[str, Any]],
) -> None:
    reject(
        make_verifier(token_use=token_use),
        signed(issuer, header_for(issuer), claims(issuer)),
        "malformed",
    )


def test_every_configured_client_id_is_accepted(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    verifier = make_verifier(client_ids=["web", "mobile", issuer.client_id], token_use="any")
    for client in ("web", "mobile", issuer.client_id):
        access = signed(issuer, header_for(issuer), live_access_claims(issuer, client_id=client))
        identity = signed(issuer, header_for(issuer), live_id_claims(issuer, aud=client))
        assert verifier.verify_sync(access).client_id == client
        assert verifier.verify_sync(identity).aud == client
    reject(
        verifier,
        signed(issuer, header_for(issuer), live_access_claims(issuer, client_id="tv")),
        "wrong_client",
    )


# == time ==============================================================================


@pytest.mark.parametrize(
    "exp_offset", [-LEEWAY, -LEEWAY - 1, -3600], ids=["at_leeway", "leeway_plus_1", "an_hour"]
)
def test_token_expired_beyond_leeway_is_rejected_as_expired(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    frozen_clock: Callable[[float], None],
    exp_offset: int,
) -> None:
    """``exp > now - leeway`` is required, so ``exp == now - leeway`` is already expired."""
    reject(
        verifier,
        signed(issuer, header_for(issuer), access_claims(issuer, exp=NOW + exp_offset)),
        "expired",
    )


@pytest.mark.parametrize(
    "exp_offset", [-LEEWAY + 1, -1, 0], ids=["leeway_minus_1", "one_second", "exactly_now"]
)
def test_token_expired_within_leeway_is_accepted(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    frozen_clock: Callable[[float], None],
    exp_offset: int,
) -> None:
    """A server a few seconds ahead of Cognito must not reject fresh tokens."""
    token = signed(
        issuer, header_for(issuer), access_claims(issuer, now=NOW - 3600, exp=NOW + exp_offset)
    )
    assert verifier.verify_sync(token).exp == NOW + exp_offset


def test_leeway_setting_is_honoured(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    frozen_clock: Callable[[float], None],
) -> None:
    strict = make_verifier(leeway_seconds=0)
    reject(strict, signed(issuer, header_for(issuer), access_claims(issuer, exp=NOW)), "expired")
    assert strict.verify_sync(
        signed(issuer, header_for(issuer), access_claims(issuer, exp=NOW + 1))
    )
    reject(
        strict,
        signed(issuer, header_for(issuer), access_claims(issuer, nbf=NOW + 1)),
        "not_yet_valid",
    )


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize("offset", [LEEWAY + 1, 3600], ids=["leeway_plus_1", "an_hour"])
def test_nbf_or_iat_in_the_future_beyond_leeway_is_rejected_as_not_yet_valid(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    frozen_clock: Callable[[float], None],
    claim: str,
    offset: int,
) -> None:
    token = signed(issuer, header_for(issuer), access_claims(issuer, **{claim: NOW + offset}))
    reject(verifier, token, "not_yet_valid")


@pytest.mark.parametrize("offset", [LEEWAY, 1], ids=["exactly_leeway", "one_second"])
def test_nbf_and_iat_in_the_future_within_leeway_are_accepted(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    frozen_clock: Callable[[float], None],
    offset: int,
) -> None:
    """A server a few seconds behind Cognito must not reject fresh tokens."""
    token = signed(
        issuer, header_for(issuer), access_claims(issuer, nbf=NOW + offset, iat=NOW + offset)
    )
    claims = verifier.verify_sync(token)
    assert (claims.nbf, claims.iat) == (NOW + offset, NOW + offset)


def test_missing_exp_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, frozen_clock: Callable[[float], None]
) -> None:
    reject(
        verifier,
        signed(issuer, header_for(issuer), without(access_claims(issuer), "exp")),
        "malformed",
    )


@pytest.mark.parametrize("claim", ["exp", "nbf", "iat"])
@pytest.mark.parametrize(
    "value",
    [str(NOW + 60), NOW + 60.5, float(NOW + 60), True, [NOW + 60], {"seconds": NOW}],
    ids=["string", "float", "integral_float", "true", "list", "object"],
)
def test_time_claim_that_is_not_an_integer_is_rejected_as_malformed(
    issuer: LocalIssuer,
    verifier: CognitoVerifier,
    frozen_clock: Callable[[float], None],
    claim: str,
    value: Any,
) -> None:
    reject(
        verifier,
        signed(issuer, header_for(issuer), access_claims(issuer, **{claim: value})),
        "malformed",
    )


def test_null_exp_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, frozen_clock: Callable[[float], None]
) -> None:
    reject(
        verifier, signed(issuer, header_for(issuer), access_claims(issuer, exp=None)), "malformed"
    )


# == shape =============================================================================


@pytest.mark.parametrize("count", [1, 2, 4, 5])
def test_token_without_exactly_three_segments_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, count: int
) -> None:
    header, payload, signature = segments(issuer.access_token())
    parts = {1: [header], 2: [header, payload], 4: [header, payload, signature, signature]}.get(
        count, [header, payload, signature, signature, signature]
    )
    reject(verifier, ".".join(parts), "malformed")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda h, p, s: f".{p}.{s}", id="empty_header"),
        pytest.param(lambda h, p, s: f"{h}..{s}", id="empty_payload"),
        pytest.param(lambda h, p, s: f"{h}.{p}.", id="empty_signature"),
        pytest.param(lambda h, p, s: "..", id="all_empty"),
        pytest.param(lambda h, p, s: "", id="empty_string"),
    ],
)
def test_empty_segment_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, token: Callable[[str, str, str], str]
) -> None:
    reject(verifier, token(*segments(issuer.access_token())), "malformed")


def test_base64_padding_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    """A padded signature decodes to the very same bytes, yet it is another spelling."""
    token = issuer.access_token()
    signature = segments(token)[2]
    padded = signature + "=" * (-len(signature) % 4)
    assert padded != signature
    reject(verifier, with_segment(token, 2, padded), "malformed")


def test_base64_padding_on_every_segment_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    token = ".".join(part + "=" * (-len(part) % 4) for part in segments(issuer.access_token()))
    reject(verifier, token, "malformed")


@pytest.mark.parametrize(("url_safe", "standard"), [("-", "+"), ("_", "/")], ids=["plus", "slash"])
def test_standard_base64_alphabet_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, url_safe: str, standard: str
) -> None:
    """The same bytes in base64's standard alphabet: only base64url is accepted."""
    token = issuer.access_token()
    while url_safe not in token:
        token = issuer.access_token()
    reject(verifier, token.replace(url_safe, standard), "malformed")


def _token_with_partial_last_quantum(issuer: LocalIssuer, index: int) -> str:
    """A validly signed token whose segment ``index`` has unused bits in its last character."""
    for pad in range(4):
        header = header_for(issuer, **({"x": "p" * pad} if index == 0 and pad else {}))
        claims = live_access_claims(issuer, pad="p" * pad)
        token = signed(issuer, header, claims)
        if len(segments(token)[index]) % 4 in (2, 3):
            return token
    raise AssertionError("no padding gave a partial last quantum")


@pytest.mark.parametrize("index", [0, 1, 2], ids=["header", "payload", "signature"])
def test_non_canonical_trailing_bits_are_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, index: int
) -> None:
    """Each token has one spelling: a last character with non-zero unused bits decodes
    to the same bytes in lenient decoders, and is refused here."""
    token = _token_with_partial_last_quantum(issuer, index)
    verifier.verify_sync(token)
    reject(
        verifier,
        with_segment(token, index, respelled_last_char(segments(token)[index])),
        "malformed",
    )


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: " " + t, id="leading_space"),
        pytest.param(lambda t: t + "\n", id="trailing_newline"),
        pytest.param(lambda t: t + "\r\n", id="trailing_crlf"),
        pytest.param(lambda t: t[:40] + " " + t[40:], id="space_in_header"),
        pytest.param(lambda t: t[:-40] + "\n" + t[-40:], id="newline_in_signature"),
        pytest.param(lambda t: t.replace(".", ".\t", 1), id="tab_after_dot"),
        pytest.param(lambda t: t.replace(".", " .", 2), id="space_before_dots"),
        pytest.param(lambda t: t[:60] + "    " + t[60:], id="four_spaces_in_header"),
        pytest.param(lambda t: t[:-60] + "\r\n\r\n" + t[-60:], id="two_crlf_in_signature"),
    ],
)
def test_whitespace_inside_or_around_the_token_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, mutate: Callable[[str], str]
) -> None:
    reject(verifier, mutate(issuer.access_token()), "malformed")


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t[:50] + "é" + t[50:], id="latin_letter"),
        pytest.param(lambda t: t.replace(".", "\u2024"), id="one_dot_leader_separators"),
        pytest.param(lambda t: t.replace(".", "\uff0e", 1), id="fullwidth_full_stop"),
        pytest.param(lambda t: t[:-10] + "\u200b" + t[-10:], id="zero_width_space"),
        pytest.param(lambda t: t + "\u00a0", id="no_break_space"),
        pytest.param(lambda t: t.replace("A", "\u0391", 1), id="greek_capital_alpha"),
        pytest.param(lambda t: t + "\udcff", id="lone_surrogate"),
    ],
)
def test_non_ascii_characters_are_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, mutate: Callable[[str], str]
) -> None:
    token = issuer.access_token()
    while "A" not in token:
        token = issuer.access_token()
    reject(verifier, mutate(token), "malformed")


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(lambda t: None, id="none"),
        pytest.param(lambda t: t.encode(), id="bytes"),
        pytest.param(lambda t: bytearray(t.encode()), id="bytearray"),
        pytest.param(lambda t: memoryview(t.encode()), id="memoryview"),
        pytest.param(lambda t: 12345, id="int"),
        pytest.param(lambda t: t.split("."), id="list"),
        pytest.param(lambda t: {"token": t}, id="dict"),
    ],
)
def test_non_string_token_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, token: Callable[[str], object]
) -> None:
    reject(verifier, token(issuer.access_token()), "malformed")


@pytest.mark.parametrize("token", [["a", "b", "c"], {"token": "a.b.c"}], ids=["list", "dict"])
def test_unhashable_token_with_the_result_cache_on_is_rejected_as_malformed(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], token: object
) -> None:
    """The result-cache lookup comes first and must not choke on what it cannot hash."""
    reject(make_verifier(result_cache_size=100), token, "malformed")


def test_non_string_token_with_the_result_cache_on_is_rejected_as_malformed(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    verifier = make_verifier(result_cache_size=100)
    token = issuer.access_token()
    verifier.verify_sync(token)
    reject(verifier, token.encode(), "malformed")
    reject(verifier, None, "malformed")


def _token_of_length(issuer: LocalIssuer, length: int, groups: list[str]) -> str:
    """A validly signed access token of exactly ``length`` characters."""
    signature_length = len(b64url(bytes(issuer_key(issuer).key_size // 8)))
    claims = live_access_claims(issuer, **{"cognito:groups": groups, "pad": ""})
    for extra in ("", "x", "xy", "xyz"):
        header = header_for(issuer, **({"x": extra} if extra else {}))
        payload_length = length - len(encode_part(header)) - 2 - signature_length
        if payload_length % 4 == 1:  # no byte string encodes to this many characters
            continue
        size = payload_length * 3 // 4
        claims["pad"] = ""
        claims["pad"] = "p" * (size - len(json.dumps(claims).encode()))
        token = signed(issuer, header, claims)
        assert len(token) == length
        return token
    raise AssertionError("unreachable: one of four header lengths fits")


MANY_GROUPS = [f"team-{number:04d}" for number in range(600)]


def test_token_of_exactly_16_kib_with_many_groups_verifies(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    """A user in hundreds of groups has a big token: there is no lower size limit."""
    token = _token_of_length(issuer, MAX_TOKEN_LENGTH, MANY_GROUPS)
    assert verifier.verify_sync(token).groups == MANY_GROUPS


def test_validly_signed_token_over_16_kib_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    token = _token_of_length(issuer, MAX_TOKEN_LENGTH + 1, MANY_GROUPS)
    reject(verifier, token, "malformed")


def test_huge_garbage_token_is_rejected_as_malformed(verifier: CognitoVerifier) -> None:
    reject(verifier, "A" * (10 * 1024 * 1024), "malformed")


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(b"RS256", id="not_json"),
        pytest.param(b'["RS256"]', id="array"),
        pytest.param(b'"RS256"', id="string"),
        pytest.param(b"256", id="number"),
        pytest.param(b"null", id="null"),
        pytest.param(b'{"kid": "KID", "alg": "RS256"', id="truncated"),
        pytest.param(b'{"kid": "KID", "alg": "RS256"}{}', id="trailing_data"),
        pytest.param(b'{"kid": "KID", "alg": "RS256", "x": "\xff"}', id="invalid_utf8"),
        pytest.param(b'{"kid": "KID", "alg": "RS256", "x": NaN}', id="nan"),
        pytest.param(b'{"kid": "KID", "alg": "RS256", "x": Infinity}', id="infinity"),
        pytest.param(b'{"kid": "KID", "alg": "RS256", "x": -Infinity}', id="minus_infinity"),
        pytest.param(b'{"kid": "KID", "alg": "none", "alg": "RS256"}', id="duplicate_alg"),
        pytest.param(b'{"kid": "other", "kid": "KID", "alg": "RS256"}', id="duplicate_kid"),
        pytest.param(
            b'{"kid": "KID", "alg": "RS256", "x": {"a": 1, "a": 2}}', id="nested_duplicate"
        ),
        pytest.param(
            b'{"kid": "KID", "alg": "RS256", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            id="deep_nesting",
        ),
        pytest.param(
            b'{"kid": "KID", "alg": "RS256", "x": ' + b"9" * 5000 + b"}", id="5000_digit_number"
        ),
    ],
)
def test_header_that_is_not_a_plain_json_object_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, header: bytes
) -> None:
    """Signed with the real key: a parser that tolerated the defect would accept it."""
    token = signed(issuer, header.replace(b"KID", issuer.kid.encode()), live_access_claims(issuer))
    reject(verifier, token, "malformed")


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda c: b"not json", id="not_json"),
        pytest.param(lambda c: json.dumps([c]).encode(), id="array"),
        pytest.param(lambda c: json.dumps(json.dumps(c)).encode(), id="string"),
        pytest.param(lambda c: b"null", id="null"),
        pytest.param(lambda c: json.dumps(c).encode()[:-1], id="truncated"),
        pytest.param(lambda c: json.dumps(c).encode() + b"{}", id="trailing_data"),
        pytest.param(lambda c: json.dumps(c).encode()[:-1] + b', "x": "\xff"}', id="invalid_utf8"),
        pytest.param(
            lambda c: json.dumps(c).encode()[:-1] + b', "x": ' + b"[" * 5000 + b"]" * 5000 + b"}",
            id="deep_nesting",
        ),
    ],
)
def test_payload_that_is_not_a_json_object_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, payload: Callable[[dict[str, Any]], bytes]
) -> None:
    token = signed(issuer, header_for(issuer), payload(live_access_claims(issuer)))
    reject(verifier, token, "malformed")


@pytest.mark.parametrize(
    "overrides",
    [
        {"cognito:groups": "admin"},
        {"cognito:groups": ["admin", 7]},
        {"cognito:groups": None},
        {"cognito:roles": "arn:aws:iam::123456789012:role/Admin"},
        {"cognito:preferred_role": ["arn:aws:iam::123456789012:role/Admin"]},
        {"scope": 7},
        {"scope": ["orders/read"]},
        {"sub": None},
        {"sub": 42},
        {"username": 42},
        {"version": "2"},
        {"auth_time": "now"},
        {"jti": 1},
    ],
    ids=[
        "groups_string",
        "groups_with_number",
        "groups_null",
        "roles_string",
        "preferred_role_list",
        "scope_number",
        "scope_list",
        "sub_null",
        "sub_number",
        "username_number",
        "version_string",
        "auth_time_string",
        "jti_number",
    ],
)
def test_claim_of_the_wrong_type_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier, overrides: dict[str, Any]
) -> None:
    token = signed(issuer, header_for(issuer), live_access_claims(issuer, **overrides))
    reject(verifier, token, "malformed")


def test_missing_sub_is_rejected_as_malformed(
    issuer: LocalIssuer, verifier: CognitoVerifier
) -> None:
    reject(
        verifier,
        signed(issuer, header_for(issuer), without(live_access_claims(issuer), "sub")),
        "malformed",
    )


@pytest.mark.parametrize(
    "value", ["yes", "True", 1, ["true"]], ids=["yes", "capitalised", "number", "list"]
)
def test_verified_flag_other_than_boolean_or_true_false_string_is_rejected_as_malformed(
    issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier], value: Any
) -> None:
    token = signed(issuer, header_for(issuer), live_id_claims(issuer, email_verified=value))
    reject(make_verifier(token_use="id"), token, "malformed")


@pytest.mark.parametrize(
    ("token_use", "claim", "value", "field", "expected"),
    [
        ("access", "groups", ["admin"], "groups", []),
        ("access", "roles", ["arn:aws:iam::123456789012:role/Admin"], "roles", []),
        (
            "access",
            "preferred_role",
            "arn:aws:iam::123456789012:role/Admin",
            "preferred_role",
            None,
        ),
        ("id", "groups", ["admin"], "groups", []),
        ("id", "username", "root", "username", None),
    ],
    ids=["access_groups", "access_roles", "access_preferred_role", "id_groups", "id_username"],
)
def test_claim_named_like_a_python_field_is_kept_as_an_extra_claim_not_read_as_a_cognito_claim(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    token_use: str,
    claim: str,
    value: Any,
    field: str,
    expected: Any,
) -> None:
    """Cognito names groups ``cognito:groups``; a plain ``groups`` claim (say, added by a
    pre-token-generation Lambda for another system) must not make its bearer an admin."""
    base = live_access_claims(issuer) if token_use == "access" else live_id_claims(issuer)
    base = without(base, "cognito:username") if claim == "username" else base
    token = signed(issuer, header_for(issuer), {**base, claim: value})
    claims = make_verifier(token_use=token_use).verify_sync(token)
    assert getattr(claims, field) == expected
    assert claims.to_dict()[claim] == value


# == result cache ======================================================================


def test_expired_token_in_the_result_cache_is_rejected_on_the_next_call(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    frozen_clock: Callable[[float], None],
) -> None:
    verifier = make_verifier(result_cache_size=100)
    token = signed(issuer, header_for(issuer), access_claims(issuer, exp=NOW + 60))
    first = verifier.verify_sync(token)
    frozen_clock(NOW + 60 + LEEWAY - 1)
    assert verifier.verify_sync(token) is first, "the cached result serves until exp + leeway"
    frozen_clock(NOW + 60 + LEEWAY)
    reject(verifier, token, "expired")
    reject(verifier, token, "expired")


def test_cached_result_is_dropped_when_its_key_leaves_the_jwks(
    issuer: LocalIssuer, other_issuer: LocalIssuer, make_verifier: Callable[..., CognitoVerifier]
) -> None:
    verifier = make_verifier(result_cache_size=100)
    token = issuer.access_token()
    verifier.verify_sync(token)
    verifier.cache_jwks(other_issuer.jwks())  # a refresh in which the signing key is gone
    reject(verifier, token, "unknown_kid")


def test_cached_result_is_dropped_when_its_kid_is_republished_with_another_key(
    issuer: LocalIssuer,
    make_verifier: Callable[..., CognitoVerifier],
    attacker_key: rsa.RSAPrivateKey,
) -> None:
    verifier = make_verifier(result_cache_size=100)
    token = issuer.access_token()
    verifier.verify_sync(token)
    verifier.cache_jwks({"keys": [public_jwk(attacker_key, issuer.kid)]})
    reject(verifier, token, "bad_signature")
