"""Identities the identity pool no longer knows (DESIGN §9).

An identity id kept from earlier (a guest's in its session, this process's guest
identity, a user's in the identity-id cache) may have been deleted at Cognito
(``DeleteIdentities``): ``GetCredentialsForIdentity`` / ``GetOpenIdToken`` then
answer ``ResourceNotFoundException``. The client forgets that id, makes (guests)
or asks for (users) a new one and retries once: the caller gets credentials, not a
500. Real HTTP to ``tests.identity_server.IdentityServer`` on 127.0.0.1, counted.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from fastapi import Depends, FastAPI
from starlette.requests import HTTPConnection

from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoUser,
    CredentialsUnavailableError,
    IdentityPoolClient,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, running
from tests.identity_server import (
    GET_CREDENTIALS,
    GET_ID,
    GET_OPEN_ID_TOKEN,
    IdentityLoopback,
    identity_loopback,
)

READER = "arn:aws:iam::123456789012:role/reader"
WRITER = "arn:aws:iam::123456789012:role/writer"
ROLES = {"cognito:roles": [READER, WRITER]}


@pytest.fixture
def pool(issuer: LocalIssuer) -> Iterator[IdentityLoopback]:
    with identity_loopback(issuer) as loopback:
        yield loopback


@pytest.fixture
async def client(pool: IdentityLoopback) -> AsyncIterator[IdentityPoolClient]:
    client = pool.client()
    yield client
    await client.aclose()


# -- guests ------------------------------------------------------------------------------


async def test_a_kept_guest_identity_the_pool_forgot_is_replaced_by_a_new_one(
    pool: IdentityLoopback, client: IdentityPoolClient
) -> None:
    kept = await client.new_guest_identity()
    pool.idp.delete_identity(kept)

    creds = await client.guest_credentials(kept)
    again = await client.guest_credentials(creds.identity_id)

    assert creds.identity_id != kept
    assert again == creds
    assert pool.idp.counts() == (2, 2)  # one new identity; one failed and one good exchange


async def test_the_process_guest_identity_the_pool_forgot_is_replaced_by_a_new_one(
    pool: IdentityLoopback, client: IdentityPoolClient
) -> None:
    pool.idp.fault_action, pool.idp.fault = GET_CREDENTIALS, "truncated_json"
    with pytest.raises(CredentialsUnavailableError):
        await client.guest_credentials()  # the identity is made, its credentials are not
    [(_, asked)] = [body for body in pool.idp.bodies if body[0] == GET_CREDENTIALS]
    pool.idp.fault = None
    pool.idp.delete_identity(asked["IdentityId"])

    creds = await client.guest_credentials()
    again = await client.guest_credentials()

    assert creds.identity_id != asked["IdentityId"]
    assert again == creds
    assert pool.idp.counts() == (2, 3)


# -- signed-in users ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flow", "action"), [("enhanced", GET_CREDENTIALS), ("basic", GET_OPEN_ID_TOKEN)]
)
async def test_a_users_cached_identity_the_pool_forgot_is_asked_for_again(
    pool: IdentityLoopback, flow: str, action: str
) -> None:
    client = pool.client(flow=flow)
    token = pool.issuer.id_token(f"user-{uuid.uuid4().hex[:8]}", **ROLES)
    try:
        first = await client.credentials_for(token, READER)
        pool.idp.delete_identity(first.identity_id)
        second = await client.credentials_for(token, WRITER)  # a new key: the cached id is used
        third = await client.credentials_for(token, WRITER)
    finally:
        await client.aclose()

    assert second.identity_id != first.identity_id
    assert third == second
    assert (pool.idp.count(GET_ID), pool.idp.count(action)) == (2, 3)


# -- through the FastAPI dependencies ----------------------------------------------------


class KeptGuestIds:
    """A session's guest-identity keeper (one visitor here), as ``GuestIdentities``."""

    def __init__(self) -> None:
        self.kept: str | None = None

    async def get(self, conn: HTTPConnection) -> str | None:
        return self.kept

    async def set(self, conn: HTTPConnection, identity_id: str) -> None:
        self.kept = identity_id


def aws_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    for_writer = auth.aws_credentials_for(WRITER)

    @app.get("/aws")
    async def aws(creds: AwsCredentials = Depends(for_writer)) -> str:
        return creds.identity_id

    @app.get("/guest")
    async def guest(creds: AwsCredentials = Depends(auth.guest_credentials)) -> str:
        return creds.identity_id

    return app


@pytest.fixture
async def http(
    pool: IdentityLoopback,
) -> AsyncIterator[tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]]:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(pool.settings)
    async with running(aws_app(auth)) as client:
        yield auth, client


async def test_a_guest_whose_kept_identity_was_forgotten_gets_200_and_keeps_the_new_one(
    pool: IdentityLoopback, http: tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]
) -> None:
    auth, client = http
    auth.guest_identities = keeper = KeptGuestIds()
    identity = auth.identity_client(pool.settings.user_pool_id)
    keeper.kept = first = await identity.new_guest_identity()
    pool.idp.delete_identity(first)

    answer = await client.get("/guest")
    again = await client.get("/guest")

    assert answer.status_code == 200
    assert answer.json() == keeper.kept == again.json() != first
    assert pool.idp.counts() == (2, 2)  # the kept one and its replacement; one failed exchange


async def test_a_user_whose_identity_was_forgotten_gets_200_not_500(
    pool: IdentityLoopback, http: tuple[CognitoAuth[CognitoUser], httpx.AsyncClient]
) -> None:
    _, client = http
    username = f"user-{uuid.uuid4().hex[:8]}"
    sub = str(uuid.uuid4())
    token = pool.issuer.id_token(username, sub=sub, **ROLES)
    first = await client.get("/aws", headers=bearer(token))
    pool.idp.delete_identity(first.json())
    changed = pool.issuer.id_token(username, sub=sub, groups=["writers"], **ROLES)  # a new key

    answer = await client.get("/aws", headers=bearer(changed))

    assert answer.status_code == 200
    assert answer.json() != first.json()
    assert pool.idp.counts() == (2, 3)
