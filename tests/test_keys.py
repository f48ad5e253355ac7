"""Specification of ``keys.py``: JWK -> verification key, and RS256 verification.

Proves that ``load_jwk`` builds a usable RS256 JWK into a ``VerifyingKey`` (its
size and public numbers exposed, only its public members used, so private
members in a JWK can never yield a private key) and returns the reason, as a
string, for every JWK it must not use; that ``VerifyingKey.verify`` answers
True or False and never raises; that ``build_keys`` needs a ``keys`` list,
skips malformed entries, drops a duplicated ``kid`` entirely and logs what it
ignores; that python-jose runs on its ``cryptography`` backend; and that no
other module of the package imports python-jose.
"""

from __future__ import annotations

import ast
import hashlib
import logging
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import fastapi_cognito_guard
from fastapi_cognito_guard.keys import MIN_RSA_BITS, VerifyingKey, build_keys, load_jwk
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import b64url_uint, public_jwk

LOGGER = "fastapi_cognito_guard"
MESSAGE = b"eyJraWQiOiJrIiwiYWxnIjoiUlMyNTYifQ.eyJzdWIiOiJ4In0"


def sign(key: rsa.RSAPrivateKey, data: bytes = MESSAGE) -> bytes:
    return key.sign(data, padding.PKCS1v15(), hashes.SHA256())


@pytest.fixture(scope="module")
def key(issuer: LocalIssuer) -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key (the session issuer's, to save generating one)."""
    return issuer._keys[-1].private_key


@pytest.fixture(scope="module")
def other_key(other_issuer: LocalIssuer) -> rsa.RSAPrivateKey:
    """Another 2048-bit RSA key (the second session issuer's)."""
    return other_issuer._keys[-1].private_key


@pytest.fixture(scope="module")
def short_key() -> rsa.RSAPrivateKey:
    """A key too short to trust: what load_jwk must refuse."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505


@pytest.fixture
def verifying_key(key: rsa.RSAPrivateKey) -> VerifyingKey:
    built = load_jwk("k1", public_jwk(key))
    assert isinstance(built, VerifyingKey)
    return built


# -- load_jwk and VerifyingKey -------------------------------------------------------


def test_good_rs256_jwk_builds_a_verifying_key(key: rsa.RSAPrivateKey) -> None:
    built = load_jwk("k1", public_jwk(key))

    assert isinstance(built, VerifyingKey)
    assert built.kid == "k1"
    assert built.key_size == 2048


def test_built_key_exposes_the_jwks_public_numbers(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey
) -> None:
    numbers = key.public_key().public_numbers()

    assert verifying_key.numbers == (numbers.n, numbers.e)


def test_jwk_without_use_or_alg_builds(key: rsa.RSAPrivateKey) -> None:
    assert isinstance(load_jwk("k1", public_jwk(key, use=None, alg=None)), VerifyingKey)


def test_jwk_whose_key_ops_allow_verify_builds(key: rsa.RSAPrivateKey) -> None:
    assert isinstance(load_jwk("k1", public_jwk(key, key_ops=["verify"])), VerifyingKey)


def test_verify_accepts_a_good_signature(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey
) -> None:
    assert verifying_key.verify(MESSAGE, sign(key)) is True


@pytest.mark.parametrize(
    "mangle",
    [
        lambda sig: sig[:-1],
        lambda sig: sig + b"\x00",
        lambda sig: b"\x00" + sig,
        lambda sig: b"",
        lambda sig: b"\x00" * 2048,
    ],
    ids=["one-short", "one-long", "zero-prefixed", "empty", "huge"],
)
def test_verify_is_false_for_a_signature_of_the_wrong_length(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey, mangle: Any
) -> None:
    assert verifying_key.verify(MESSAGE, mangle(sign(key))) is False


@pytest.mark.parametrize("index", [0, 127, 255])
def test_verify_is_false_for_a_tampered_signature(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey, index: int
) -> None:
    signature = bytearray(sign(key))
    signature[index] ^= 0x01

    assert verifying_key.verify(MESSAGE, bytes(signature)) is False


def test_verify_is_false_for_a_signature_of_other_input(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey
) -> None:
    assert verifying_key.verify(MESSAGE + b"x", sign(key)) is False


def test_verify_is_false_for_a_signature_of_all_ones_beyond_the_modulus(
    verifying_key: VerifyingKey,
) -> None:
    assert verifying_key.verify(MESSAGE, b"\xff" * 256) is False


def test_verify_is_false_for_a_signature_by_another_key(
    other_key: rsa.RSAPrivateKey, verifying_key: VerifyingKey
) -> None:
    assert verifying_key.verify(MESSAGE, sign(other_key)) is False


# -- the encoded message, built by hand (RFC 8017, 9.2) and signed with the raw RSA
# operation, so each rule of the encode-and-compare check is tried on its own.

SHA256_INFO = bytes.fromhex("3031300d060960864801650304020105000420")
SHA1_INFO = bytes.fromhex("3021300906052b0e03021a05000414")
SHA1_DIGEST = hashlib.sha1(MESSAGE).digest()  # noqa: S324 - the point is that it is refused
SHA512_INFO = bytes.fromhex("3051300d060960864801650304020305000440")
SHA512_DIGEST = hashlib.sha512(MESSAGE).digest()


def raw_sign(key: rsa.RSAPrivateKey, encoded: bytes) -> bytes:
    """The RSA private operation on ``encoded`` (256 bytes), no padding added."""
    numbers = key.private_numbers()
    value = pow(int.from_bytes(encoded, "big"), numbers.d, numbers.public_numbers.n)
    return value.to_bytes(256, "big")


def encoded(tail: bytes, *, block_type: bytes = b"\x01", fill: int = 0xFF) -> bytes:
    """00 || block type || padding || 00 || tail, 256 bytes long."""
    return b"\x00" + block_type + bytes([fill]) * (256 - 3 - len(tail)) + b"\x00" + tail


def test_verify_accepts_the_encoding_built_by_hand(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey
) -> None:
    message = encoded(SHA256_INFO + hashlib.sha256(MESSAGE).digest())

    assert verifying_key.verify(MESSAGE, raw_sign(key, message)) is True


@pytest.mark.parametrize(
    "tail",
    [
        pytest.param(lambda digest: digest, id="digest-without-digest-info"),
        pytest.param(lambda digest: SHA1_INFO + SHA1_DIGEST, id="sha1-digest-info"),
        pytest.param(lambda digest: SHA512_INFO + SHA512_DIGEST, id="sha512-digest-info"),
        pytest.param(lambda digest: SHA256_INFO + digest + b"\x00" * 4, id="garbage-after-digest"),
        pytest.param(lambda digest: SHA256_INFO[:-1] + b"\x21" + digest + b"!", id="longer-digest"),
        pytest.param(lambda digest: SHA256_INFO + digest[:-1], id="digest-one-short"),
    ],
)
def test_verify_is_false_for_any_other_encoded_message(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey, tail: Any
) -> None:
    message = encoded(tail(hashlib.sha256(MESSAGE).digest()))

    assert verifying_key.verify(MESSAGE, raw_sign(key, message)) is False


@pytest.mark.parametrize(
    ("block_type", "fill"),
    [(b"\x02", 0xFF), (b"\x00", 0xFF), (b"\x01", 0xFE), (b"\x01", 0x00)],
    ids=["encryption-block", "block-type-0", "padding-not-ff", "padding-zero"],
)
def test_verify_is_false_for_a_padding_other_than_block_type_1_of_ff(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey, block_type: bytes, fill: int
) -> None:
    digest = hashlib.sha256(MESSAGE).digest()
    message = encoded(SHA256_INFO + digest, block_type=block_type, fill=fill)

    assert verifying_key.verify(MESSAGE, raw_sign(key, message)) is False


def test_verify_is_false_for_a_pss_signature(
    key: rsa.RSAPrivateKey, verifying_key: VerifyingKey
) -> None:
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)

    assert verifying_key.verify(MESSAGE, key.sign(MESSAGE, pss, hashes.SHA256())) is False


@pytest.mark.parametrize("value", [0, 1], ids=["zero", "one"])
def test_verify_is_false_for_a_signature_of_zero_or_one(
    verifying_key: VerifyingKey, value: int
) -> None:
    assert verifying_key.verify(MESSAGE, value.to_bytes(256, "big")) is False


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"kty": "EC"}, "kty"),
        ({"kty": "oct"}, "kty"),
        ({"kty": None}, "kty"),
        ({"kty": "rsa"}, "kty"),
        ({"use": "enc"}, "use"),
        ({"alg": "RS512"}, "alg"),
        ({"alg": "HS256"}, "alg"),
        ({"alg": "none"}, "alg"),
        ({"key_ops": ["sign"]}, "key_ops"),
        ({"key_ops": []}, "key_ops"),
        ({"key_ops": "verify"}, "key_ops"),
        ({"n": 12345}, "n and e"),
        ({"n": None}, "n and e"),
        ({"e": 65537}, "n and e"),
        ({"e": ["AQAB"]}, "n and e"),
        ({"n": "!!!!"}, "not a valid RSA public key"),
        ({"n": "not base64!"}, "not a valid RSA public key"),
        ({"n": "ñ"}, "not a valid RSA public key"),
    ],
    ids=repr,
)
def test_unusable_jwk_gives_its_reason_as_a_string(
    key: rsa.RSAPrivateKey, overrides: dict[str, Any], reason: str
) -> None:
    result = load_jwk("k1", public_jwk(key, **overrides))

    assert isinstance(result, str)
    assert reason in result


def test_rsa_key_shorter_than_2048_bits_gives_its_reason(short_key: rsa.RSAPrivateKey) -> None:
    result = load_jwk("k1", public_jwk(short_key))

    assert isinstance(result, str)
    assert str(MIN_RSA_BITS) in result


def test_private_members_of_a_jwk_are_ignored_and_the_key_is_public(
    key: rsa.RSAPrivateKey,
) -> None:
    private = key.private_numbers()
    jwk = public_jwk(
        key,
        d=b64url_uint(private.d),
        p=b64url_uint(private.p),
        q=b64url_uint(private.q),
        dp=b64url_uint(private.dmp1),
        dq=b64url_uint(private.dmq1),
        qi=b64url_uint(private.iqmp),
    )

    built = load_jwk("k1", jwk)

    assert isinstance(built, VerifyingKey)
    assert isinstance(built._public_key, rsa.RSAPublicKey)
    assert not isinstance(built._public_key, rsa.RSAPrivateKey)
    assert built.verify(MESSAGE, sign(key)) is True


def test_garbage_private_members_do_not_stop_a_jwk_from_building(key: rsa.RSAPrivateKey) -> None:
    built = load_jwk("k1", public_jwk(key, d="!!", p=1, q=None, oth=[{"r": "x"}]))

    assert isinstance(built, VerifyingKey)
    assert isinstance(built._public_key, rsa.RSAPublicKey)


# -- build_keys --------------------------------------------------------------------


@pytest.mark.parametrize(
    "document", [{}, {"keys": None}, {"keys": {}}, {"keys": "[]"}, {"jwks": []}], ids=repr
)
def test_build_keys_needs_a_keys_list(document: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="keys"):
        build_keys(document)


def test_build_keys_of_an_empty_list_is_empty() -> None:
    assert build_keys({"keys": []}) == {}


def test_build_keys_builds_every_usable_key_by_kid(
    key: rsa.RSAPrivateKey, short_key: rsa.RSAPrivateKey
) -> None:
    keys = build_keys(
        {"keys": [public_jwk(key, "a"), public_jwk(short_key, "b"), public_jwk(key, "c")]}
    )

    assert sorted(keys) == ["a", "c"]
    assert all(isinstance(built, VerifyingKey) for built in keys.values())
    assert keys["a"].kid == "a"


def test_build_keys_skips_entries_that_are_not_objects(key: rsa.RSAPrivateKey) -> None:
    keys = build_keys({"keys": ["k1", 1, None, [public_jwk(key)], public_jwk(key, "good")]})

    assert list(keys) == ["good"]


@pytest.mark.parametrize("kid", [None, 1, ["k"], {"k": 1}], ids=repr)
def test_build_keys_skips_entries_without_a_string_kid(key: rsa.RSAPrivateKey, kid: Any) -> None:
    jwk = public_jwk(key, "placeholder")
    if kid is None:
        del jwk["kid"]
    else:
        jwk["kid"] = kid

    assert list(build_keys({"keys": [jwk, public_jwk(key, "good")]})) == ["good"]


def test_build_keys_drops_a_duplicated_kid_entirely(
    key: rsa.RSAPrivateKey, other_key: rsa.RSAPrivateKey
) -> None:
    keys = build_keys(
        {"keys": [public_jwk(key, "dup"), public_jwk(key, "good"), public_jwk(other_key, "dup")]}
    )

    assert list(keys) == ["good"]


def test_build_keys_drops_a_kid_repeated_with_the_same_key(key: rsa.RSAPrivateKey) -> None:
    assert build_keys({"keys": [public_jwk(key, "dup"), public_jwk(key, "dup")]}) == {}


def test_build_keys_drops_a_duplicated_kid_even_when_the_first_copy_was_unusable(
    key: rsa.RSAPrivateKey,
) -> None:
    keys = build_keys({"keys": [public_jwk(key, "dup", use="enc"), public_jwk(key, "dup")]})

    assert keys == {}


def test_build_keys_logs_a_warning_for_an_unusable_key(
    key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        keys = build_keys({"keys": [public_jwk(key, "enc-key", use="enc"), public_jwk(key)]})

    assert list(keys) == ["k1"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "enc-key" in warnings[0].getMessage()
    assert "use is not sig" in warnings[0].getMessage()


def test_build_keys_logs_a_warning_for_a_duplicated_kid(
    key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOGGER):
        build_keys({"keys": [public_jwk(key, "dup"), public_jwk(key, "dup")]})

    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("dup" in message and "duplicate" in message for message in messages)


def test_build_keys_survives_a_document_of_nothing_but_bad_entries(
    key: rsa.RSAPrivateKey, short_key: rsa.RSAPrivateKey, caplog: pytest.LogCaptureFixture
) -> None:
    entries: list[Any] = [
        None,
        "x",
        {"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
        {"kid": "empty"},
        {"kid": "nums", "kty": "RSA", "n": 1, "e": 2},
        {"kid": "garbage", "kty": "RSA", "n": "!!!!", "e": "!!"},
        public_jwk(short_key, "short"),
        public_jwk(key, "twice"),
        public_jwk(key, "twice"),
    ]

    with caplog.at_level(logging.WARNING, logger=LOGGER):
        assert build_keys({"keys": entries}) == {}

    logged = " ".join(r.getMessage() for r in caplog.records)
    for kid in ("ec", "empty", "nums", "garbage", "short", "twice"):
        assert repr(kid) in logged


# -- the python-jose boundary --------------------------------------------------------


def test_python_jose_uses_its_cryptography_backend() -> None:
    from jose.backends import RSAKey
    from jose.backends.cryptography_backend import CryptographyRSAKey

    assert RSAKey is CryptographyRSAKey


def _imported_modules(source: str) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules.add(node.module)
    return modules


def test_no_module_but_keys_imports_python_jose() -> None:
    package = Path(fastapi_cognito_guard.__file__).parent
    importers = sorted(
        path.name
        for path in package.glob("*.py")
        if any(
            name == "jose" or name.startswith("jose.")
            for name in _imported_modules(path.read_text(encoding="utf-8"))
        )
    )

    assert importers == ["keys.py"]
