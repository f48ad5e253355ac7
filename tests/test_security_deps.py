"""Specification of SECURITY.md's python-jose section: the code paths scanners flag never run.

A fresh interpreter loads every module of the package and verifies a real token while
imports of ``ecdsa``, ``rsa``, ``pyasn1`` and python-jose's non-``cryptography``
backends, JWS/JWT and JWE modules are refused and recorded. The library must work
without them, never try to load them, and python-jose must resolve each of its key
types to the ``cryptography`` backend.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROBE = """
import importlib, importlib.abc, json, pkgutil, sys

REFUSED_PACKAGES = {"ecdsa", "rsa", "pyasn1"}
REFUSED_MODULES = {
    "jose.backends.ecdsa_backend", "jose.backends.rsa_backend", "jose.backends._asn1",
    "jose.jwe", "jose.jws", "jose.jwt",
}
attempts = []


class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED_PACKAGES or name in REFUSED_MODULES:
            attempts.append(name)
            raise ImportError(f"refused by the test: {name}")
        return None


sys.meta_path.insert(0, Refuse())

import fastapi_cognito_guard as package
from fastapi_cognito_guard import CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer

for module in pkgutil.iter_modules(package.__path__):
    if module.name != "__main__":
        importlib.import_module(f"fastapi_cognito_guard.{module.name}")

issuer = LocalIssuer()
verifier = CognitoVerifier(issuer.settings())
verifier.cache_jwks(issuer.jwks())
claims = verifier.verify_sync(issuer.access_token(username="alice"))
EXTRA

import jose.backends as backends
from jose.backends import cryptography_backend as crypto

print(json.dumps({
    "username": claims.username,
    "attempts": attempts,
    "loaded": sorted(m for m in sys.modules if m.split(".")[0] in REFUSED_PACKAGES),
    "backends": {
        "RSAKey": backends.RSAKey is crypto.CryptographyRSAKey,
        "ECKey": backends.ECKey is crypto.CryptographyECKey,
        "HMACKey": backends.HMACKey is crypto.CryptographyHMACKey,
    },
}))
"""


def probe(extra: str = "") -> dict[str, object]:
    """Run the probe in a fresh interpreter; ``extra`` runs after the verification."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE.replace("EXTRA", extra)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    found: dict[str, object] = json.loads(result.stdout.splitlines()[-1])
    return found


@pytest.fixture(scope="module")
def verified() -> dict[str, object]:
    return probe()


def test_verifying_a_token_never_imports_ecdsa_rsa_pyasn1_or_jose_beyond_jwk(
    verified: dict[str, object],
) -> None:
    assert verified["username"] == "alice"
    assert verified["attempts"] == []
    assert verified["loaded"] == []


def test_python_jose_resolves_every_key_type_to_the_cryptography_backend(
    verified: dict[str, object],
) -> None:
    assert verified["backends"] == {"RSAKey": True, "ECKey": True, "HMACKey": True}


def test_the_probe_notices_an_import_of_ecdsa() -> None:
    # The refusal is what the two tests above rely on: an import of ecdsa is recorded.
    found = probe("\ntry:\n    import ecdsa\nexcept ImportError:\n    pass\n")

    assert found["attempts"] == ["ecdsa"]
