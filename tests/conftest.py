"""Shared fixtures: a Cognito-shaped issuer, verifiers and a ``CognitoAuth`` that trust it."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from fastapi_cognito_guard import CognitoAuth, CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer
from tests.moto_cognito import (  # noqa: F401 - fixtures shared by every test module
    make_moto_pool,
    moto_cognito_identity,
    moto_cognito_idp,
    moto_pool,
    moto_server,
)

OTHER_POOL_ID = "eu-central-1_Other"


@pytest.fixture(scope="session")
def issuer() -> LocalIssuer:
    """One issuer for the whole run (RSA key generation is slow); do not rotate it."""
    return LocalIssuer()


@pytest.fixture(scope="session")
def other_issuer() -> LocalIssuer:
    """A second user pool, with its own keys and app client."""
    return LocalIssuer(user_pool_id=OTHER_POOL_ID, client_id="other-client")


@pytest.fixture
async def verifier(issuer: LocalIssuer) -> AsyncIterator[CognitoVerifier]:
    """A verifier for ``issuer`` with its keys seeded (no HTTP), result cache off."""
    verifier = CognitoVerifier(issuer.settings(result_cache_size=0))
    verifier.cache_jwks(issuer.jwks())
    yield verifier
    await verifier.aclose()


@pytest.fixture
async def jwks_http(issuer: LocalIssuer) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client that answers JWKS requests with ``issuer``'s keys, in-process."""
    async with httpx.AsyncClient(transport=issuer.transport) as http:
        yield http


@pytest.fixture
def auth(issuer: LocalIssuer, jwks_http: httpx.AsyncClient) -> CognitoAuth[Any]:
    """A ``CognitoAuth`` for ``issuer`` that fetches its keys through ``jwks_http``."""
    return CognitoAuth(issuer.settings(), http_client=jwks_http)


@pytest.fixture
def closed_jwks_url() -> Iterator[str]:
    """A JWKS URL on a 127.0.0.1 port that is bound but not listening (refused)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/.well-known/jwks.json"
    finally:
        sock.close()
