"""Authenticated encryption of small secrets: session cookies, credentials at rest.

Keys come from ``COGNITO_SESSION_SECRET`` through HKDF-SHA256, one key per
purpose (cookies and Redis entries never share a key). The first secret seals,
every secret opens, so keys rotate without signing anyone out. Sealed values
are AES-256-GCM (the AEAD of JWE's ``A256GCM``) as compact base64url text with
a version byte; anything that does not open is ``None``, never an exception.
"""

from __future__ import annotations

import binascii
import os
from collections.abc import Sequence

import pybase64
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = ["Sealer"]

_VERSION = b"\x01"
_NONCE_BYTES = 12
_SALT = b"fastapi-cognito-guard"


def _derive(secret: str, purpose: str) -> AESGCM:
    key = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=_SALT, info=purpose.encode("utf-8")
    ).derive(secret.encode("utf-8"))
    return AESGCM(key)


class Sealer:
    """Seals and opens byte strings for one ``purpose`` with rotating secrets."""

    __slots__ = ("_keys",)

    def __init__(self, secrets: Sequence[str], purpose: str) -> None:
        if not secrets:
            raise ValueError("a Sealer needs at least one secret")
        self._keys = [_derive(secret, purpose) for secret in secrets]

    def __repr__(self) -> str:
        return f"Sealer(keys={len(self._keys)})"

    def seal(self, plaintext: bytes, associated: bytes = b"") -> str:
        """Encrypt and authenticate with the first key; ``associated`` is bound, not stored."""
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._keys[0].encrypt(nonce, plaintext, _VERSION + associated)
        return pybase64.urlsafe_b64encode(_VERSION + nonce + sealed).decode("ascii").rstrip("=")

    def open(self, sealed: str, associated: bytes = b"") -> bytes | None:
        """The plaintext, or None when ``sealed`` is damaged, foreign or tampered with."""
        try:
            raw = pybase64.urlsafe_b64decode(sealed + "=" * (-len(sealed) % 4))
        except (binascii.Error, ValueError):
            return None
        if len(raw) < 1 + _NONCE_BYTES + 16 or raw[:1] != _VERSION:
            return None
        nonce, body = raw[1 : 1 + _NONCE_BYTES], raw[1 + _NONCE_BYTES :]
        for key in self._keys:
            try:
                return key.decrypt(nonce, body, _VERSION + associated)
            except InvalidTag:
                continue
        return None
