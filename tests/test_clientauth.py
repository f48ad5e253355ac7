"""Specification of ``clientauth``: RFC 6749 §2.3.1 HTTP Basic client credentials and
the order in which an app client's one or two secrets are tried.

Proves that the client id and secret are form-urlencoded before base64 (so ``+ / = %``
and spaces survive a decoder that follows the RFC) and decode back exactly; that
malformed credentials decode to None; that ``invalid_client`` is recognised only as a
400/401 OAuth error; that a public client gets one attempt without ``Authorization``;
and that an accepted second secret is tried first afterwards.
"""

from __future__ import annotations

import base64

import pytest
from pydantic import SecretStr

from fastapi_cognito_guard.clientauth import (
    ClientSecrets,
    basic_authorization,
    is_invalid_client,
    parse_basic_authorization,
)


@pytest.mark.parametrize("secret", ["plain", "a+b/c=d%e", "with space", "ünï", "x:y"])
def test_credentials_round_trip_through_rfc_6749_encoding(secret: str) -> None:
    header = basic_authorization("my client", secret)

    assert header.startswith("Basic ")
    assert parse_basic_authorization(header.removeprefix("Basic ")) == ("my client", secret)


def test_reserved_characters_are_percent_encoded_before_base64() -> None:
    decoded = base64.b64decode(basic_authorization("id", "a+b/c=d%e").split()[1]).decode()

    assert decoded == "id:a%2Bb%2Fc%3Dd%25e"


@pytest.mark.parametrize(
    "value", ["%%%", base64.b64encode(b"no-colon").decode(), base64.b64encode(b"\xff:x").decode()]
)
def test_malformed_credentials_decode_to_none(value: str) -> None:
    assert parse_basic_authorization(value) is None


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, b'{"error": "invalid_client"}', True),
        (401, {"error": "invalid_client"}, True),
        (400, b'{"error": "invalid_grant"}', False),
        (500, b'{"error": "invalid_client"}', False),
        (400, b"not json", False),
    ],
)
def test_invalid_client_is_a_400_or_401_oauth_error(
    status: int, body: object, expected: bool
) -> None:
    assert is_invalid_client(status, body) is expected


def test_a_public_client_has_one_attempt_without_authorization() -> None:
    assert list(ClientSecrets("app").attempts()) == [(-1, {})]


def test_the_first_secret_is_tried_first_then_the_second() -> None:
    secrets = ClientSecrets("app", ["old", SecretStr("new")])

    headers = [auth["Authorization"] for _, auth in secrets.attempts()]

    assert headers == [basic_authorization("app", "old"), basic_authorization("app", "new")]


def test_an_accepted_second_secret_is_tried_first_afterwards() -> None:
    secrets = ClientSecrets("app", ["old", "new"])

    secrets.accepted(1)

    assert [index for index, _ in secrets.attempts()] == [1, 0]


def test_the_secrets_stay_out_of_the_repr() -> None:
    assert "s3cret" not in repr(ClientSecrets("app", ["s3cret"]))
