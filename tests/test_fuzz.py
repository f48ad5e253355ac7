"""Property tests: whatever arrives, ``verify_sync`` answers with ``InvalidTokenError``
or with the claims of a token the issuer really issued, and nothing else.

- arbitrary text, and arbitrary bytes decoded every which way, never verify and
  never escape as any other exception;
- mutations of real tokens (characters flipped, inserted or deleted, segments
  swapped or spliced between tokens, header or payload re-encoded with extra
  fields) are rejected unless the mutation left the token byte-identical to an
  issued one: nothing that was not issued is ever accepted;
- random JSON headers and payloads, combined with a genuine signature, are
  rejected with one of the documented codes;
- random payloads (JSON or arbitrary bytes) that the issuer really signed reach the
  claim rules: they verify with every named claim well typed, or are rejected with
  a documented code.

The verifier has its keys seeded and its result cache off, so every example
runs the full parse/claims/signature path without touching the network.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fastapi_cognito_guard import CognitoVerifier, InvalidTokenError
from fastapi_cognito_guard.testing import LocalIssuer

CODES = frozenset(
    {
        "malformed",
        "unsupported_alg",
        "unknown_kid",
        "bad_signature",
        "wrong_issuer",
        "wrong_token_use",
        "wrong_client",
        "wrong_audience",
        "expired",
        "not_yet_valid",
    }
)
"""Every ``InvalidTokenError.code`` the verifier documents."""

B64URL_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

FUZZ = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


class Issued:
    """A few genuine tokens of each kind, and the verifier that trusts them."""

    def __init__(self, issuer: LocalIssuer) -> None:
        self.issuer = issuer
        day = 24 * 3600
        self.tokens = (
            issuer.access_token(
                "alice", groups=["premium"], scopes=["orders/read"], expires_in=day
            ),
            issuer.access_token("bob", expires_in=day),
            issuer.id_token(
                "alice", email="alice@example.com", custom={"tier": "gold"}, expires_in=day
            ),
            issuer.client_credentials_token(["orders/read"], expires_in=day),
        )
        self.set = frozenset(self.tokens)
        self.verifier = CognitoVerifier(issuer.settings(token_use="any", result_cache_size=0))
        self.verifier.cache_jwks(issuer.jwks())
        for token in self.tokens:
            self.verifier.verify_sync(token)  # the baseline: every issued token verifies

    def check(self, token: object) -> None:
        """The property: an issued token verifies; anything else raises InvalidTokenError
        with a documented code. Any other exception propagates and fails the example."""
        if isinstance(token, str) and token in self.set:
            self.verifier.verify_sync(token)
            event("verified: byte-identical to an issued token")
            return
        with pytest.raises(InvalidTokenError) as info:
            self.verifier.verify_sync(token)  # type: ignore[arg-type]
        assert info.value.code in CODES
        event(f"rejected: {info.value.code}")


@pytest.fixture(scope="module")
def issued(issuer: LocalIssuer) -> Iterator[Issued]:
    issued = Issued(issuer)
    yield issued
    asyncio.run(issued.verifier.aclose())


# == (a) arbitrary input ==============================================================

b64url_text = st.text(alphabet=B64URL_ALPHABET, max_size=400)


@FUZZ
@given(token=st.text(max_size=2000))
def test_arbitrary_text_raises_only_invalid_token_error(issued: Issued, token: str) -> None:
    issued.check(token)


@FUZZ
@given(
    data=st.binary(max_size=2000),
    encoding=st.sampled_from(["latin-1", "utf-8/replace", "utf-8/surrogateescape", "ascii/ignore"]),
)
def test_arbitrary_bytes_decoded_to_text_raise_only_invalid_token_error(
    issued: Issued, data: bytes, encoding: str
) -> None:
    codec, _, errors = encoding.partition("/")
    issued.check(data.decode(codec, errors or "strict"))


@FUZZ
@given(parts=st.lists(b64url_text, min_size=1, max_size=5))
def test_dot_separated_base64url_text_raises_only_invalid_token_error(
    issued: Issued, parts: list[str]
) -> None:
    issued.check(".".join(parts))


@FUZZ
@given(data=st.data(), payload=b64url_text, signature=b64url_text)
def test_real_header_with_random_payload_and_signature_raises_only_invalid_token_error(
    issued: Issued, data: st.DataObject, payload: str, signature: str
) -> None:
    """A genuine header gets past the header checks into claims and signature."""
    header = data.draw(st.sampled_from(issued.tokens)).split(".")[0]
    issued.check(f"{header}.{payload}.{signature}")


@FUZZ
@given(
    token=st.one_of(st.none(), st.binary(max_size=200), st.integers(), st.floats(), st.booleans())
)
def test_non_string_input_raises_only_invalid_token_error(issued: Issued, token: object) -> None:
    issued.check(token)


# == (b) mutations of real tokens ======================================================

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
extra_fields = st.dictionaries(st.text(max_size=12), json_values, max_size=4)


@st.composite
def restructured(draw: st.DrawFn, token: str, tokens: tuple[str, ...]) -> str:
    """A segment-level edit of an issued token (which may leave it unchanged)."""
    parts = token.split(".")
    kind = draw(st.sampled_from(["none", "swap_segments", "splice", "reencode"]))
    if kind == "swap_segments":
        return ".".join(parts[i] for i in draw(st.permutations([0, 1, 2])))
    if kind == "splice":
        donors = [draw(st.sampled_from(tokens)).split(".") for _ in range(3)]
        return ".".join(donor[i] for i, donor in enumerate(donors))
    if kind == "reencode":
        # header or payload decoded, given random extra fields, and encoded again
        which = draw(st.sampled_from([0, 1]))
        document = json.loads(b64url_decode(parts[which]))
        document.update(draw(extra_fields))
        parts[which] = b64url(json.dumps(document, ensure_ascii=draw(st.booleans())).encode())
    return ".".join(parts)


@st.composite
def character_edit(draw: st.DrawFn, token: str) -> str:
    """One character flipped, inserted, deleted or replaced, or a few appended."""
    kind = draw(st.sampled_from(["flip", "insert", "delete", "replace", "append"]))
    if kind == "append" or not token:
        return token + draw(st.text(alphabet=B64URL_ALPHABET + ".", min_size=1, max_size=8))
    index = draw(st.integers(min_value=0, max_value=len(token) - 1))
    if kind == "flip":
        bit = draw(st.integers(min_value=0, max_value=6))
        return token[:index] + chr(ord(token[index]) ^ (1 << bit)) + token[index + 1 :]
    if kind == "insert":
        char = draw(st.one_of(st.sampled_from(B64URL_ALPHABET + ".=+/ \n\t"), st.characters()))
        return token[:index] + char + token[index:]
    if kind == "delete":
        return token[:index] + token[index + 1 :]
    return token[:index] + draw(st.sampled_from(B64URL_ALPHABET)) + token[index + 1 :]


@FUZZ
@given(data=st.data())
def test_mutated_real_token_is_rejected_unless_byte_identical_to_an_issued_one(
    issued: Issued, data: st.DataObject
) -> None:
    token = data.draw(st.sampled_from(issued.tokens), label="original")
    token = data.draw(restructured(token, issued.tokens), label="restructured")
    for _ in range(data.draw(st.integers(min_value=0, max_value=3), label="character edits")):
        token = data.draw(character_edit(token), label="edited")
    issued.check(token)


@FUZZ
@given(data=st.data())
def test_reencoded_payload_with_extra_claims_is_rejected(
    issued: Issued, data: st.DataObject
) -> None:
    """The attacker's favourite: the same claims plus a few of their own (``cognito:groups``,
    a later ``exp``...) under the original signature."""
    token = data.draw(st.sampled_from(issued.tokens))
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    added = data.draw(
        st.fixed_dictionaries(
            {},
            optional={
                "cognito:groups": st.lists(
                    st.sampled_from(["admin", "premium", "ops"]), max_size=3
                ),
                "exp": st.integers(min_value=0, max_value=2**40),
                "scope": st.sampled_from(["admin/all", "orders/write", ""]),
                "client_id": st.sampled_from([issued.issuer.client_id, "other"]),
                "sub": st.text(max_size=10),
            },
        )
    )
    forged_payload = b64url(json.dumps({**claims, **added}).encode())
    issued.check(f"{header}.{forged_payload}.{signature}")


# == (c) random JSON header and payload under a real signature =========================


DELETE = object()
"""Marks a field to remove from the document."""


@st.composite
def edited(draw: st.DrawFn, base: dict[str, Any], fields: dict[str, st.SearchStrategy[Any]]) -> Any:
    """``base`` with up to three fields replaced or deleted and a few random extras
    added, so most documents are nearly right and reach the deeper checks; one in
    ten is any JSON value at all."""
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        return draw(json_values)
    document = {**draw(extra_fields), **base}
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        name = draw(st.sampled_from(sorted(fields)))
        value = draw(st.one_of(st.just(DELETE), fields[name]))
        if value is DELETE:
            document.pop(name, None)
        else:
            document[name] = value
    return document


def header_fields(kid: str) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "alg": st.one_of(
            st.sampled_from(["RS256", "none", "HS256", "RS384", "rs256"]), json_values
        ),
        "kid": st.one_of(st.sampled_from([kid, kid.lower(), "unknown"]), json_values),
        "typ": st.one_of(st.just("JWT"), json_values),
        "crit": json_values,
        "jku": st.just("http://127.0.0.1:9/jwks.json"),
    }


NOW = int(time.time())
"""Fixed once per run: a strategy whose bounds moved with the clock would generate
differently when hypothesis replays an example (``FlakyStrategyDefinition``)."""


def claim_fields(issuer: LocalIssuer) -> dict[str, st.SearchStrategy[Any]]:
    times = st.integers(min_value=NOW - 10**5, max_value=NOW + 10**5)
    return {
        "sub": st.one_of(st.text(max_size=20), json_values),
        "iss": st.one_of(
            st.sampled_from([issuer.issuer, issuer.issuer + "/", issuer.issuer.upper()]),
            json_values,
        ),
        "token_use": st.one_of(st.sampled_from(["access", "id", "refresh"]), json_values),
        "client_id": st.one_of(st.sampled_from([issuer.client_id, "other"]), json_values),
        "aud": st.one_of(st.sampled_from([issuer.client_id, "other"]), json_values),
        "exp": st.one_of(times, json_values),
        "iat": st.one_of(times, json_values),
        "nbf": st.one_of(times, json_values),
        "cognito:groups": st.one_of(st.lists(st.text(max_size=8), max_size=3), json_values),
        "cognito:username": st.one_of(st.text(max_size=8), json_values),
        "username": st.one_of(st.text(max_size=8), json_values),
        "scope": st.one_of(st.text(max_size=20), json_values),
        "email_verified": st.one_of(
            st.sampled_from([True, False, "true", "false", "yes"]), json_values
        ),
        "custom:tier": json_values,
    }


def base_claims(issuer: LocalIssuer, token_use: str) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "5a0b6c1e-0000-4000-8000-000000000001",
        "iss": issuer.issuer,
        "token_use": token_use,
        "exp": now + 3600,
        "iat": now,
    }
    if token_use == "access":
        claims.update(client_id=issuer.client_id, username="alice", scope="orders/read")
    else:
        claims.update({"aud": issuer.client_id, "cognito:username": "alice"})
    return claims


@FUZZ
@given(data=st.data(), ensure_ascii=st.booleans())
def test_random_json_header_and_payload_with_a_real_signature_raise_only_invalid_token_error(
    issued: Issued, data: st.DataObject, ensure_ascii: bool
) -> None:
    issuer = issued.issuer
    header = data.draw(
        edited({"kid": issuer.kid, "alg": "RS256"}, header_fields(issuer.kid)), label="header"
    )
    token_use = data.draw(st.sampled_from(["access", "id"]), label="token_use")
    payload = data.draw(
        edited(base_claims(issuer, token_use), claim_fields(issuer)), label="payload"
    )
    signature = data.draw(st.sampled_from(issued.tokens), label="donor").split(".")[2]
    encode = lambda document: b64url(json.dumps(document, ensure_ascii=ensure_ascii).encode())  # noqa: E731
    issued.check(f"{encode(header)}.{encode(payload)}.{signature}")


@settings(max_examples=100, deadline=None, database=None)
@given(
    alg=st.one_of(
        st.lists(json_values, max_size=3),
        st.dictionaries(st.text(max_size=5), json_values, max_size=3),
    ),
    data=st.data(),
)
def test_header_with_a_list_or_object_alg_raises_only_invalid_token_error(
    issued: Issued, alg: Any, data: st.DataObject
) -> None:
    """Unhashable ``alg`` values once escaped as ``TypeError`` from the allow-list lookup."""
    token = data.draw(st.sampled_from(issued.tokens))
    _, payload, signature = token.split(".")
    header = b64url(json.dumps({"kid": issued.issuer.kid, "alg": alg}).encode())
    issued.check(f"{header}.{payload}.{signature}")


# == (d) signed payloads: the claim rules themselves ===================================


def check_signed(issued: Issued, token: str) -> None:
    """A token the issuer really signed either verifies, with every named claim of the
    type DESIGN §4 requires, or raises InvalidTokenError with a documented code."""
    try:
        claims = issued.verifier.verify_sync(token)
    except InvalidTokenError as err:
        code = err.code
        event(f"rejected: {code}")
        assert code in CODES
        return
    event(f"verified: {claims.token_use}")
    for name in ("exp", "iat", "nbf", "auth_time"):
        value = getattr(claims, name)
        assert value is None or (type(value) is int and 0 <= value <= 253402300799)
    assert all(type(group) is str for group in claims.groups)
    assert type(claims.sub) is str
    assert type(claims.iss) is str
    assert isinstance(claims.to_dict(), dict)


@FUZZ
@given(data=st.data())
def test_random_payload_signed_by_the_issuer_is_verified_well_typed_or_rejected(
    issued: Issued, data: st.DataObject
) -> None:
    issuer = issued.issuer
    token_use = data.draw(st.sampled_from(["access", "id"]), label="token_use")
    payload = data.draw(
        edited(base_claims(issuer, token_use), claim_fields(issuer)), label="payload"
    )
    check_signed(issued, issuer.sign(payload) if isinstance(payload, dict) else "")


@FUZZ
@given(payload=st.binary(max_size=300), prefix=st.sampled_from([b"", b'{"iss":"', b"{"]))
def test_arbitrary_payload_bytes_signed_by_the_issuer_raise_only_invalid_token_error(
    issued: Issued, payload: bytes, prefix: bytes
) -> None:
    issuer = issued.issuer
    header = b64url(json.dumps({"kid": issuer.kid, "alg": "RS256"}).encode())
    signing_input = f"{header}.{b64url(prefix + payload)}"
    key = issuer._keys[-1].private_key
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(InvalidTokenError) as info:
        issued.verifier.verify_sync(f"{signing_input}.{b64url(signature)}")
    assert info.value.code in CODES
