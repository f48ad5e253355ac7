"""Identity-pool credentials: ``IdentityPoolClient`` and the ``auth.aws_credentials`` dependency.

What this module proves (DESIGN.md section 9):

- Against moto on 127.0.0.1 (real HTTP, real moto ID tokens): a verified ID token
  is exchanged with ``GetId`` + ``GetCredentialsForIdentity`` (unsigned JSON 1.1,
  ``Logins`` keyed by the user pool) for ``AwsCredentials``; 100 concurrent calls
  for one user make one call of each; credentials are cached per user until five
  minutes before they expire, then refreshed without a new ``GetId``; a token that
  fails verification makes no identity call. moto's credentials live 90 s (inside
  the refresh margin) and its ``Expiration`` depends on the host TZ, so the caching
  tests pass moto's real answers through a transport that only rewrites
  ``Expiration`` (to now + ``expires_in``).
- With a fake identity endpoint (``httpx.MockTransport`` plus a ``LocalIssuer``):
  roles (``cognito:roles`` -> ``CustomRoleArn``), and every failure mode: throttling,
  5xx, timeouts, connection errors and garbage -> ``CredentialsUnavailableError``
  (503, ``Retry-After``); ``NotAuthorizedException`` -> ``CredentialsDeniedError``
  (403); a misconfigured pool -> ``IdentityPoolConfigError`` (500, logged once);
  nothing is cached after a failure; secrets and tokens stay out of reprs and logs.
- ``auth.aws_credentials`` in a FastAPI app: ID token from ``X-Cognito-Id-Token``
  (same user as the bearer) or the bearer itself with ``token_use="id"``; 401, 403
  and 503 answers.
"""

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastapi_cognito_guard import (
    AwsCredentials,
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    CredentialsDeniedError,
    CredentialsUnavailableError,
    IdentityPoolClient,
    IdentityPoolConfigError,
    InvalidTokenError,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.moto_cognito import CognitoPool, create_identity_pool, decode_unverified

PREFIX = "AWSCognitoIdentityService."
GET_ID = "GetId"
GET_CREDENTIALS = "GetCredentialsForIdentity"
ACTIONS = (GET_ID, GET_CREDENTIALS)

FAKE_IDENTITY_POOL_ID = "eu-central-1:11111111-2222-3333-4444-555555555555"
FAKE_ENDPOINT = "https://cognito-identity.eu-central-1.amazonaws.com/"
FAKE_ACCESS_KEY = "ASIAFAKEACCESSKEY0001"
FAKE_SECRET = "fake-SECRET-key-do-not-log-7f3a9c"
FAKE_SESSION = "fake-SESSION-token-do-not-log-b81e2d"
AMZ_JSON = "application/x-amz-json-1.1"
ROLE_READER = "arn:aws:iam::123456789012:role/reader"
ROLE_WRITER = "arn:aws:iam::123456789012:role/writer"


# -- moto: real HTTP, only the expiry shaped ---------------------------------------


class RecordingTransport(httpx.AsyncBaseTransport):
    """Sends every request to ``inner``; records identity calls (action, JSON body).

    With ``expires_in`` set, the ``Expiration`` of a successful
    ``GetCredentialsForIdentity`` answer is rewritten to now + ``expires_in``;
    everything else is moto's answer unchanged. JWKS fetches pass through
    unrecorded.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, expires_in: float | None = None) -> None:
        self.inner = inner
        self.expires_in = expires_in
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def count(self, action: str) -> int:
        return sum(1 for name, _ in self.calls if name == action)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        target = request.headers.get("x-amz-target", "")
        if target.startswith(PREFIX):
            self.calls.append((target[len(PREFIX) :], json.loads(request.content)))
        response = await self.inner.handle_async_request(request)
        if (
            self.expires_in is None
            or target != PREFIX + GET_CREDENTIALS
            or response.status_code != 200
        ):
            return response
        answer = json.loads(await response.aread())
        await response.aclose()
        answer["Credentials"]["Expiration"] = time.time() + self.expires_in
        return httpx.Response(
            200,
            headers={"content-type": response.headers.get("content-type", "")},
            content=json.dumps(answer).encode(),
        )

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class MotoIdentity:
    """A moto user pool with an identity pool, and a client talking to both over HTTP."""

    pool: CognitoPool
    settings: CognitoSettings
    transport: RecordingTransport
    http: httpx.AsyncClient
    client: IdentityPoolClient


def moto_settings(pool: CognitoPool, moto_url: str, **overrides: Any) -> CognitoSettings:
    values: dict[str, Any] = {
        "user_pool_id": pool.pool_id,
        "client_ids": [pool.client_id],
        "jwks_url": pool.jwks_url,
        "identity_pool_id": create_identity_pool(pool),
        "identity_endpoint": moto_url + "/",
    }
    values.update(overrides)
    return CognitoSettings(**values)


@pytest.fixture
async def moto_identity(moto_server: str, moto_pool: CognitoPool) -> AsyncIterator[MotoIdentity]:
    settings = moto_settings(moto_pool, moto_server)
    transport = RecordingTransport(httpx.AsyncHTTPTransport(), expires_in=3600)
    http = httpx.AsyncClient(transport=transport)
    client = IdentityPoolClient(settings, http_client=http)
    yield MotoIdentity(moto_pool, settings, transport, http, client)
    await client.aclose()
    await http.aclose()


def moto_tokens(pool: CognitoPool, username: str) -> dict[str, str]:
    pool.create_user(username, email=f"{username}@example.com")
    return pool.tokens(username)


async def test_moto_id_token_yields_aws_credentials(moto_identity: MotoIdentity) -> None:
    id_token = moto_tokens(moto_identity.pool, "alice")["IdToken"]

    creds = await moto_identity.client.credentials_for(id_token)

    assert isinstance(creds, AwsCredentials)
    assert creds.access_key_id
    assert creds.secret_key
    assert creds.session_token
    assert isinstance(creds.expiration, datetime)
    assert creds.expiration.utcoffset() == timedelta(0)
    assert creds.identity_id.count(":") == 1
    assert creds.boto3_kwargs() == {
        "aws_access_key_id": creds.access_key_id,
        "aws_secret_access_key": creds.secret_key,
        "aws_session_token": creds.session_token,
    }


async def test_moto_exchange_sends_the_user_pool_login(moto_identity: MotoIdentity) -> None:
    # moto never checks Logins, so what the library sends is asserted here.
    id_token = moto_tokens(moto_identity.pool, "alice")["IdToken"]

    creds = await moto_identity.client.credentials_for(id_token)

    logins = {moto_identity.pool.login_provider: id_token}
    assert moto_identity.transport.calls == [
        (GET_ID, {"IdentityPoolId": moto_identity.settings.identity_pool_id, "Logins": logins}),
        (GET_CREDENTIALS, {"IdentityId": creds.identity_id, "Logins": logins}),
    ]


async def test_concurrent_calls_for_one_user_make_one_exchange(
    moto_identity: MotoIdentity,
) -> None:
    id_token = moto_tokens(moto_identity.pool, "alice")["IdToken"]

    results = await asyncio.gather(
        *(moto_identity.client.credentials_for(id_token) for _ in range(100))
    )

    assert moto_identity.transport.count(GET_ID) == 1
    assert moto_identity.transport.count(GET_CREDENTIALS) == 1
    assert {creds.identity_id for creds in results} == {results[0].identity_id}
    assert {creds.access_key_id for creds in results} == {results[0].access_key_id}


async def test_fresh_credentials_are_served_from_cache(moto_identity: MotoIdentity) -> None:
    id_token = moto_tokens(moto_identity.pool, "alice")["IdToken"]

    first = await moto_identity.client.credentials_for(id_token)
    second = await moto_identity.client.credentials_for(id_token)

    assert second == first
    assert moto_identity.transport.count(GET_ID) == 1
    assert moto_identity.transport.count(GET_CREDENTIALS) == 1


async def test_credentials_near_expiry_are_refreshed_without_new_get_id(
    moto_identity: MotoIdentity,
) -> None:
    moto_identity.transport.expires_in = 120  # inside the 5-minute refresh margin
    id_token = moto_tokens(moto_identity.pool, "alice")["IdToken"]

    first = await moto_identity.client.credentials_for(id_token)
    second = await moto_identity.client.credentials_for(id_token)

    assert moto_identity.transport.count(GET_ID) == 1
    assert moto_identity.transport.count(GET_CREDENTIALS) == 2
    assert second.identity_id == first.identity_id
    assert second.expiration >= first.expiration


async def test_two_users_get_separate_cache_entries(moto_identity: MotoIdentity) -> None:
    alice = moto_tokens(moto_identity.pool, "alice")["IdToken"]
    bob = moto_tokens(moto_identity.pool, "bob")["IdToken"]

    alice_creds = await moto_identity.client.credentials_for(alice)
    bob_creds = await moto_identity.client.credentials_for(bob)
    assert await moto_identity.client.credentials_for(alice) == alice_creds
    assert await moto_identity.client.credentials_for(bob) == bob_creds

    assert moto_identity.transport.count(GET_ID) == 2
    assert moto_identity.transport.count(GET_CREDENTIALS) == 2
    assert alice_creds.identity_id != bob_creds.identity_id
    sent = [
        body["Logins"][moto_identity.pool.login_provider]
        for _, body in moto_identity.transport.calls
    ]
    assert sent == [alice, alice, bob, bob]


async def test_access_token_is_rejected_without_identity_call(
    moto_identity: MotoIdentity,
) -> None:
    access_token = moto_tokens(moto_identity.pool, "alice")["AccessToken"]

    with pytest.raises(InvalidTokenError) as caught:
        await moto_identity.client.credentials_for(access_token)

    assert caught.value.code == "wrong_token_use"
    assert moto_identity.transport.calls == []


async def test_id_token_of_another_pool_is_rejected_without_identity_call(
    moto_identity: MotoIdentity, make_moto_pool: Callable[..., CognitoPool]
) -> None:
    other_pool = make_moto_pool()
    foreign = moto_tokens(other_pool, "alice")["IdToken"]

    with pytest.raises(InvalidTokenError) as caught:
        await moto_identity.client.credentials_for(foreign)

    assert caught.value.code == "wrong_issuer"
    assert moto_identity.transport.calls == []


# -- fake identity endpoint --------------------------------------------------------


Fault = Callable[[httpx.Request], httpx.Response]


@dataclass
class Call:
    action: str
    body: dict[str, Any]
    headers: httpx.Headers


@dataclass
class FakeCognito:
    """One MockTransport handler: the issuer's JWKS and a Cognito identity endpoint.

    ``faults[action]`` (a function of the request that returns a response or
    raises) replaces the normal answer to that action until removed.
    """

    issuer: LocalIssuer
    calls: list[Call] = field(default_factory=list)
    faults: dict[str, Fault] = field(default_factory=dict)

    def count(self, action: str) -> int:
        return sum(1 for call in self.calls if call.action == action)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/.well-known/jwks.json"):
            return self.issuer.transport.handle_request(request)
        assert str(request.url) == FAKE_ENDPOINT
        assert request.method == "POST"
        target = request.headers["x-amz-target"]
        assert target.startswith(PREFIX)
        action = target[len(PREFIX) :]
        body = json.loads(request.content)
        self.calls.append(Call(action, body, request.headers))
        fault = self.faults.get(action)
        if fault is not None:
            return fault(request)
        if action == GET_ID:
            token = next(iter(body["Logins"].values()))
            sub = decode_unverified(token)[1]["sub"]
            return amz_json(
                200, {"IdentityId": f"eu-central-1:{uuid.uuid5(uuid.NAMESPACE_URL, sub)}"}
            )
        assert action == GET_CREDENTIALS
        credentials = {
            "AccessKeyId": FAKE_ACCESS_KEY,
            "SecretKey": FAKE_SECRET,
            "SessionToken": FAKE_SESSION,
            "Expiration": time.time() + 3600,
        }
        return amz_json(200, {"IdentityId": body["IdentityId"], "Credentials": credentials})


def amz_json(status: int, body: Any, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": AMZ_JSON, **(headers or {})},
    )


def aws_error(kind: str, status: int = 400, headers: dict[str, str] | None = None) -> Fault:
    return lambda request: amz_json(
        status, {"__type": kind, "message": f"simulated {kind}"}, headers
    )


def raising(exc_type: type[httpx.TransportError]) -> Fault:
    def fault(request: httpx.Request) -> httpx.Response:
        raise exc_type("simulated", request=request)

    return fault


UNAVAILABLE_FAULTS: dict[str, Fault] = {
    "too_many_requests": aws_error("TooManyRequestsException"),
    "limit_exceeded": aws_error("LimitExceededException"),
    "http_500": lambda request: httpx.Response(
        500,
        text="<html><body>Internal Server Error</body></html>",
        headers={"content-type": "text/html"},
    ),
    "http_503": lambda request: httpx.Response(503),
    "read_timeout": raising(httpx.ReadTimeout),
    "connect_error": raising(httpx.ConnectError),
    "malformed_json": lambda request: httpx.Response(
        200, content=b'{"IdentityId": "eu-central-1:', headers={"content-type": AMZ_JSON}
    ),
    "no_credentials_in_answer": lambda request: amz_json(200, {"Unexpected": True}),
}
DENIED_FAULTS: dict[str, Fault] = {
    "not_authorized": aws_error("NotAuthorizedException"),
    "namespaced_not_authorized": aws_error("com.amazonaws.cognito.identity#NotAuthorizedException"),
    "not_authorized_in_header": lambda request: httpx.Response(
        400,
        content=b"{}",
        headers={"x-amzn-errortype": "NotAuthorizedException:http://internal.amazon.com/"},
    ),
}
MISCONFIGURED_FAULTS: dict[str, Fault] = {
    "resource_not_found": aws_error("ResourceNotFoundException"),
    "invalid_parameter": aws_error("InvalidParameterException"),
}
ALL_FAULTS = {**UNAVAILABLE_FAULTS, **DENIED_FAULTS, **MISCONFIGURED_FAULTS}
IDENTITY_ERRORS = (CredentialsUnavailableError, CredentialsDeniedError, IdentityPoolConfigError)


def fake_settings(issuer: LocalIssuer, **overrides: Any) -> CognitoSettings:
    values: dict[str, Any] = {
        "token_use": "id",
        "identity_pool_id": FAKE_IDENTITY_POOL_ID,
        "identity_endpoint": FAKE_ENDPOINT,
    }
    values.update(overrides)
    return issuer.settings(**values)


@pytest.fixture
def fake(issuer: LocalIssuer) -> FakeCognito:
    return FakeCognito(issuer)


@pytest.fixture
async def fake_client(issuer: LocalIssuer, fake: FakeCognito) -> AsyncIterator[IdentityPoolClient]:
    http = httpx.AsyncClient(transport=httpx.MockTransport(fake.handle))
    client = IdentityPoolClient(fake_settings(issuer), http_client=http)
    yield client
    await client.aclose()
    await http.aclose()


def roles_claim(*roles: str) -> dict[str, Any]:
    """The ``cognito:roles`` claim, for ``LocalIssuer.id_token(**roles_claim(...))``."""
    return {"cognito:roles": list(roles)}


def new_user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def test_requests_are_unsigned_json_1_1_with_the_user_pool_login(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    id_token = issuer.id_token(new_user())

    creds = await fake_client.credentials_for(id_token)

    logins = {f"cognito-idp.eu-central-1.amazonaws.com/{issuer.user_pool_id}": id_token}
    assert [(call.action, call.body) for call in fake.calls] == [
        (GET_ID, {"IdentityPoolId": FAKE_IDENTITY_POOL_ID, "Logins": logins}),
        (GET_CREDENTIALS, {"IdentityId": creds.identity_id, "Logins": logins}),
    ]
    for call in fake.calls:
        assert call.headers["content-type"] == AMZ_JSON
        assert "authorization" not in call.headers
        assert "x-amz-security-token" not in call.headers
    assert (creds.access_key_id, creds.secret_key, creds.session_token) == (
        FAKE_ACCESS_KEY,
        FAKE_SECRET,
        FAKE_SESSION,
    )


async def test_role_not_in_cognito_roles_is_denied_without_a_call(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    id_token = issuer.id_token(new_user(), **roles_claim(ROLE_READER))

    with pytest.raises(CredentialsDeniedError) as caught:
        await fake_client.credentials_for(id_token, role_arn=ROLE_WRITER)

    assert caught.value.status_code == 403
    assert fake.calls == []


async def test_role_without_any_cognito_roles_is_denied_without_a_call(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    with pytest.raises(CredentialsDeniedError):
        await fake_client.credentials_for(issuer.id_token(new_user()), role_arn=ROLE_READER)

    assert fake.calls == []


async def test_role_in_cognito_roles_is_sent_as_custom_role_arn(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    id_token = issuer.id_token(new_user(), **roles_claim(ROLE_READER, ROLE_WRITER))

    await fake_client.credentials_for(id_token, role_arn=ROLE_WRITER)

    assert [call.action for call in fake.calls] == [GET_ID, GET_CREDENTIALS]
    assert "CustomRoleArn" not in fake.calls[0].body
    assert fake.calls[1].body["CustomRoleArn"] == ROLE_WRITER


async def test_each_role_has_its_own_cache_entry(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    id_token = issuer.id_token(new_user(), **roles_claim(ROLE_READER))

    for _ in range(2):
        await fake_client.credentials_for(id_token)
        await fake_client.credentials_for(id_token, role_arn=ROLE_READER)

    assert fake.count(GET_ID) == 1
    assert [call.body.get("CustomRoleArn") for call in fake.calls[1:]] == [None, ROLE_READER]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("fault", UNAVAILABLE_FAULTS.values(), ids=UNAVAILABLE_FAULTS.keys())
async def test_transient_failure_is_credentials_unavailable(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    action: str,
    fault: Fault,
) -> None:
    fake.faults[action] = fault

    with pytest.raises(CredentialsUnavailableError) as caught:
        await fake_client.credentials_for(issuer.id_token(new_user()))

    assert caught.value.status_code == 503
    assert caught.value.retry_after >= 1


@pytest.mark.parametrize("status", [400, 429])
async def test_retry_after_of_a_throttle_is_honoured(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient, status: int
) -> None:
    fake.faults[GET_ID] = aws_error("TooManyRequestsException", status, {"Retry-After": "7"})

    with pytest.raises(CredentialsUnavailableError) as caught:
        await fake_client.credentials_for(issuer.id_token(new_user()))

    assert caught.value.retry_after == 7


# Regression: a 429 without an AWS error type used to be treated as misconfiguration (500).
async def test_bare_http_429_is_credentials_unavailable(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    fake.faults[GET_ID] = lambda request: httpx.Response(
        429, text="Too Many Requests", headers={"Retry-After": "7"}
    )

    with pytest.raises(CredentialsUnavailableError) as caught:
        await fake_client.credentials_for(issuer.id_token(new_user()))

    assert caught.value.retry_after == 7


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("fault", DENIED_FAULTS.values(), ids=DENIED_FAULTS.keys())
async def test_not_authorized_is_credentials_denied(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    action: str,
    fault: Fault,
) -> None:
    fake.faults[action] = fault

    with pytest.raises(CredentialsDeniedError) as caught:
        await fake_client.credentials_for(issuer.id_token(new_user()))

    assert caught.value.status_code == 403
    assert caught.value.code == "credentials_denied"


def error_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.levelno >= logging.ERROR]


MISCONFIGURED_CALLS = [
    ("ResourceNotFoundException", GET_ID),  # for GetCredentials: a forgotten identity (below)
    ("InvalidParameterException", GET_ID),
    ("InvalidParameterException", GET_CREDENTIALS),
]


@pytest.mark.parametrize(("kind", "action"), MISCONFIGURED_CALLS)
async def test_misconfigured_pool_is_a_config_error_logged_once(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    caplog: pytest.LogCaptureFixture,
    action: str,
    kind: str,
) -> None:
    fake.faults[action] = aws_error(kind)
    caplog.set_level(logging.DEBUG)

    for _ in range(5):
        with pytest.raises(IdentityPoolConfigError) as caught:
            await fake_client.credentials_for(issuer.id_token(new_user()))
        assert caught.value.status_code == 500

    assert fake.count(action) == 5
    [record] = error_records(caplog)
    assert FAKE_IDENTITY_POOL_ID in record.getMessage()
    assert kind in record.getMessage()


async def test_an_identity_forgotten_again_right_after_get_id_is_a_config_error_logged_once(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.faults[GET_CREDENTIALS] = aws_error("ResourceNotFoundException")

    for _ in range(3):
        with pytest.raises(IdentityPoolConfigError):
            await fake_client.credentials_for(issuer.id_token(new_user()))

    assert (fake.count(GET_ID), fake.count(GET_CREDENTIALS)) == (6, 6)  # one retry each
    [record] = error_records(caplog)
    assert "ResourceNotFoundException" in record.getMessage()


# Regression: InvalidIdentityPoolConfigurationException (no role / bad trust policy) used to
# be a silent 403; it is the pool's misconfiguration.
async def test_invalid_identity_pool_configuration_is_a_config_error(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake.faults[GET_CREDENTIALS] = aws_error("InvalidIdentityPoolConfigurationException")

    with pytest.raises(IdentityPoolConfigError):
        await fake_client.credentials_for(issuer.id_token(new_user()))

    assert len(error_records(caplog)) == 1


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("fault", ALL_FAULTS.values(), ids=ALL_FAULTS.keys())
async def test_nothing_is_cached_after_a_failure(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    action: str,
    fault: Fault,
) -> None:
    id_token = issuer.id_token(new_user())
    fake.faults[action] = fault
    with pytest.raises(IDENTITY_ERRORS):
        await fake_client.credentials_for(id_token)
    del fake.faults[action]

    creds = await fake_client.credentials_for(id_token)

    assert creds.secret_key == FAKE_SECRET
    forgotten = action == GET_CREDENTIALS and fault is MISCONFIGURED_FAULTS["resource_not_found"]
    assert fake.count(action) == (3 if forgotten else 2)  # a forgotten identity: one retry


async def test_concurrent_callers_share_one_failed_exchange(
    issuer: LocalIssuer, fake: FakeCognito, fake_client: IdentityPoolClient
) -> None:
    id_token = issuer.id_token(new_user())
    fake.faults[GET_CREDENTIALS] = aws_error("TooManyRequestsException")

    results = await asyncio.gather(
        *(fake_client.credentials_for(id_token) for _ in range(20)), return_exceptions=True
    )

    assert all(isinstance(result, CredentialsUnavailableError) for result in results)
    assert fake.count(GET_ID) == 1
    assert fake.count(GET_CREDENTIALS) == 1


async def test_repr_and_str_hide_secret_and_session_token(
    issuer: LocalIssuer, fake_client: IdentityPoolClient
) -> None:
    creds = await fake_client.credentials_for(issuer.id_token(new_user()))

    for text in (repr(creds), str(creds)):
        assert FAKE_ACCESS_KEY in text
        assert FAKE_SECRET not in text
        assert FAKE_SESSION not in text


async def test_logs_never_contain_secret_session_token_or_id_token(
    issuer: LocalIssuer,
    fake: FakeCognito,
    fake_client: IdentityPoolClient,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    id_tokens = []
    for fault in [None, *ALL_FAULTS.values()]:
        id_token = issuer.id_token(new_user())
        id_tokens.append(id_token)
        fake.faults.clear()
        if fault is not None:
            fake.faults[GET_CREDENTIALS] = fault
        with suppress(*IDENTITY_ERRORS):
            await fake_client.credentials_for(id_token)

    assert error_records(caplog)  # the failures were logged: the check below is not vacuous
    texts = [caplog.text, *(record.getMessage() for record in caplog.records)]
    for secret in [FAKE_SECRET, FAKE_SESSION, *id_tokens]:
        assert not any(secret in text for text in texts)


# -- the FastAPI dependency --------------------------------------------------------


OpenApi = Callable[
    [CognitoSettings, httpx.AsyncBaseTransport], AbstractAsyncContextManager[httpx.AsyncClient]
]


@pytest.fixture
def open_api(monkeypatch: pytest.MonkeyPatch) -> OpenApi:
    """``open_api(settings, transport)``: a running app with ``GET /aws`` and a client for it."""

    @asynccontextmanager
    async def open_app(
        settings: CognitoSettings, transport: httpx.AsyncBaseTransport
    ) -> AsyncIterator[httpx.AsyncClient]:
        async with httpx.AsyncClient(transport=transport) as http:
            auth: CognitoAuth[CognitoUser] = CognitoAuth(settings, http_client=http)
            app = FastAPI(lifespan=auth.lifespan)

            @app.get("/aws")
            async def aws(creds: AwsCredentials = Depends(auth.aws_credentials)) -> dict[str, str]:
                return {"identity_id": creds.identity_id}

            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://test"
                ) as client,
            ):
                yield client

    return open_app


def headers(bearer: str, id_token: str | None = None) -> dict[str, str]:
    values = {"Authorization": f"Bearer {bearer}"}
    if id_token is not None:
        values["X-Cognito-Id-Token"] = id_token
    return values


async def test_moto_dependency_exchanges_the_header_id_token(
    moto_server: str, moto_pool: CognitoPool, open_api: OpenApi
) -> None:
    tokens = moto_tokens(moto_pool, "alice")
    transport = RecordingTransport(httpx.AsyncHTTPTransport(), expires_in=3600)

    async with open_api(moto_settings(moto_pool, moto_server), transport) as client:
        response = await client.get(
            "/aws", headers=headers(tokens["AccessToken"], tokens["IdToken"])
        )

    assert response.status_code == 200
    assert response.json()["identity_id"] == transport.calls[1][1]["IdentityId"]
    assert [action for action, _ in transport.calls] == [GET_ID, GET_CREDENTIALS]
    assert transport.calls[0][1]["Logins"] == {moto_pool.login_provider: tokens["IdToken"]}


def fake_transport(fake: FakeCognito) -> httpx.MockTransport:
    return httpx.MockTransport(fake.handle)


async def test_dependency_with_matching_id_token_header_returns_credentials(
    issuer: LocalIssuer, fake: FakeCognito, open_api: OpenApi
) -> None:
    user = new_user()
    settings = fake_settings(issuer, token_use="access")

    async with open_api(settings, fake_transport(fake)) as client:
        response = await client.get(
            "/aws", headers=headers(issuer.access_token(user), issuer.id_token(user))
        )

    assert response.status_code == 200
    assert response.json()["identity_id"] == fake.calls[1].body["IdentityId"]


async def test_dependency_with_another_users_id_token_is_403(
    issuer: LocalIssuer, fake: FakeCognito, open_api: OpenApi
) -> None:
    settings = fake_settings(issuer, token_use="access")

    async with open_api(settings, fake_transport(fake)) as client:
        response = await client.get(
            "/aws", headers=headers(issuer.access_token(new_user()), issuer.id_token(new_user()))
        )

    assert response.status_code == 403
    assert response.json()["code"] == "credentials_denied"
    assert fake.calls == []


async def test_dependency_without_id_token_header_is_401(
    issuer: LocalIssuer, fake: FakeCognito, open_api: OpenApi
) -> None:
    settings = fake_settings(issuer, token_use="access")

    async with open_api(settings, fake_transport(fake)) as client:
        response = await client.get("/aws", headers=headers(issuer.access_token(new_user())))

    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert fake.calls == []


async def test_dependency_with_id_token_bearer_needs_no_header(
    issuer: LocalIssuer, fake: FakeCognito, open_api: OpenApi
) -> None:
    async with open_api(fake_settings(issuer, token_use="id"), fake_transport(fake)) as client:
        response = await client.get("/aws", headers=headers(issuer.id_token(new_user())))

    assert response.status_code == 200
    assert response.json()["identity_id"] == fake.calls[1].body["IdentityId"]


async def test_dependency_when_identity_pool_throttles_is_503_with_retry_after(
    issuer: LocalIssuer, fake: FakeCognito, open_api: OpenApi
) -> None:
    fake.faults[GET_ID] = aws_error("TooManyRequestsException", headers={"Retry-After": "7"})
    user = new_user()

    async with open_api(fake_settings(issuer, token_use="access"), fake_transport(fake)) as client:
        response = await client.get(
            "/aws", headers=headers(issuer.access_token(user), issuer.id_token(user))
        )

    assert response.status_code == 503
    assert response.headers["retry-after"] == "7"
    assert response.json()["code"] == "credentials_unavailable"
    assert FAKE_SECRET not in response.text


async def test_dependency_with_a_closed_user_http_client_is_503_with_retry_after(
    issuer: LocalIssuer, fake: FakeCognito
) -> None:
    http = httpx.AsyncClient(transport=fake_transport(fake))
    auth: CognitoAuth[CognitoUser] = CognitoAuth(fake_settings(issuer), http_client=http)
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/aws")
    async def aws(creds: AwsCredentials = Depends(auth.aws_credentials)) -> dict[str, str]:
        return {"identity_id": creds.identity_id}

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://test") as client,
    ):
        warm = await client.get("/aws", headers=headers(issuer.id_token(new_user())))
        await http.aclose()  # the app's own client, closed while the app runs
        response = await client.get("/aws", headers=headers(issuer.id_token(new_user())))

    assert warm.status_code == 200
    assert response.status_code == 503
    assert response.json()["code"] == "credentials_unavailable"
    assert response.headers["retry-after"] == "1"


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("NotAuthorizedException", 403, "credentials_denied"),
        ("ResourceNotFoundException", 500, "identity_pool_misconfigured"),
    ],
)
async def test_dependency_maps_identity_pool_errors_to_status(
    issuer: LocalIssuer, fake: FakeCognito, open_api: OpenApi, kind: str, status: int, code: str
) -> None:
    fake.faults[GET_CREDENTIALS] = aws_error(kind)

    async with open_api(fake_settings(issuer, token_use="id"), fake_transport(fake)) as client:
        response = await client.get("/aws", headers=headers(issuer.id_token(new_user())))

    assert response.status_code == status
    assert response.json()["code"] == code
