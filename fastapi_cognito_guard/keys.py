"""Turning a JWKS into verification keys, and verifying RS256 signatures.

This is the only module that imports python-jose. It hands python-jose nothing
but the public ``kty``/``n``/``e`` members of a JWK, pins the algorithm to
RS256 and insists on the ``cryptography`` backend, so python-jose's known
weaknesses (string keys accepted for HMAC, the pure-Python RSA backend) cannot
be reached. Keys are built once per JWKS fetch.

A signature is checked the way RFC 8017 (section 8.2.2) specifies RSASSA-PKCS1-v1_5
verification: the RSA public operation recovers the encoded message, and it must
equal the encoding of the SHA-256 of the signing input byte for byte. OpenSSL's
recover checks the ``00 01 FF..FF 00`` padding; the comparison fixes the rest
(the DigestInfo naming SHA-256, the digest, and hence the padding's length).
Against ``RSAPublicKey.verify`` this saves OpenSSL's per-call digest fetch and
context set-up (about 2.5 µs of 25 on the benchmark machine: benchmarks/verify.py),
and a signature made by another key fails before the signing input is hashed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from jose import jwk as jose_jwk
from jose.backends import RSAKey as _JoseRSAKey
from jose.backends.cryptography_backend import CryptographyRSAKey
from jose.exceptions import JWKError

__all__ = ["MIN_RSA_BITS", "VerifyingKey", "build_keys", "load_jwk"]

if _JoseRSAKey is not CryptographyRSAKey:  # pragma: no cover - depends on the install
    raise ImportError(
        "python-jose must use its 'cryptography' backend: install python-jose[cryptography]"
    )

MIN_RSA_BITS = 2048
"""RSA keys shorter than this are never used."""

_ALGORITHM = "RS256"
_PKCS1V15 = padding.PKCS1v15()
_SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
"""DER of DigestInfo{sha256, NULL} up to the digest (RFC 8017, section 9.2, note 1)."""
_new_sha256 = hashlib.sha256().copy
"""A copy of a started hash for each check: cheaper than a new hash object, whose
creation looks the digest up in OpenSSL again every time."""

logger = logging.getLogger(__name__)


class VerifyingKey:
    """One RSA public key from a JWKS, ready to check RS256 signatures."""

    __slots__ = ("_public_key", "_recover", "_signature_length", "key_size", "kid", "numbers")

    def __init__(self, kid: str, public_key: rsa.RSAPublicKey) -> None:
        self.kid = kid
        self._public_key = public_key
        self._recover = public_key.recover_data_from_signature
        """Bound once: looking the method up on the key costs 80 ns a verification."""
        self.key_size = public_key.key_size
        self._signature_length = (self.key_size + 7) // 8
        numbers = public_key.public_numbers()
        self.numbers = (numbers.n, numbers.e)

    def verify(self, signing_input: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid RS256 signature of ``signing_input``."""
        if len(signature) != self._signature_length:
            return False
        try:
            recovered = self._recover(signature, _PKCS1V15, None)
        except InvalidSignature:  # not 00 01 FF..FF 00 after the RSA operation
            return False
        # Public values on both sides (anyone can raise a signature to e mod n), so a
        # plain comparison leaks nothing.
        digest = _new_sha256()
        digest.update(signing_input)
        return recovered == _SHA256_DIGEST_INFO + digest.digest()

    def __repr__(self) -> str:
        return f"VerifyingKey(kid={self.kid!r}, key_size={self.key_size})"


def _usable_reason(jwk: Mapping[str, Any]) -> str | None:
    """Why a JWK must not verify RS256 tokens, or None when it may."""
    if jwk.get("kty") != "RSA":
        return "kty is not RSA"
    if jwk.get("use", "sig") != "sig":
        return "use is not sig"
    if jwk.get("alg", _ALGORITHM) != _ALGORITHM:
        return "alg is not RS256"
    ops = jwk.get("key_ops")
    if ops is not None and (not isinstance(ops, list) or "verify" not in ops):
        return "key_ops does not allow verify"
    if not isinstance(jwk.get("n"), str) or not isinstance(jwk.get("e"), str):
        return "n and e are not strings"
    return None


def load_jwk(kid: str, jwk: Mapping[str, Any]) -> VerifyingKey | str:
    """Build one JWK into a verification key, or return why it must not be used."""
    reason = _usable_reason(jwk)
    if reason is not None:
        return reason
    public_members = {"kty": "RSA", "n": jwk["n"], "e": jwk["e"]}
    try:
        jose_key = jose_jwk.construct(public_members, algorithm=_ALGORITHM)
    except (JWKError, ValueError, TypeError) as exc:
        return f"not a valid RSA public key ({type(exc).__name__})"
    prepared = getattr(jose_key, "prepared_key", None)
    if not isinstance(jose_key, CryptographyRSAKey) or not isinstance(prepared, rsa.RSAPublicKey):
        return "not an RSA public key"
    if prepared.key_size < MIN_RSA_BITS:
        return f"RSA key is shorter than {MIN_RSA_BITS} bits"
    return VerifyingKey(kid, prepared)


def build_keys(jwks: Mapping[str, Any]) -> dict[str, VerifyingKey]:
    """Build every usable key of a JWKS document, by ``kid``.

    Keys that are not RS256 signing keys of at least 2048 bits are skipped, and
    so is a ``kid`` that appears twice (which of the two is meant is unknowable).
    Raises ``ValueError`` when the document has no ``keys`` list.
    """
    entries = jwks.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS has no 'keys' list")
    keys: dict[str, VerifyingKey] = {}
    seen: set[str] = set()
    ambiguous: set[str] = set()
    for jwk in entries:
        if not isinstance(jwk, dict) or not isinstance(jwk.get("kid"), str):
            continue
        kid = jwk["kid"]
        if kid in seen:
            ambiguous.add(kid)
            keys.pop(kid, None)
            continue
        seen.add(kid)
        key = load_jwk(kid, jwk)
        if isinstance(key, VerifyingKey):
            keys[kid] = key
        else:
            logger.warning("ignoring JWKS key kid=%r: %s", kid, key)
    if ambiguous:
        logger.warning("ignoring JWKS keys with duplicate kids: %s", sorted(ambiguous))
    return keys
