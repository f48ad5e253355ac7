"""Property tests over the whole HTTP path: whatever ``Authorization`` header arrives,
a guarded route answers 200 only for a real issued token, never 5xx, and never echoes
the credential.

Values are valid HTTP field values (RFC 9110: HTAB, SP, visible ASCII and obs-text
0x80-0xFF; no CR/LF) sent as raw latin-1 bytes through ``httpx.ASGITransport`` to a
FastAPI app whose ``GET /me`` depends on ``current_user`` (``CognitoAuth`` with the
issuer's keys seeded, and its JWKS answered in-process for kid misses: nothing
touches the network). The families:

- arbitrary field values;
- ``Bearer`` (any case) followed by arbitrary text;
- real tokens, mutated (a character replaced, inserted or deleted, truncated,
  extended, segments swapped or spliced between tokens, case flipped), under any
  case of the scheme and with whitespace around;
- huge values (8 KiB to 256 KiB), some starting with a real token.

The acceptance oracle: the value, stripped of surrounding whitespace, is the scheme
``bearer`` in any case, a space, and (stripped of whitespace) a token the issuer
issued. Everything else must be a 401.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastapi_cognito_guard
from fastapi_cognito_guard import CognitoAuth, CognitoUser
from fastapi_cognito_guard.testing import LocalIssuer

PROPERTIES = settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

FIELD_ALPHABET = "\t" + "".join(map(chr, range(0x20, 0x7F))) + "".join(map(chr, range(0x80, 0x100)))
"""HTAB, SP, visible ASCII and obs-text (0x80-0xFF): what a header value may hold."""
FIELD_CHARS = st.sampled_from(FIELD_ALPHABET)

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
OWS = st.text(alphabet=" \t", max_size=3)


ISSUER = LocalIssuer()
TOKENS = (
    ISSUER.access_token("alice", groups=["premium"], scopes=["orders/read"]),
    ISSUER.access_token("bob"),
    ISSUER.client_credentials_token(scopes=["orders/read"]),
)
ISSUED = frozenset(TOKENS)
ID_TOKEN = ISSUER.id_token("carol", email="carol@example.com")
"""Issued too, but not acceptable here (the route takes access tokens)."""


class Guarded:
    """A FastAPI app with a guarded route trusting ``ISSUER``, and a way to call it."""

    def __init__(self) -> None:
        # Keys come from the issuer in-process: a mutated kid is a kid miss, refetched
        # (once per cooldown) and then a 401, as with a healthy Cognito.
        self.jwks_client = httpx.AsyncClient(transport=ISSUER.transport)
        self.auth: CognitoAuth[CognitoUser] = CognitoAuth(
            ISSUER.settings(), http_client=self.jwks_client
        )
        self.auth.verifier.cache_jwks(ISSUER.jwks())
        app = FastAPI()
        self.auth.init_app(app)

        @app.get("/me")
        async def me(user: CognitoUser = Depends(self.auth.current_user)) -> dict[str, Any]:
            return {"sub": user.sub, "username": user.username, "groups": user.groups}

        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://test"
        )

    def get(self, value: str) -> httpx.Response:
        headers = {b"Authorization": value.encode("latin-1")}
        return self.loop.run_until_complete(self.client.get("/me", headers=headers))

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(self.auth.aclose())
        self.loop.run_until_complete(self.jwks_client.aclose())
        self.loop.close()


@pytest.fixture(scope="module")
def guarded() -> Iterator[Guarded]:
    app = Guarded()
    try:
        yield app
    finally:
        app.close()


STATIC_TEXT = "\n".join(
    [
        *(path.read_text() for path in Path(fastapi_cognito_guard.__file__).parent.glob("*.py")),
        "content-type: application/json\ncontent-length: \nwww-authenticate: ",
    ]
)
"""Everything the server can say without reading it from the request: the package's
source (its messages) and the response's header names. Hypothesis mines string
constants from the code under test, so a credential like ``missing_token`` does turn
up; only a credential that is not part of this text can be an echo."""


HTTP_OWS = " \t"
"""HTTP's optional white space (RFC 9110 §5.6.3): a space or a tab, nothing else. Other
white space (a no-break space, say) is part of the value, so a token with it is not one
that was issued."""


def credential(value: str) -> str:
    """The header value's token part: what follows the scheme, or the whole value."""
    stripped = value.strip(HTTP_OWS)
    _, space, rest = stripped.partition(" ")
    return rest.strip(HTTP_OWS) if space else stripped


def acceptable(value: str) -> bool:
    scheme, space, rest = value.strip(HTTP_OWS).partition(" ")
    return bool(space) and scheme.lower() == "bearer" and rest.strip(HTTP_OWS) in ISSUED


def sub_of(token: str) -> str:
    payload = token.split(".")[1]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["sub"])


def check(guarded: Guarded, value: str) -> httpx.Response:
    """Send ``value`` and assert every property; returns the response."""
    response = guarded.get(value)
    status = response.status_code
    assert status < 500, (status, response.text)
    if acceptable(value):
        assert status == 200, (status, response.text)
        assert response.json()["sub"] == sub_of(credential(value))
    else:
        assert status == 401, (status, response.text)
        assert response.headers["www-authenticate"].startswith("Bearer realm=")
    token = credential(value)
    if len(token) >= 8 and token not in STATIC_TEXT:
        echoed = response.text + "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        assert token not in echoed
    return response


schemes = st.sampled_from(["bearer", "Bearer", "BEARER"]) | st.text(
    alphabet="bBeEaArR", min_size=6, max_size=6
).filter(lambda s: s.lower() == "bearer")


@st.composite
def decorated(draw: st.DrawFn, token: st.SearchStrategy[str]) -> str:
    """``<OWS><scheme><1+ SP><token><OWS>``."""
    spaces = " " * draw(st.integers(1, 3))
    return f"{draw(OWS)}{draw(schemes)}{spaces}{draw(token)}{draw(OWS)}"


@st.composite
def mutated_token(draw: st.DrawFn) -> str:
    """A real token (or the ID token) with one or two mutations."""
    tokens = [*TOKENS, ID_TOKEN]
    token = draw(st.sampled_from(tokens))
    for _ in range(draw(st.integers(1, 2))):
        kind = draw(
            st.sampled_from(
                ["replace", "insert", "delete", "truncate", "extend", "swap", "splice", "case"]
            )
        )
        if not token:
            token = draw(st.sampled_from(tokens))
        position = draw(st.integers(0, max(0, len(token) - 1)))
        char = draw(st.sampled_from(B64URL + ".=+/ \t\xa0\x85") | FIELD_CHARS)
        segments = token.split(".")
        if kind == "replace":
            token = token[:position] + char + token[position + 1 :]
        elif kind == "insert":
            token = token[:position] + char + token[position:]
        elif kind == "delete":
            token = token[:position] + token[position + 1 :]
        elif kind == "truncate":
            token = token[:position]
        elif kind == "extend":
            token = token + draw(st.text(FIELD_CHARS, min_size=1, max_size=20))
        elif kind == "swap" and len(segments) == 3:
            i, j = draw(st.permutations(range(3)))[:2]
            segments[i], segments[j] = segments[j], segments[i]
            token = ".".join(segments)
        elif kind == "splice" and len(segments) == 3:
            other = draw(st.sampled_from(tokens)).split(".")
            index = draw(st.integers(0, 2))
            segments[index] = other[index]
            token = ".".join(segments)
        elif kind == "case":
            token = (
                token[:position] + token[position : position + 1].swapcase() + token[position + 1 :]
            )
    return token


@PROPERTIES
@given(value=st.text(FIELD_CHARS, max_size=300))
def test_arbitrary_field_values(guarded: Guarded, value: str) -> None:
    check(guarded, value)


@PROPERTIES
@given(value=decorated(st.text(FIELD_CHARS, max_size=300)))
def test_bearer_with_arbitrary_text(guarded: Guarded, value: str) -> None:
    check(guarded, value)


@PROPERTIES
@given(value=decorated(mutated_token()))
def test_bearer_with_mutated_real_tokens(guarded: Guarded, value: str) -> None:
    check(guarded, value)


@PROPERTIES
@given(value=decorated(st.sampled_from(TOKENS)))
def test_real_tokens_are_accepted_in_any_case_of_the_scheme(guarded: Guarded, value: str) -> None:
    assert check(guarded, value).status_code == 200


@settings(PROPERTIES, max_examples=60)
@given(
    size=st.integers(8 * 1024, 256 * 1024),
    prefix=st.sampled_from(["Bearer ", "bearer ", "Basic ", ""]),
    start=st.sampled_from(["", *TOKENS]),
    filler=st.sampled_from(["A", ".", "a.b.", " ", "\xff", "Bearer "]),
)
def test_huge_values(guarded: Guarded, size: int, prefix: str, start: str, filler: str) -> None:
    value = prefix + start
    value += filler * ((size - len(value)) // len(filler) + 1)
    check(guarded, value[:size])  # a real token padded with whitespace is still that token
