"""Shared fixtures: a Cognito-shaped issuer and verifiers that trust it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from fastapi_cognito_guard import CognitoVerifier
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
