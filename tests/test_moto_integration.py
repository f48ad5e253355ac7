"""The verifier against real tokens from moto's Cognito (``tests/moto_cognito.py``).

Proves that access and ID tokens minted by ``admin_initiate_auth`` verify with
keys fetched over HTTP from moto's JWKS endpoint; that ``groups``,
``username`` and ``custom:*`` attributes come through, and moto's string
``email_verified: "true"`` becomes ``True``; that a token of another pool is
rejected as ``wrong_issuer`` although moto signs every pool with the same key
(only ``iss`` tells them apart); and that a two-pool verifier accepts both
pools and reports which one signed each token.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from fastapi_cognito_guard import (
    AccessTokenClaims,
    CognitoSettings,
    CognitoUser,
    CognitoVerifier,
    IdTokenClaims,
    InvalidTokenError,
)
from tests.moto_cognito import CognitoPool, decode_unverified

MakeVerifier = Callable[..., CognitoVerifier]


def pool_settings(pool: CognitoPool, token_use: str, **overrides: Any) -> CognitoSettings:
    values: dict[str, Any] = {
        "user_pool_id": pool.pool_id,
        "client_ids": [pool.client_id],
        "jwks_url": pool.jwks_url,
        "token_use": token_use,
        "jwks_timeout_seconds": 2,
    }
    values.update(overrides)
    return CognitoSettings(**values)


@pytest.fixture
async def make_verifier() -> AsyncIterator[MakeVerifier]:
    made: list[CognitoVerifier] = []

    def make(settings: CognitoSettings | list[CognitoSettings]) -> CognitoVerifier:
        verifier = CognitoVerifier(settings)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.aclose()


@pytest.fixture
def alice(moto_pool: CognitoPool) -> dict[str, str]:
    """Alice's access, ID and refresh tokens from moto."""
    moto_pool.create_user(
        "alice",
        email="alice@example.com",
        groups=["premium", "admins"],
        custom_attributes={"tier": "gold"},
    )
    return moto_pool.tokens("alice")


async def test_moto_access_token_verifies(
    moto_pool: CognitoPool, alice: dict[str, str], make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(pool_settings(moto_pool, "access"))

    claims = await verifier.verify(alice["AccessToken"])

    assert isinstance(claims, AccessTokenClaims)
    assert claims.token_use == "access"
    assert claims.username == "alice"
    assert sorted(claims.groups) == ["admins", "premium"]
    assert claims.client_id == moto_pool.client_id
    assert claims.iss == moto_pool.issuer
    assert claims.user_pool_id == moto_pool.pool_id
    assert claims.scopes == ["aws.cognito.signin.user.admin"]
    assert not claims.is_machine


async def test_moto_id_token_verifies_with_custom_attributes_and_string_email_verified(
    moto_pool: CognitoPool, alice: dict[str, str], make_verifier: MakeVerifier
) -> None:
    assert decode_unverified(alice["IdToken"])[1]["email_verified"] == "true"
    verifier = make_verifier(pool_settings(moto_pool, "id"))

    claims = await verifier.verify(alice["IdToken"])

    assert isinstance(claims, IdTokenClaims)
    assert claims.token_use == "id"
    assert claims.aud == moto_pool.client_id
    assert claims.username == "alice"
    assert sorted(claims.groups) == ["admins", "premium"]
    assert claims.custom == {"tier": "gold"}
    assert claims.email == "alice@example.com"
    assert claims.email_verified is True
    assert claims.user_pool_id == moto_pool.pool_id


async def test_moto_claims_become_a_cognito_user(
    moto_pool: CognitoPool, alice: dict[str, str], make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(pool_settings(moto_pool, "any"))

    access = CognitoUser.from_claims(await verifier.verify(alice["AccessToken"]))
    id_user = CognitoUser.from_claims(await verifier.verify(alice["IdToken"]))

    assert access.username == id_user.username == "alice"
    assert access.sub == id_user.sub
    assert access.user_pool_id == id_user.user_pool_id == moto_pool.pool_id
    assert access.client_id == id_user.client_id == moto_pool.client_id
    assert sorted(access.groups) == sorted(id_user.groups) == ["admins", "premium"]
    assert id_user.custom == {"tier": "gold"}
    assert id_user.email == "alice@example.com"


@pytest.mark.parametrize(
    ("token_use", "token_key", "code"),
    [("access", "IdToken", "wrong_token_use"), ("id", "AccessToken", "wrong_token_use")],
)
async def test_moto_token_of_the_other_type_is_rejected(
    moto_pool: CognitoPool,
    alice: dict[str, str],
    make_verifier: MakeVerifier,
    token_use: str,
    token_key: str,
    code: str,
) -> None:
    verifier = make_verifier(pool_settings(moto_pool, token_use))
    with pytest.raises(InvalidTokenError) as caught:
        await verifier.verify(alice[token_key])
    assert caught.value.code == code


async def test_moto_token_of_another_app_client_is_rejected(
    moto_pool: CognitoPool, alice: dict[str, str], make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(pool_settings(moto_pool, "any", client_ids=["someone-else"]))
    for token_key, code in (("AccessToken", "wrong_client"), ("IdToken", "wrong_audience")):
        with pytest.raises(InvalidTokenError) as caught:
            await verifier.verify(alice[token_key])
        assert caught.value.code == code


async def test_token_of_another_moto_pool_is_rejected_as_wrong_issuer(
    moto_pool: CognitoPool,
    make_moto_pool: Callable[..., CognitoPool],
    make_verifier: MakeVerifier,
) -> None:
    other = make_moto_pool()
    other.create_user("mallory")
    foreign = other.tokens("mallory")
    # Same signing key and kid for every moto pool: only the issuer differs.
    assert decode_unverified(foreign["AccessToken"])[0]["kid"] == "dummy"
    # Even an app client id shared by both pools would not help the foreign token.
    verifier = make_verifier(
        pool_settings(moto_pool, "any", client_ids=[moto_pool.client_id, other.client_id])
    )

    for token_key in ("AccessToken", "IdToken"):
        with pytest.raises(InvalidTokenError) as caught:
            await verifier.verify(foreign[token_key])
        assert caught.value.code == "wrong_issuer"


async def test_two_pool_verifier_accepts_both_and_reports_each_user_pool_id(
    moto_pool: CognitoPool,
    make_moto_pool: Callable[..., CognitoPool],
    make_verifier: MakeVerifier,
) -> None:
    other = make_moto_pool()
    moto_pool.create_user("alice", groups=["premium"])
    other.create_user("bob", groups=["staff"])
    verifier = make_verifier([pool_settings(moto_pool, "any"), pool_settings(other, "any")])
    await verifier.hydrate()

    for pool, username, group in ((moto_pool, "alice", "premium"), (other, "bob", "staff")):
        tokens = pool.tokens(username)
        for token_key in ("AccessToken", "IdToken"):
            claims = await verifier.verify(tokens[token_key])
            assert claims.user_pool_id == pool.pool_id
            assert claims.iss == pool.issuer
            assert claims.username == username
            assert claims.groups == [group]
            assert verifier.verify_sync(tokens[token_key]).user_pool_id == pool.pool_id
