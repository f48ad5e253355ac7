"""Self-test of the moto Cognito fixtures in ``tests.moto_cognito``."""

import datetime
import json
from collections.abc import Callable
from typing import Any

import httpx
from jose import jwt

from tests.moto_cognito import CognitoPool, create_identity_pool, decode_unverified

pytest_plugins = ["tests.moto_cognito"]


def _identity_call(moto_url: str, action: str, body: dict[str, Any]) -> httpx.Response:
    """POST one unsigned JSON 1.1 ``AWSCognitoIdentityService`` call, like the library does."""
    return httpx.post(
        f"{moto_url}/",
        headers={
            "X-Amz-Target": f"AWSCognitoIdentityService.{action}",
            "Content-Type": "application/x-amz-json-1.1",
        },
        content=json.dumps(body),
        trust_env=False,
    )


def test_tokens_are_issued_and_verify_against_jwks(moto_pool: CognitoPool) -> None:
    sub = moto_pool.create_user(
        "alice", email="alice@example.com", groups=["premium"], custom_attributes={"tier": "gold"}
    )
    tokens = moto_pool.tokens("alice")
    assert set(tokens) == {"AccessToken", "IdToken", "RefreshToken"}
    jwks = httpx.get(moto_pool.jwks_url, trust_env=False).json()

    access = jwt.decode(tokens["AccessToken"], jwks, algorithms=["RS256"], issuer=moto_pool.issuer)
    assert access["token_use"] == "access"
    assert access["client_id"] == moto_pool.client_id
    assert access["username"] == "alice"
    assert access["sub"] == sub
    assert access["cognito:groups"] == ["premium"]

    id_claims = jwt.decode(
        tokens["IdToken"],
        jwks,
        algorithms=["RS256"],
        issuer=moto_pool.issuer,
        audience=moto_pool.client_id,
    )
    assert id_claims["token_use"] == "id"
    assert id_claims["cognito:username"] == "alice"
    assert id_claims["email"] == "alice@example.com"
    assert id_claims["custom:tier"] == "gold"
    assert id_claims["cognito:groups"] == ["premium"]


def test_jwks_url_serves_a_key_list(moto_pool: CognitoPool) -> None:
    response = httpx.get(moto_pool.jwks_url, trust_env=False)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/json")
    keys = response.json()["keys"]
    assert isinstance(keys, list)
    assert keys
    assert {k["kid"] for k in keys} == {"dummy"}


def test_two_pools_have_different_issuers(
    moto_pool: CognitoPool, make_moto_pool: Callable[..., CognitoPool]
) -> None:
    other = make_moto_pool()
    for pool in (moto_pool, other):
        pool.create_user("bob")
    first = decode_unverified(moto_pool.tokens("bob")["AccessToken"])[1]
    second = decode_unverified(other.tokens("bob")["AccessToken"])[1]
    assert first["iss"] == moto_pool.issuer
    assert second["iss"] == other.issuer
    assert first["iss"] != second["iss"]


def test_identity_pool_over_plain_httpx(moto_pool: CognitoPool, moto_server: str) -> None:
    moto_pool.create_user("carol", email="carol@example.com")
    id_token = moto_pool.tokens("carol")["IdToken"]
    identity_pool_id = create_identity_pool(moto_pool)
    logins = {moto_pool.login_provider: id_token}

    got_id = _identity_call(
        moto_server, "GetId", {"IdentityPoolId": identity_pool_id, "Logins": logins}
    )
    assert got_id.status_code == 200
    identity_id = got_id.json()["IdentityId"]  # moto answers text/html; the body is JSON
    assert ":" in identity_id

    creds = _identity_call(
        moto_server, "GetCredentialsForIdentity", {"IdentityId": identity_id, "Logins": logins}
    )
    assert creds.status_code == 200
    body = creds.json()
    assert body["IdentityId"] == identity_id
    credentials = body["Credentials"]
    assert {"AccessKeyId", "SecretKey", "SessionToken", "Expiration"} <= set(credentials)
    # moto: naive-UTC now + 90 s, then .timestamp() (== time.time() + 90 only on a UTC host).
    naive_utc = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
    expected = (naive_utc + datetime.timedelta(seconds=90)).timestamp()
    assert isinstance(credentials["Expiration"], float)
    assert abs(credentials["Expiration"] - expected) < 10
