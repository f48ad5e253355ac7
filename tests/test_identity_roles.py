"""Identity pools, the whole story (DESIGN.md section 9): roles, the basic flow, guests,
shared caches. Every exchange here is real HTTP on 127.0.0.1.

- Against moto (``cognito-identity`` and ``sts`` on one ``ThreadedMotoServer``):
  groups created with ``RoleArn``/``Precedence``; moto's tokens carry no
  ``cognito:roles``/``cognito:preferred_role``, so ID tokens are signed by a
  ``LocalIssuer`` with the role claims Cognito would derive from those groups
  (``CognitoPool.role_claims``). The basic flow runs end to end (``GetOpenIdToken``,
  then STS ``AssumeRoleWithWebIdentity``), and the credentials work with boto3:
  ``sts.get_caller_identity`` names the assumed role.
- Against ``tests.identity_server.IdentityServer`` (moto checks neither ``Logins``
  nor guest access): every cache-key change counted, guests, guests disabled,
  redirects, STS error mappings, the shared store.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import httpx
import pytest
from fastapi import Depends, FastAPI, WebSocket
from fastapi.testclient import TestClient
from pydantic import SecretStr
from starlette.requests import HTTPConnection
from starlette.websockets import WebSocketDisconnect

from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    CognitoVerifier,
    CredentialsDeniedError,
    CredentialsUnavailableError,
    IdentityPoolClient,
    IdentityPoolConfigError,
)
from fastapi_cognito_guard.identity import check_groups_to_roles, check_role_arn
from fastapi_cognito_guard.sealing import Sealer
from fastapi_cognito_guard.stores import MemoryStore
from fastapi_cognito_guard.sts import StsWebIdentity
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer, running
from tests.identity_server import (
    GET_CREDENTIALS,
    GET_ID,
    GET_OPEN_ID_TOKEN,
    IDENTITY_POOL_ID,
    SECRET_KEY,
    SESSION_TOKEN,
    STS_ASSUME,
    IdentityLoopback,
    IdentityServer,
    identity_loopback,
)
from tests.jwks_server import JWKSServer
from tests.moto_cognito import REGION, CognitoPool, create_identity_pool

ACCOUNT = "123456789012"
READER = f"arn:aws:iam::{ACCOUNT}:role/reader"
WRITER = f"arn:aws:iam::{ACCOUNT}:role/writer"
ADMIN = f"arn:aws:iam::{ACCOUNT}:role/admin"
SESSION_SECRET = "a-session-secret-of-at-least-32-characters!"


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


def id_verifier(issuer: LocalIssuer) -> CognitoVerifier:
    verifier = CognitoVerifier(issuer.settings(token_use="id"))
    verifier.cache_jwks(issuer.jwks())
    return verifier


# -- loopback identity endpoint ---------------------------------------------------------


@pytest.fixture
def loopback(issuer: LocalIssuer) -> Iterator[IdentityLoopback]:
    with identity_loopback(issuer) as served:
        yield served


@pytest.fixture
async def enhanced(loopback: IdentityLoopback) -> AsyncIterator[IdentityPoolClient]:
    client = loopback.client()
    yield client
    await client.aclose()


@pytest.fixture
async def basic(loopback: IdentityLoopback) -> AsyncIterator[IdentityPoolClient]:
    client = loopback.client(flow="basic")
    yield client
    await client.aclose()


def sent_roles(idp: IdentityServer) -> list[str | None]:
    return [
        body.get("CustomRoleArn") if action == GET_CREDENTIALS else body.get("RoleArn")
        for action, body in idp.bodies
        if action in (GET_CREDENTIALS, STS_ASSUME)
    ]


# Each claim that decides the role the identity pool picks is part of the cache key:
# changing it forces a new exchange (issue 10: a demoted user, or a less trusted app
# client, never gets the old role's cached credentials).
ROLE_DECIDING_CHANGES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "groups": ({"groups": ["admins"]}, {"groups": ["readers"]}),
    "roles": ({"cognito:roles": [ADMIN, READER]}, {"cognito:roles": [READER]}),
    "preferred_role": (
        {"cognito:roles": [ADMIN, READER], "cognito:preferred_role": ADMIN},
        {"cognito:roles": [ADMIN, READER], "cognito:preferred_role": READER},
    ),
    "app_client": ({"aud": "test-client"}, {"aud": "less-trusted-client"}),
}


@pytest.mark.parametrize("change", ROLE_DECIDING_CHANGES, ids=ROLE_DECIDING_CHANGES.keys())
async def test_a_change_of_role_deciding_claims_forces_a_new_exchange(
    loopback: IdentityLoopback, change: str
) -> None:
    before, after = ROLE_DECIDING_CHANGES[change]
    settings = loopback.settings.model_copy(
        update={"client_ids": ["test-client", "less-trusted-client"]}
    )
    client = IdentityPoolClient(settings, verifier=CognitoVerifier(settings))
    client.verifier.cache_jwks(loopback.issuer.jwks())
    sub = str(uuid.uuid4())
    username = new_user()
    try:
        await client.credentials_for(loopback.issuer.id_token(username, sub=sub, **before))
        await client.credentials_for(loopback.issuer.id_token(username, sub=sub, **before))
        assert loopback.idp.counts() == (1, 1)

        await client.credentials_for(loopback.issuer.id_token(username, sub=sub, **after))
    finally:
        await client.aclose()

    assert loopback.idp.counts() == (1, 2)  # one identity, a second exchange


async def test_a_requested_role_has_its_own_cache_entry(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER, WRITER]})

    for _ in range(2):
        for role in (None, READER, WRITER):
            await enhanced.credentials_for(token, role)

    assert loopback.idp.counts() == (1, 3)
    assert sent_roles(loopback.idp) == [None, READER, WRITER]


async def test_a_new_token_with_the_same_claims_is_served_from_cache(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    username = new_user()

    await enhanced.credentials_for(loopback.issuer.id_token(username))
    await enhanced.credentials_for(loopback.issuer.id_token(username, expires_in=1800))

    assert loopback.idp.counts() == (1, 1)


async def test_identity_posts_never_follow_a_redirect_even_when_the_client_would(
    issuer: LocalIssuer,
) -> None:
    with (
        JWKSServer(issuer) as jwks,
        IdentityServer() as elsewhere,
        IdentityServer(redirect_to=elsewhere.url) as idp,
    ):
        idp.fault = "redirect"
        settings = jwks.settings(
            token_use="id", identity_pool_id=IDENTITY_POOL_ID, identity_endpoint=idp.url
        )
        async with httpx.AsyncClient(follow_redirects=True) as http:
            client = IdentityPoolClient(settings, http_client=http, verifier=id_verifier(issuer))
            with pytest.raises(IdentityPoolConfigError):
                await client.credentials_for(issuer.id_token(new_user()))

        assert idp.count(GET_ID) == 1
        assert elsewhere.requests == 0  # the ID token was not resent


async def test_sts_posts_never_follow_a_redirect_even_when_the_client_would(
    issuer: LocalIssuer,
) -> None:
    with (
        JWKSServer(issuer) as jwks,
        IdentityServer() as elsewhere,
        IdentityServer() as idp,
        IdentityServer(redirect_to=elsewhere.url) as sts,
    ):
        sts.fault = "redirect"
        settings = jwks.settings(
            token_use="id",
            identity_pool_id=IDENTITY_POOL_ID,
            identity_endpoint=idp.url,
            sts_endpoint=sts.url,
        )
        async with httpx.AsyncClient(follow_redirects=True) as http:
            client = IdentityPoolClient(
                settings, http_client=http, verifier=id_verifier(issuer), flow="basic"
            )
            token = issuer.id_token(new_user(), **{"cognito:roles": [READER]})
            with pytest.raises(IdentityPoolConfigError):
                await client.credentials_for(token, READER)

        assert sts.count(STS_ASSUME) == 1
        assert elsewhere.requests == 0


# -- roles ------------------------------------------------------------------------------


async def test_groups_to_roles_picks_the_first_listed_group_the_user_holds(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    token = loopback.issuer.id_token(
        new_user(), groups=["readers", "writers"], **{"cognito:roles": [READER, WRITER]}
    )

    creds = await enhanced.credentials_for(
        token, groups_to_roles={"admins": ADMIN, "writers": WRITER, "readers": READER}
    )

    assert creds.role_arn == WRITER
    assert sent_roles(loopback.idp) == [WRITER]


async def test_groups_to_roles_without_a_held_group_is_denied_without_a_call(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    token = loopback.issuer.id_token(new_user(), groups=["readers"])

    with pytest.raises(CredentialsDeniedError):
        await enhanced.credentials_for(token, groups_to_roles={"admins": ADMIN})

    assert loopback.idp.requests == 0


async def test_a_mapped_role_outside_cognito_roles_is_denied_and_logged_by_name(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "fastapi_cognito_guard")
    token = loopback.issuer.id_token(new_user(), groups=["admins"], **{"cognito:roles": [READER]})

    with pytest.raises(CredentialsDeniedError) as caught:
        await enhanced.credentials_for(token, groups_to_roles={"admins": ADMIN})

    assert ADMIN in caplog.text
    assert ADMIN not in caught.value.message
    assert loopback.idp.requests == 0


@pytest.mark.parametrize(
    "role_arn",
    ["", "reader", "arn:aws:iam::123:role/x", "arn:aws:s3:::bucket", f"{READER}\n", 42],
)
def test_a_role_arn_that_does_not_parse_is_a_value_error_naming_the_argument(
    role_arn: Any,
) -> None:
    with pytest.raises(ValueError, match="role_arn"):
        check_role_arn(role_arn)


@pytest.mark.parametrize(
    "mapping", [{}, {"admins": "admin"}, {"": READER}, {"admins": READER, "x": None}, [READER]]
)
def test_a_bad_groups_to_roles_is_a_value_error_naming_the_argument(mapping: Any) -> None:
    with pytest.raises(ValueError, match="groups_to_roles"):
        check_groups_to_roles(mapping)


def test_role_arns_with_paths_and_partitions_parse() -> None:
    for arn in (f"arn:aws:iam::{ACCOUNT}:role/app/reader", "arn:aws-cn:iam::123456789012:role/r"):
        assert check_role_arn(arn) == arn


@pytest.mark.parametrize("flow", ["", "Basic", "classic", "enhanced "])
def test_a_flow_other_than_enhanced_or_basic_is_a_value_error_naming_the_argument(
    loopback: IdentityLoopback, flow: str
) -> None:
    with pytest.raises(ValueError, match="flow"):
        IdentityPoolClient(loopback.settings, flow=flow)


def test_the_flow_defaults_to_the_identity_flow_setting(loopback: IdentityLoopback) -> None:
    settings = loopback.settings.model_copy(update={"identity_flow": "basic"})

    assert IdentityPoolClient(settings).flow == "basic"


# -- the basic flow at the loopback endpoint -----------------------------------------------


async def test_basic_flow_is_get_id_get_open_id_token_then_assume_role(
    loopback: IdentityLoopback, basic: IdentityPoolClient
) -> None:
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER, WRITER]})

    creds = await basic.credentials_for(token, WRITER)

    assert [action for action, _ in loopback.idp.bodies] == [GET_ID, GET_OPEN_ID_TOKEN, STS_ASSUME]
    form = loopback.idp.bodies[2][1]
    assert form["Version"] == "2011-06-15"
    assert form["RoleArn"] == WRITER
    assert form["WebIdentityToken"] == f"openid-token-for-{creds.identity_id}"
    assert form["RoleSessionName"] == creds.identity_id.replace(":", "_")
    assert (creds.secret_key, creds.session_token, creds.role_arn) == (
        SECRET_KEY,
        SESSION_TOKEN,
        WRITER,
    )


async def test_basic_flow_without_a_role_takes_the_preferred_role(
    loopback: IdentityLoopback, basic: IdentityPoolClient
) -> None:
    claims = {"cognito:roles": [READER, WRITER], "cognito:preferred_role": READER}

    creds = await basic.credentials_for(loopback.issuer.id_token(new_user(), **claims))

    assert creds.role_arn == READER
    assert sent_roles(loopback.idp) == [READER]


async def test_basic_flow_without_any_role_to_assume_is_denied_without_a_call(
    loopback: IdentityLoopback, basic: IdentityPoolClient
) -> None:
    with pytest.raises(CredentialsDeniedError):
        await basic.credentials_for(loopback.issuer.id_token(new_user()))

    assert loopback.idp.requests == 0


async def test_basic_flow_credentials_are_cached_with_one_exchange_in_flight(
    loopback: IdentityLoopback, basic: IdentityPoolClient
) -> None:
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER]})

    await asyncio.gather(*(basic.credentials_for(token, READER) for _ in range(20)))
    await basic.credentials_for(token, READER)

    assert [loopback.idp.count(a) for a in (GET_ID, GET_OPEN_ID_TOKEN, STS_ASSUME)] == [1, 1, 1]


STS_FAULTS = {
    "access_denied": (CredentialsDeniedError, None),
    "invalid_identity_token": (CredentialsDeniedError, None),
    "throttling": (CredentialsUnavailableError, 1),
    "status_429": (CredentialsUnavailableError, 7),
    "status_500": (CredentialsUnavailableError, 1),
    "hang": (CredentialsUnavailableError, 1),
    "truncated_json": (CredentialsUnavailableError, 1),
}


@pytest.mark.parametrize("fault", STS_FAULTS, ids=STS_FAULTS.keys())
async def test_sts_errors_map_to_denied_or_unavailable(
    loopback: IdentityLoopback, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    error, retry_after = STS_FAULTS[fault]
    loopback.idp.fault = fault
    loopback.idp.fault_action = STS_ASSUME
    loopback.idp.slow_seconds = 2
    client = loopback.client(flow="basic", timeout=0.5)
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER]})
    try:
        with pytest.raises(error) as caught:
            await client.credentials_for(token, READER)
    finally:
        await client.aclose()

    assert caught.value.code == error.code
    if retry_after is not None:
        assert isinstance(caught.value, CredentialsUnavailableError)
        assert caught.value.retry_after == retry_after
    assert SECRET_KEY not in caplog.text
    assert token not in caplog.text


async def test_sts_answer_with_a_document_type_declaration_is_refused(
    loopback: IdentityLoopback,
) -> None:
    # Otherwise well-formed credentials, but their secret comes from an entity.
    answer = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY k "from-an-entity">]>'
        b"<r><Credentials><AccessKeyId>ASIA1</AccessKeyId><SecretAccessKey>&k;"
        b"</SecretAccessKey><SessionToken>t</SessionToken>"
        b"<Expiration>2999-01-01T00:00:00Z</Expiration></Credentials></r>"
    )
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=answer))
    sts = StsWebIdentity(loopback.settings.sts_url, timeout=1)

    async with httpx.AsyncClient(transport=transport) as http:
        with pytest.raises(CredentialsUnavailableError):
            await sts.assume_role(http, READER, "web-identity", "eu-central-1:x")


# -- guests -----------------------------------------------------------------------------


async def test_guest_credentials_use_get_id_and_credentials_without_logins(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    creds = await enhanced.guest_credentials()

    assert loopback.idp.bodies == [
        (GET_ID, {"IdentityPoolId": IDENTITY_POOL_ID}),
        (GET_CREDENTIALS, {"IdentityId": creds.identity_id}),
    ]
    assert creds.role_arn is None


async def test_one_guest_identity_per_process_across_calls(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    results = await asyncio.gather(*(enhanced.guest_credentials() for _ in range(10)))
    again = await enhanced.guest_credentials()

    assert {creds.identity_id for creds in [*results, again]} == {again.identity_id}
    assert loopback.idp.counts() == (1, 1)


async def test_a_kept_guest_identity_is_reused_not_recreated(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    kept = await enhanced.new_guest_identity()

    first = await enhanced.guest_credentials(kept)
    second = await enhanced.guest_credentials(kept)

    assert first.identity_id == second.identity_id == kept
    assert loopback.idp.counts() == (1, 1)


async def test_guests_use_the_enhanced_flow_even_when_users_use_the_basic_flow(
    loopback: IdentityLoopback, basic: IdentityPoolClient
) -> None:
    await basic.guest_credentials()

    assert [action for action, _ in loopback.idp.bodies] == [GET_ID, GET_CREDENTIALS]


async def test_a_pool_without_guest_access_is_credentials_denied(
    loopback: IdentityLoopback, enhanced: IdentityPoolClient
) -> None:
    loopback.idp.allow_guests = False

    with pytest.raises(CredentialsDeniedError) as caught:
        await enhanced.guest_credentials()

    assert caught.value.status_code == 403


# -- shared store -----------------------------------------------------------------------


class SharedStore:
    """Stands for a store outside the process (Redis): not a ``MemoryStore``, so the
    client seals credentials before writing them; ``values`` shows what was written."""

    def __init__(self) -> None:
        self.memory = MemoryStore()
        self.values: dict[str, bytes] = {}

    async def get(self, key: str) -> bytes | None:
        return await self.memory.get(key)

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self.values[key] = value
        await self.memory.set(key, value, ttl_seconds)

    async def delete(self, key: str) -> None:
        await self.memory.delete(key)


def with_secret(loopback: IdentityLoopback) -> CognitoSettings:
    return loopback.settings.model_copy(update={"session_secret": [SecretStr(SESSION_SECRET)]})


def worker(
    loopback: IdentityLoopback, settings: CognitoSettings, store: SharedStore
) -> IdentityPoolClient:
    return IdentityPoolClient(settings, verifier=id_verifier(loopback.issuer), store=store)


async def test_a_shared_store_lets_a_second_process_skip_the_exchange(
    loopback: IdentityLoopback,
) -> None:
    shared = SharedStore()
    settings = with_secret(loopback)
    token = loopback.issuer.id_token(new_user())
    workers = [worker(loopback, settings, shared) for _ in range(2)]

    first = await workers[0].credentials_for(token)
    second = await workers[1].credentials_for(token)

    assert second == first
    assert loopback.idp.counts() == (1, 1)


async def test_credentials_in_a_shared_store_are_sealed(loopback: IdentityLoopback) -> None:
    shared = SharedStore()
    client = worker(loopback, with_secret(loopback), shared)

    await client.credentials_for(loopback.issuer.id_token(new_user()))

    stored = b"".join(shared.values.values())
    assert stored
    assert SECRET_KEY.encode() not in stored
    assert SESSION_TOKEN.encode() not in stored
    sealer = Sealer([SESSION_SECRET], "identity-credentials")
    opened = [sealer.open(value.decode(), key.encode()) for key, value in shared.values.items()]
    assert any(value is not None and SECRET_KEY.encode() in value for value in opened)


async def test_without_a_session_secret_credentials_stay_in_the_process(
    loopback: IdentityLoopback,
) -> None:
    shared = SharedStore()
    client = worker(loopback, loopback.settings, shared)

    creds = await client.credentials_for(loopback.issuer.id_token(new_user()))

    assert list(shared.values.values()) == [creds.identity_id.encode()]  # the id only


async def test_a_tampered_shared_entry_is_ignored_and_exchanged_again(
    loopback: IdentityLoopback,
) -> None:
    shared = SharedStore()
    settings = with_secret(loopback)
    token = loopback.issuer.id_token(new_user())
    first = worker(loopback, settings, shared)
    await first.credentials_for(token)
    for key, value in list(shared.values.items()):
        if key.startswith("identity:credentials:"):
            await shared.set(key, value[:-4] + b"AAAA", 600)

    second = worker(loopback, settings, shared)
    await second.credentials_for(token)

    assert loopback.idp.counts() == (1, 2)


# -- moto: two groups, two roles, the basic flow end to end ------------------------------------


@dataclass
class MotoRoles:
    pool: CognitoPool
    client: IdentityPoolClient
    basic_calls: list[dict[str, str]]
    moto_url: str

    def caller_arn(self, creds: Any) -> str:
        sts = boto3.client(
            "sts", endpoint_url=self.moto_url, region_name=REGION, **creds.boto3_kwargs()
        )
        return str(sts.get_caller_identity()["Arn"])


@pytest.fixture
async def moto_roles(
    moto_server: str, moto_pool: CognitoPool, issuer: LocalIssuer
) -> AsyncIterator[MotoRoles]:
    moto_pool.ensure_group("writers", role_arn=WRITER, precedence=1)
    moto_pool.ensure_group("readers", role_arn=READER, precedence=2)
    moto_pool.create_user("carol", groups=["readers", "writers"])
    calls: list[dict[str, str]] = []

    async def record(request: httpx.Request) -> None:
        target = request.headers.get("x-amz-target", "")
        if target.endswith(".GetOpenIdToken"):
            calls.append({"Action": "GetOpenIdToken"})
        elif b"AssumeRoleWithWebIdentity" in request.content:
            calls.append(dict(httpx.QueryParams(request.content.decode())))

    settings = issuer.settings(
        token_use="id",
        identity_pool_id=create_identity_pool(moto_pool),
        identity_endpoint=moto_server + "/",
        sts_endpoint=moto_server + "/",
    )
    async with httpx.AsyncClient(event_hooks={"request": [record]}) as http:
        client = IdentityPoolClient(
            settings, http_client=http, verifier=id_verifier(issuer), flow="basic"
        )
        yield MotoRoles(moto_pool, client, calls, moto_server)


def carol_token(moto_roles: MotoRoles, issuer: LocalIssuer) -> str:
    return issuer.id_token("carol", **moto_roles.pool.role_claims("carol"))


async def test_moto_a_user_in_two_groups_gets_each_role_on_request(
    moto_roles: MotoRoles, issuer: LocalIssuer
) -> None:
    token = carol_token(moto_roles, issuer)

    reader = await moto_roles.client.credentials_for(token, READER)
    writer = await moto_roles.client.credentials_for(token, WRITER)

    assert ":assumed-role/reader/" in moto_roles.caller_arn(reader)
    assert ":assumed-role/writer/" in moto_roles.caller_arn(writer)
    assert (reader.role_arn, writer.role_arn) == (READER, WRITER)


async def test_moto_a_role_outside_cognito_roles_is_denied_before_any_call(
    moto_roles: MotoRoles, issuer: LocalIssuer
) -> None:
    with pytest.raises(CredentialsDeniedError):
        await moto_roles.client.credentials_for(carol_token(moto_roles, issuer), ADMIN)

    assert moto_roles.basic_calls == []  # neither GetOpenIdToken nor STS


async def test_moto_groups_to_roles_picks_by_group(
    moto_roles: MotoRoles, issuer: LocalIssuer
) -> None:
    creds = await moto_roles.client.credentials_for(
        carol_token(moto_roles, issuer), groups_to_roles={"readers": READER, "writers": WRITER}
    )

    assert ":assumed-role/reader/" in moto_roles.caller_arn(creds)


async def test_moto_basic_flow_defaults_to_the_preferred_role_of_the_lowest_precedence(
    moto_roles: MotoRoles, issuer: LocalIssuer
) -> None:
    creds = await moto_roles.client.credentials_for(carol_token(moto_roles, issuer))

    assert ":assumed-role/writer/" in moto_roles.caller_arn(creds)


async def test_moto_basic_flow_is_counted_and_cached(
    moto_roles: MotoRoles, issuer: LocalIssuer
) -> None:
    token = carol_token(moto_roles, issuer)

    first = await moto_roles.client.credentials_for(token, READER)
    second = await moto_roles.client.credentials_for(token, READER)

    assert second == first
    [open_id, call] = moto_roles.basic_calls
    assert (open_id["Action"], call["Action"]) == ("GetOpenIdToken", "AssumeRoleWithWebIdentity")
    assert call["RoleSessionName"] == first.identity_id.replace(":", "_")
    assert moto_roles.caller_arn(first).endswith("/" + call["RoleSessionName"])


# -- the FastAPI dependencies -----------------------------------------------------------


def aws_app(auth: CognitoAuth[CognitoUser]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    def described(creds: AwsCredentials) -> dict[str, str | None]:
        return {"identity_id": creds.identity_id, "role_arn": creds.role_arn}

    @app.get("/aws")
    async def aws(creds: AwsCredentials = Depends(auth.aws_credentials)) -> Any:
        return described(creds)

    for_writer = auth.aws_credentials_for(WRITER)

    @app.get("/writer")
    async def writer(creds: AwsCredentials = Depends(for_writer)) -> Any:
        return described(creds)

    mapped = auth.aws_credentials_for(groups_to_roles={"writers": WRITER, "readers": READER})

    @app.get("/mapped")
    async def by_group(creds: AwsCredentials = Depends(mapped)) -> Any:
        return described(creds)

    @app.get("/guest")
    async def guest(creds: AwsCredentials = Depends(auth.guest_credentials)) -> Any:
        return described(creds)

    @app.websocket("/ws")
    async def ws(
        websocket: WebSocket, creds: AwsCredentials = Depends(auth.aws_credentials)
    ) -> None:
        await websocket.accept()
        await websocket.send_text(creds.identity_id)
        await websocket.close()

    return app


@pytest.fixture
def loopback_auth(loopback: IdentityLoopback) -> CognitoAuth[CognitoUser]:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(loopback.settings)
    auth.verifier.cache_jwks(loopback.issuer.jwks())
    return auth


async def test_aws_credentials_for_a_role_in_cognito_roles_is_200_with_the_role(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER, WRITER]})

    async with running(aws_app(loopback_auth)) as client:
        response = await client.get("/writer", headers=bearer(token))

    assert response.status_code == 200
    assert response.json()["role_arn"] == WRITER
    assert sent_roles(loopback.idp) == [WRITER]


async def test_aws_credentials_for_a_role_outside_cognito_roles_is_403_before_any_call(
    loopback: IdentityLoopback,
    loopback_auth: CognitoAuth[CognitoUser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "fastapi_cognito_guard")
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER]})

    async with running(aws_app(loopback_auth)) as client:
        response = await client.get("/writer", headers=bearer(token))

    assert response.status_code == 403
    assert response.json()["code"] == "credentials_denied"
    assert WRITER not in response.text
    assert WRITER in caplog.text
    assert loopback.idp.requests == 0


async def test_aws_credentials_for_groups_to_roles_picks_by_group(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    roles = {"cognito:roles": [READER, WRITER]}
    reader = loopback.issuer.id_token(new_user(), groups=["readers"], **roles)
    both = loopback.issuer.id_token(new_user(), groups=["readers", "writers"], **roles)

    async with running(aws_app(loopback_auth)) as client:
        as_reader = await client.get("/mapped", headers=bearer(reader))
        as_both = await client.get("/mapped", headers=bearer(both))

    assert (as_reader.json()["role_arn"], as_both.json()["role_arn"]) == (READER, WRITER)


@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [
        (("reader",), {}, "role_arn"),
        (("arn:aws:iam::1:role/x",), {}, "role_arn"),
        ((), {"groups_to_roles": {}}, "groups_to_roles"),
        ((), {"groups_to_roles": {"admins": "admin"}}, "groups_to_roles"),
        ((READER,), {"groups_to_roles": {"admins": ADMIN}}, "role_arn or groups_to_roles"),
    ],
)
def test_aws_credentials_for_bad_arguments_fail_at_construction(
    loopback_auth: CognitoAuth[CognitoUser], args: tuple[Any, ...], kwargs: Any, named: str
) -> None:
    with pytest.raises(ValueError, match=named):
        loopback_auth.aws_credentials_for(*args, **kwargs)


async def test_guest_credentials_need_no_token_and_keep_one_identity_per_process(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    async with running(aws_app(loopback_auth)) as client:
        responses = [await client.get("/guest") for _ in range(3)]

    assert [response.status_code for response in responses] == [200, 200, 200]
    assert len({response.json()["identity_id"] for response in responses}) == 1
    assert loopback.idp.counts() == (1, 1)


async def test_guest_credentials_ignore_a_token_sent(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    token = loopback.issuer.id_token(new_user())

    async with running(aws_app(loopback_auth)) as client:
        with_token = await client.get("/guest", headers=bearer(token))
        with_garbage = await client.get("/guest", headers=bearer("not-a-token"))

    assert with_token.status_code == with_garbage.status_code == 200
    assert all("Logins" not in body for _, body in loopback.idp.bodies)


async def test_guest_credentials_of_a_pool_without_guest_access_are_403(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    loopback.idp.allow_guests = False

    async with running(aws_app(loopback_auth)) as client:
        response = await client.get("/guest")

    assert response.status_code == 403
    assert response.json()["code"] == "credentials_denied"


class CookieGuestIds:
    """What browser sessions supply: the guest identity id kept per visitor (a cookie
    names the visitor here; the session code keeps it in the encrypted session)."""

    def __init__(self) -> None:
        self.kept: dict[str, str] = {}

    async def get(self, conn: HTTPConnection) -> str | None:
        return self.kept.get(conn.cookies.get("visitor", ""))

    async def set(self, conn: HTTPConnection, identity_id: str) -> None:
        self.kept[conn.cookies["visitor"]] = identity_id


async def test_guest_identity_kept_by_the_session_hook_gives_each_visitor_one_identity(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    loopback_auth.guest_identities = CookieGuestIds()

    async with running(aws_app(loopback_auth)) as client:
        ids = {
            visitor: {
                (await client.get("/guest", headers={"Cookie": f"visitor={visitor}"})).json()[
                    "identity_id"
                ]
                for _ in range(3)
            }
            for visitor in ("ann", "bob")
        }

    assert all(len(kept) == 1 for kept in ids.values())
    assert ids["ann"] != ids["bob"]
    assert loopback.idp.counts() == (2, 2)


async def test_a_session_can_supply_the_id_token_through_caller_id_token(
    loopback: IdentityLoopback,
) -> None:
    username = new_user()
    session_id_token = loopback.issuer.id_token(username)

    class SessionAuth(CognitoAuth[CognitoUser]):
        def caller_id_token(self, conn: HTTPConnection, user: CognitoUser) -> str:
            return session_id_token

    auth = SessionAuth(loopback.settings.model_copy(update={"token_use": "any"}))
    auth.verifier.cache_jwks(loopback.issuer.jwks())

    async with running(aws_app(auth)) as client:
        response = await client.get("/aws", headers=bearer(loopback.issuer.access_token(username)))

    assert response.status_code == 200
    assert loopback.idp.bodies[0][1]["Logins"] == {
        loopback.settings.provider_name: session_id_token
    }


def test_aws_credentials_on_a_websocket_without_an_id_token_closes_1008(
    loopback: IdentityLoopback,
) -> None:
    auth: CognitoAuth[CognitoUser] = CognitoAuth(
        loopback.settings.model_copy(update={"token_use": "access"})
    )
    auth.verifier.cache_jwks(loopback.issuer.jwks())
    token = loopback.issuer.access_token(new_user())

    with (
        TestClient(aws_app(auth)) as client,
        pytest.raises(WebSocketDisconnect) as caught,
        client.websocket_connect("/ws", headers=bearer(token)) as ws,
    ):
        ws.receive_text()

    assert caught.value.code == 1008
    assert loopback.idp.requests == 0


def test_aws_credentials_on_a_websocket_with_an_id_token_bearer_is_served(
    loopback: IdentityLoopback, loopback_auth: CognitoAuth[CognitoUser]
) -> None:
    token = loopback.issuer.id_token(new_user())

    with (
        TestClient(aws_app(loopback_auth)) as client,
        client.websocket_connect("/ws", headers=bearer(token)) as ws,
    ):
        identity_id = ws.receive_text()

    assert identity_id == loopback.idp.bodies[1][1]["IdentityId"]


async def test_no_response_log_or_repr_contains_the_secret_or_session_token(
    loopback: IdentityLoopback,
    loopback_auth: CognitoAuth[CognitoUser],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    token = loopback.issuer.id_token(new_user(), **{"cognito:roles": [READER, WRITER]})
    texts = []
    async with running(aws_app(loopback_auth)) as client:
        for fault in (None, "status_500", "not_authorized"):
            loopback.idp.fault = fault
            for path in ("/aws", "/writer", "/guest"):
                texts.append((await client.get(path, headers=bearer(token))).text)
        loopback.idp.fault = None
        client_repr = repr(loopback_auth.identity_client(loopback.settings.user_pool_id))
        creds = await loopback_auth.identity_client(
            loopback.settings.user_pool_id
        ).guest_credentials()

    for text in [*texts, caplog.text, client_repr, repr(creds), str(creds)]:
        assert SECRET_KEY not in text
        assert SESSION_TOKEN not in text
