"""Specification of the compact-JWS parser on its own (``jwt.py``, DESIGN.md §4).

Proves the parser's own contract, without a verifier or a key: a Cognito token
splits into its validated header (``alg``, ``kid``, every field), its payload
bytes, its signing input (exactly the first two segments, as sent) and its
signature bytes; no cryptography happens here; each distinct header is
validated once and the header memo stays bounded; ``b64url_decode`` accepts
exactly the canonical, unpadded base64url spelling of each byte string; and
``MAX_TOKEN_LENGTH`` is an inclusive limit. The catalogue of hostile tokens and
the error code each earns through a verifier lives in ``test_security.py``.
"""

from __future__ import annotations

import base64
import json
import string
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from fastapi_cognito_guard import InvalidTokenError
from fastapi_cognito_guard import jwt as jwt_module
from fastapi_cognito_guard.jwt import (
    ALLOWED_ALGORITHMS,
    MAX_TOKEN_LENGTH,
    Header,
    ParsedToken,
    b64url_decode,
    parse,
)
from fastapi_cognito_guard.testing import LocalIssuer

B64URL_ALPHABET = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact(header: dict[str, Any], payload: bytes = b'{"sub":"x"}', sig: bytes = b"\0" * 256):
    """An unsigned compact JWS with exactly these parts (the parser checks no signature)."""
    return f"{b64url(json.dumps(header).encode())}.{b64url(payload)}.{b64url(sig)}"


def malformed(call: Callable[[], object]) -> InvalidTokenError:
    with pytest.raises(InvalidTokenError) as caught:
        call()
    assert caught.value.code == "malformed"
    return caught.value


@pytest.fixture
def counted_header_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """An empty header memo, and the segments ``_parse_header`` is called with."""
    calls: list[str] = []
    real = jwt_module._parse_header

    def counting(segment: str) -> Header:
        calls.append(segment)
        return real(segment)

    monkeypatch.setattr(jwt_module, "_headers", {})
    monkeypatch.setattr(jwt_module, "_parse_header", counting)
    return calls


# -- what a parsed token holds -------------------------------------------------------


def test_cognito_token_parses_into_header_payload_signing_input_and_signature(
    issuer: LocalIssuer,
) -> None:
    token = issuer.access_token("alice", groups=["premium"])
    header_b64, payload_b64, signature_b64 = token.split(".")

    parsed = parse(token)

    assert isinstance(parsed, ParsedToken)
    assert parsed.header.alg == "RS256"
    assert parsed.header.kid == issuer.kid
    assert parsed.header.fields == {"kid": issuer.kid, "alg": "RS256"}
    assert parsed.payload == base64.urlsafe_b64decode(payload_b64 + "==")
    assert json.loads(parsed.payload)["cognito:groups"] == ["premium"]
    assert parsed.signing_input == f"{header_b64}.{payload_b64}".encode("ascii")
    assert parsed.signature == base64.urlsafe_b64decode(signature_b64 + "==")
    assert len(parsed.signature) == 256


def test_signing_input_and_signature_are_what_the_issuer_signed(issuer: LocalIssuer) -> None:
    parsed = parse(issuer.id_token())

    issuer._keys[-1].private_key.public_key().verify(
        parsed.signature, parsed.signing_input, padding.PKCS1v15(), hashes.SHA256()
    )


def test_signing_input_is_the_first_two_segments_exactly_as_sent() -> None:
    # A header whose JSON has odd spacing and key order: nothing is re-encoded.
    header = b64url(b'{ "alg" :"RS256",\n"kid":"k" }')
    payload = b64url(b'{"sub" : "x"}')
    token = f"{header}.{payload}.{b64url(b'sig')}"

    parsed = parse(token)

    assert parsed.signing_input == f"{header}.{payload}".encode("ascii")
    assert parsed.payload == b'{"sub" : "x"}'
    assert parsed.signature == b"sig"


def test_header_keeps_every_field(issuer: LocalIssuer) -> None:
    header = {"kid": issuer.kid, "alg": "RS256", "typ": "JWT", "x-extra": [1, {"a": None}]}

    parsed = parse(issuer.sign({"sub": "x"}, header=header))

    assert parsed.header.fields == header


def test_payload_is_returned_as_bytes_without_being_interpreted() -> None:
    # The parser does not read claims: any bytes are a payload here.
    parsed = parse(compact({"alg": "RS256", "kid": "k"}, payload=b"\xff\x00not json"))

    assert parsed.payload == b"\xff\x00not json"


def test_parser_checks_no_signature() -> None:
    parsed = parse(compact({"alg": "RS256", "kid": "k"}, sig=b"\x01"))

    assert parsed.signature == b"\x01"


def test_only_rs256_is_allowed() -> None:
    assert frozenset({"RS256"}) == ALLOWED_ALGORITHMS


# -- the header memo -----------------------------------------------------------------


def test_each_distinct_header_is_validated_once(
    issuer: LocalIssuer, counted_header_parses: list[str]
) -> None:
    token = issuer.sign({"sub": "x"}, header={"kid": "memo-once", "alg": "RS256"})

    for _ in range(100):
        assert parse(token).header.kid == "memo-once"

    assert len(counted_header_parses) == 1


def test_tokens_sharing_a_header_share_its_validation(
    issuer: LocalIssuer, counted_header_parses: list[str]
) -> None:
    tokens = [issuer.access_token(f"user{i}") for i in range(5)]

    for token in tokens:
        parse(token)

    assert len(counted_header_parses) == 1


def test_different_headers_are_each_validated(counted_header_parses: list[str]) -> None:
    parse(compact({"alg": "RS256", "kid": "one"}))
    parse(compact({"alg": "RS256", "kid": "two"}))
    parse(compact({"alg": "RS256", "kid": "one"}))

    assert len(counted_header_parses) == 2


def test_rejected_header_is_not_memoised_and_is_rejected_every_time(
    counted_header_parses: list[str],
) -> None:
    token = compact({"alg": "HS256", "kid": "k"})

    for _ in range(3):
        with pytest.raises(InvalidTokenError) as caught:
            parse(token)
        assert caught.value.code == "unsupported_alg"

    assert len(counted_header_parses) == 3
    assert jwt_module._headers == {}


def test_header_memo_stays_bounded_under_many_distinct_headers(
    counted_header_parses: list[str],
) -> None:
    limit = jwt_module._MAX_CACHED_HEADERS
    largest = 0

    for i in range(5000):
        assert parse(compact({"alg": "RS256", "kid": f"k{i}"})).header.kid == f"k{i}"
        largest = max(largest, len(jwt_module._headers))

    assert len(counted_header_parses) == 5000
    assert 0 < largest <= limit


def test_header_still_validates_correctly_after_the_memo_overflows(
    counted_header_parses: list[str],
) -> None:
    for i in range(jwt_module._MAX_CACHED_HEADERS + 1):
        parse(compact({"alg": "RS256", "kid": f"k{i}"}))

    assert parse(compact({"alg": "RS256", "kid": "k0"})).header.kid == "k0"
    malformed(lambda: parse(compact({"alg": "RS256", "kid": ""})))


# -- canonical base64url ---------------------------------------------------------------


@pytest.mark.parametrize("length", range(0, 40))
def test_b64url_decode_inverts_unpadded_base64url(length: int) -> None:
    data = bytes((i * 37 + 251) % 256 for i in range(length))

    assert b64url_decode(b64url(data).encode("ascii")) == data


def test_two_character_final_quantum_with_zero_low_bits_decodes() -> None:
    assert b64url_decode(b"QQ") == b"A"


def test_two_character_final_quantum_with_nonzero_low_bits_is_malformed() -> None:
    malformed(lambda: b64url_decode(b"QR"))


def test_exactly_one_spelling_of_each_two_character_final_quantum_is_accepted() -> None:
    accepted = []
    for char in B64URL_ALPHABET:
        try:
            b64url_decode(f"Q{char}".encode())
        except InvalidTokenError:
            continue
        accepted.append(char)

    assert accepted == ["A", "Q", "g", "w"]  # the four values of the two used bits


def test_exactly_one_spelling_of_each_three_character_final_quantum_is_accepted() -> None:
    accepted = []
    for char in B64URL_ALPHABET:
        try:
            b64url_decode(f"QU{char}".encode())
        except InvalidTokenError:
            continue
        accepted.append(char)

    assert len(accepted) == 16  # the sixteen values of the four used bits
    assert b64url_decode(b"QUI") == b"AB"


@pytest.mark.parametrize("segment", [b"Q", b"QUJDR", b"QUJDRUZHS"], ids=repr)
def test_length_of_one_more_than_a_multiple_of_four_is_malformed(segment: bytes) -> None:
    malformed(lambda: b64url_decode(segment))


@pytest.mark.parametrize(
    "segment",
    [b"QQ==", b"QUI=", b"QQ=", b"QUJD+A", b"QUJD/A", b"++++", b"////", b"+/8", b"===="],
    ids=repr,
)
def test_standard_alphabet_and_padding_characters_are_malformed(segment: bytes) -> None:
    malformed(lambda: b64url_decode(segment))


def test_url_safe_characters_decode() -> None:
    assert b64url_decode(b"-_8") == b"\xfb\xff"


@pytest.mark.parametrize(
    "segment", [b"QU JD", b"QUJD\n", b"\tQUJD", b"QU.D", b"QU*D", b"QU\x00D"], ids=repr
)
def test_characters_outside_the_alphabet_are_malformed(segment: bytes) -> None:
    malformed(lambda: b64url_decode(segment))


@pytest.mark.parametrize("where", [0, 1, 2], ids=["header", "payload", "signature"])
def test_parse_rejects_a_segment_one_longer_than_a_multiple_of_four(where: int) -> None:
    segments = compact({"alg": "RS256", "kid": "k"}).split(".")
    segments[where] += "A" * ((1 - len(segments[where])) % 4)
    assert len(segments[where]) % 4 == 1

    malformed(lambda: parse(".".join(segments)))


@pytest.mark.parametrize("where", [0, 1, 2], ids=["header", "payload", "signature"])
def test_parse_rejects_a_padded_segment_of_a_multiple_of_four(where: int) -> None:
    """Base64 decoders take ``xxx=`` as padding: its unpadded twin is the one spelling."""
    segments = compact({"alg": "RS256", "kid": "k"}, b'{"sub":"x"}', b"\0" * 257).split(".")
    segments[where] += "=" * ((-len(segments[where])) % 4)
    assert len(segments[where]) % 4 == 0
    assert segments[where].endswith("=")

    malformed(lambda: parse(".".join(segments)))


@pytest.mark.parametrize("extra", [".", ".e30", "..", ".e30.e30"], ids=repr)
def test_parse_rejects_more_than_three_segments(extra: str) -> None:
    token = compact({"alg": "RS256", "kid": "k"})
    middle = token.index(".", token.index(".") + 1)

    error = malformed(lambda: parse(token[:middle] + extra + token[middle:]))
    assert "three non-empty segments" in error.message


@pytest.mark.parametrize("where", [0, 1, 2], ids=["header", "payload", "signature"])
@pytest.mark.parametrize("char", ["+", "/", "=", "é", "\u20ac", " "])
def test_parse_rejects_a_character_base64url_lacks_in_any_segment(where: int, char: str) -> None:
    segments = compact({"alg": "RS256", "kid": "k"}).split(".")
    segments[where] = segments[where][:8] + char + segments[where][9:]

    malformed(lambda: parse(".".join(segments)))


# -- the length limit ----------------------------------------------------------------


def token_of_length(total: int) -> str:
    """A well-formed token (RS256 header, JSON payload) of exactly ``total`` characters."""
    header = b64url(json.dumps({"kid": "len", "alg": "RS256"}).encode())
    for signature_bytes in (256, 255, 257):
        signature = b64url(b"\x01" * signature_bytes)
        payload_chars = total - len(header) - len(signature) - 2
        if payload_chars % 4 != 1:
            break
    payload_bytes = payload_chars * 3 // 4
    filler = payload_bytes - len(b'{"pad":""}')
    payload = b64url(b'{"pad":"' + b"x" * filler + b'"}')
    token = f"{header}.{payload}.{signature}"
    assert len(token) == total
    return token


def test_max_token_length_is_16_kib() -> None:
    assert MAX_TOKEN_LENGTH == 16 * 1024


@pytest.mark.parametrize("delta", [0, -1, -2, -3])
def test_token_at_or_under_the_length_limit_parses(delta: int) -> None:
    parsed = parse(token_of_length(MAX_TOKEN_LENGTH + delta))

    assert parsed.header.kid == "len"
    assert json.loads(parsed.payload)["pad"].startswith("xxx")


@pytest.mark.parametrize("delta", [1, 2, 3, 4])
def test_token_over_the_length_limit_is_malformed(delta: int) -> None:
    token = token_of_length(MAX_TOKEN_LENGTH + delta)

    err = malformed(lambda: parse(token))

    assert "16 KiB" in err.message


def test_length_is_checked_before_the_header_is_read(counted_header_parses: list[str]) -> None:
    malformed(lambda: parse(token_of_length(MAX_TOKEN_LENGTH + 1)))

    assert counted_header_parses == []
