"""Strict parsing of compact JWS tokens: shape, base64url and the protected header.

No cryptography happens here. Anything that is not exactly a three-segment,
unpadded base64url token with an ``RS256`` header and a string ``kid`` is
rejected with an :class:`~fastapi_cognito_guard.errors.InvalidTokenError`.
"""

from __future__ import annotations

import json
from typing import Any

import pybase64

from .errors import InvalidTokenError

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_TOKEN_LENGTH",
    "Header",
    "ParsedToken",
    "b64url_decode",
    "parse",
    "split",
]

MAX_TOKEN_LENGTH = 16 * 1024
"""Tokens longer than this (in characters) are rejected before any parsing."""

ALLOWED_ALGORITHMS = frozenset({"RS256"})
"""The only ``alg`` accepted: Cognito signs with RS256, and an allow-list of one
shuts out ``none``, the HMAC family and algorithm confusion alike."""

_MAX_CACHED_HEADERS = 512

# base64url without padding: "+", "/" and "=" are refused for the whole token by
# three C searches on the string, then each segment is decoded by one positional
# pybase64 call with the url-safe alphabet (no copy of the segment in Python, no
# keyword parsing), given the padding the decoder needs.
_URLSAFE = b"-_"
_PAD = ("", None, "==", "=")
# With 2 or 3 characters in the last quantum some low bits of the last one are
# unused; a canonical encoding keeps them zero, so each token has one spelling.
_CANONICAL_LAST: tuple[frozenset[str], ...] = (
    frozenset(),  # nothing unused
    frozenset(),  # never valid (no padding makes one character a byte)
    frozenset("AQgw"),
    frozenset("AEIMQUYcgkosw048"),
)


def _standard_characters(text: str) -> bool:
    """Whether ``text`` holds a character of standard base64 that base64url lacks."""
    return "=" in text or "+" in text or "/" in text


def _decode(segment: str) -> bytes:
    """Decode one segment free of "=", "+" and "/", or raise ``malformed``."""
    rest = len(segment) % 4
    pad = _PAD[rest]
    if pad is None or (rest and segment[-1] not in _CANONICAL_LAST[rest]):
        raise InvalidTokenError("malformed", "token segment is not canonical base64url")
    try:
        return pybase64.b64decode(segment + pad, _URLSAFE, True)
    except ValueError:  # binascii.Error, or a character beyond ASCII
        raise InvalidTokenError("malformed", "token segment is not base64url") from None


def b64url_decode(segment: bytes) -> bytes:
    """Decode one unpadded, canonical base64url segment, or raise ``malformed``."""
    try:
        text = segment.decode("ascii")
    except UnicodeDecodeError:
        raise InvalidTokenError("malformed", "token segment is not base64url") from None
    if _standard_characters(text):
        raise InvalidTokenError("malformed", "token segment is not base64url")
    return _decode(text)


class Header:
    """A validated protected header: its algorithm, key id and every field."""

    __slots__ = ("alg", "fields", "kid")

    def __init__(self, alg: str, kid: str, fields: dict[str, Any]) -> None:
        self.alg = alg
        self.kid = kid
        self.fields = fields


class ParsedToken:
    """A token that passed the shape checks; its signature is not yet verified."""

    __slots__ = ("header", "payload", "signature", "signing_input")

    def __init__(self, header: Header, payload: bytes, signing_input: bytes, signature: bytes):
        self.header = header
        self.payload = payload
        self.signing_input = signing_input
        self.signature = signature


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise InvalidTokenError("malformed", "token header repeats a field")
    return result


def _reject_constant(name: str) -> None:
    raise InvalidTokenError("malformed", "token header is not valid JSON")


def _parse_header(segment: str) -> Header:
    try:
        fields = json.loads(
            _decode(segment).decode("utf-8"),  # RFC 7515: UTF-8, no BOM, no UTF-16/32
            object_pairs_hook=_reject_duplicates,
            parse_constant=_reject_constant,
        )
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError
        raise InvalidTokenError("malformed", "token header is not valid JSON") from None
    if not isinstance(fields, dict):
        raise InvalidTokenError("malformed", "token header is not a JSON object")
    alg = fields.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise InvalidTokenError("unsupported_alg", "token algorithm is not RS256")
    kid = fields.get("kid")
    if not isinstance(kid, str) or not kid:
        raise InvalidTokenError("malformed", "token header has no string 'kid'")
    if "crit" in fields:
        raise InvalidTokenError("malformed", "token header has critical extensions")
    return Header(alg, kid, fields)


_headers: dict[str, Header] = {}


def _header(segment: str) -> Header:
    """Validate each distinct header once; a small bounded memo serves the rest.

    Keyed by the segment as sent, so a header seen before costs one dict lookup."""
    header = _headers.get(segment)
    if header is None:
        header = _parse_header(segment)
        if len(_headers) >= _MAX_CACHED_HEADERS:
            _headers.clear()
        _headers[segment] = header
    return header


def split(token: object) -> tuple[Header, bytes, bytes, bytes]:
    """Split and decode a compact JWS, checking everything that needs no key: its
    header, payload, signing input and signature (what ``parse`` wraps; the verifier
    takes the tuple as it is).

    The searches run on the string (C ``memchr``), each segment is decoded by one
    pybase64 call (the header only when it is new), and the signing input is the
    one copy the RSA check needs, so a token near the 16 KiB limit costs little
    more than the hash of its signing input. This runs on every verification the
    result cache does not answer, so ``_decode``'s rules are written out here for
    the payload and the signature rather than called (a call is a tenth of the
    parse; ``_decode`` stays the one reference, and tests hold both to it).
    """
    if type(token) is not str:
        raise InvalidTokenError("malformed", "token is not a string")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidTokenError("malformed", "token is longer than 16 KiB")
    # rpartition, then partition: the two searches stop at the first dot they meet and
    # their pieces are the segments (no further slicing); about half the cost of
    # three finds and four slices.
    signing_text, _, signature = token.rpartition(".")
    head, _, payload = signing_text.partition(".")
    if not head or not payload or not signature:
        raise InvalidTokenError("malformed", "token does not have three non-empty segments")
    if "=" in token or "+" in token or "/" in token:
        raise InvalidTokenError("malformed", "token segment is not base64url")
    header = _headers.get(head) or _header(head)
    payload_rest = len(payload) % 4
    signature_rest = len(signature) % 4
    payload_pad = _PAD[payload_rest]
    signature_pad = _PAD[signature_rest]
    if (
        payload_pad is None
        or signature_pad is None
        or (payload_rest and payload[-1] not in _CANONICAL_LAST[payload_rest])
        or (signature_rest and signature[-1] not in _CANONICAL_LAST[signature_rest])
    ):
        raise _malformed_segment(payload, "token segment is not canonical base64url")
    try:
        signing_input = signing_text.encode("ascii")
        return (
            header,
            pybase64.b64decode(payload + payload_pad, _URLSAFE, True),
            signing_input,
            pybase64.b64decode(signature + signature_pad, _URLSAFE, True),
        )
    except UnicodeEncodeError:
        raise InvalidTokenError("malformed", "token has non-ASCII characters") from None
    except ValueError:  # binascii.Error, or a non-ASCII character in the signature
        raise _malformed_segment(payload, "token segment is not base64url") from None


def _malformed_segment(payload: str, message: str) -> InvalidTokenError:
    """The error for a payload segment the decode refused: a dot in it (more than three
    segments, looked for only once something failed) or ``message``."""
    if "." in payload:
        return InvalidTokenError("malformed", "token does not have three non-empty segments")
    return InvalidTokenError("malformed", message)


def parse(token: object) -> ParsedToken:
    """Split and decode a compact JWS (``split``), as a ``ParsedToken``."""
    return ParsedToken(*split(token))
