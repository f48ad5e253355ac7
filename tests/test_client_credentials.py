"""Specification of ``CognitoClientCredentials`` (DESIGN §18): an ``httpx.Auth`` for a
service's outgoing calls, against the local issuer's real token endpoint.

Proves that many calls share one token request, that a token is replaced 60 s before it
expires, that concurrent calls (tasks and threads) wait for one token request, that a
401 from the called service is retried exactly once with a fresh token, that a refused
first secret is retried once with the second, that refusals and outages are errors with
codes, that construction without a secret or a token endpoint names the variable to
set, and that the secret never reaches a repr or a log line.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import SecretStr

from fastapi_cognito_guard import (
    ClientCredentialsError,
    CognitoClientCredentials,
    CognitoSettings,
    OAuthUnavailableError,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import claims_of
from tests.uvicorn_server import uvicorn_server

SECRET = "svc+secret/with=odd%chars"


class CalledService:
    """The service called: records each bearer token, refuses those in ``refused``."""

    def __init__(self) -> None:
        self.tokens: list[str] = []
        self.refused: set[str] = set()
        self.app = FastAPI()

        @self.app.get("/orders")
        async def orders(request: Request) -> JSONResponse:
            token = request.headers.get("authorization", "").removeprefix("Bearer ")
            self.tokens.append(token)
            if token in self.refused:
                return JSONResponse({"code": "revoked"}, status_code=401)
            return JSONResponse({"scope": claims_of(token)["scope"]})


@pytest.fixture(scope="module")
def served() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer(client_id="orders-worker", client_secret=SECRET)
    with issuer.serve():
        yield issuer


@pytest.fixture
def issuer(served: LocalIssuer) -> LocalIssuer:
    served.reset()
    served.client_secret = SECRET
    return served


@pytest.fixture
def service() -> CalledService:
    return CalledService()


def credentials(issuer: LocalIssuer, **options: object) -> CognitoClientCredentials:
    return CognitoClientCredentials(issuer.settings(), scopes=["orders/read"], **options)  # type: ignore[arg-type]


def async_client(service: CalledService, auth: CognitoClientCredentials) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=service.app), base_url="http://orders", auth=auth
    )


@contextmanager
def sync_client(service: CalledService) -> Iterator[httpx.Client]:
    """A plain ``httpx.Client`` (the library the auth is written for) to the service
    served by uvicorn on 127.0.0.1: Starlette's ``TestClient`` may run on ``httpx2``,
    whose clients take only its own ``Auth`` classes."""
    with uvicorn_server(service.app) as (url, _), httpx.Client(base_url=url) as http:
        yield http


def token_requests(issuer: LocalIssuer) -> int:
    return issuer.calls["token:client_credentials"]


async def test_many_calls_share_one_token_request(
    issuer: LocalIssuer, service: CalledService
) -> None:
    async with async_client(service, credentials(issuer)) as http:
        for _ in range(5):
            response = await http.get("/orders")
            assert response.json() == {"scope": "orders/read"}

    assert token_requests(issuer) == 1
    assert len(set(service.tokens)) == 1


def test_the_synchronous_flow_shares_one_token_request(
    issuer: LocalIssuer, service: CalledService
) -> None:
    auth = credentials(issuer)
    with sync_client(service) as http:
        for _ in range(3):
            assert http.get("/orders", auth=auth).status_code == 200

    assert token_requests(issuer) == 1


async def test_a_token_within_60_seconds_of_expiry_is_replaced(
    issuer: LocalIssuer, service: CalledService
) -> None:
    issuer.token_ttl_seconds = 60  # already inside the margin when it arrives

    async with async_client(service, credentials(issuer)) as http:
        await http.get("/orders")
        await http.get("/orders")

    assert token_requests(issuer) == 2


async def test_a_token_outside_the_margin_is_kept(
    issuer: LocalIssuer, service: CalledService
) -> None:
    issuer.token_ttl_seconds = 120

    async with async_client(service, credentials(issuer)) as http:
        await http.get("/orders")
        await http.get("/orders")

    assert token_requests(issuer) == 1


async def test_concurrent_tasks_wait_for_one_token_request(
    issuer: LocalIssuer, service: CalledService
) -> None:
    issuer.fail("token", status=None, delay=0.2)  # the first request is still running

    async with async_client(service, credentials(issuer)) as http:
        answers = await asyncio.gather(*(http.get("/orders") for _ in range(20)))

    assert {answer.status_code for answer in answers} == {200}
    assert token_requests(issuer) == 1


def test_concurrent_threads_wait_for_one_token_request(
    issuer: LocalIssuer, service: CalledService
) -> None:
    issuer.fail("token", status=None, delay=0.2)
    auth = credentials(issuer)

    with sync_client(service) as http, ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: http.get("/orders", auth=auth).status_code, range(8)))

    assert statuses == [200] * 8
    assert token_requests(issuer) == 1


async def test_a_401_is_retried_once_with_a_fresh_token(
    issuer: LocalIssuer, service: CalledService
) -> None:
    async with async_client(service, credentials(issuer)) as http:
        await http.get("/orders")
        service.refused.add(service.tokens[0])  # revoked at the called service

        response = await http.get("/orders")

    assert response.status_code == 200
    assert token_requests(issuer) == 2
    assert len(service.tokens) == 3
    assert service.tokens[2] != service.tokens[0]


def test_a_401_is_retried_once_in_the_synchronous_flow(
    issuer: LocalIssuer, service: CalledService
) -> None:
    auth = credentials(issuer)
    with sync_client(service) as http:
        http.get("/orders", auth=auth)
        service.refused.add(service.tokens[0])

        assert http.get("/orders", auth=auth).status_code == 200

    assert token_requests(issuer) == 2


async def test_a_second_401_is_the_answer(issuer: LocalIssuer, service: CalledService) -> None:
    async with async_client(service, credentials(issuer)) as http:
        await http.get("/orders")
        service.refused.add(service.tokens[0])
        issuer.fail(
            "token",
            status=200,
            body=f'{{"access_token": "{service.tokens[0]}", "expires_in": 3600}}'.encode(),
            content_type="application/json",
        )

        response = await http.get("/orders")

    assert response.status_code == 401
    assert len(service.tokens) == 3  # the first call, the refused one, one retry


async def test_a_refused_first_secret_is_retried_once_with_the_second(
    issuer: LocalIssuer, service: CalledService
) -> None:
    issuer.token_ttl_seconds = 60  # every call gets a new token
    auth = credentials(issuer, client_secret=["retired-secret", SECRET])

    async with async_client(service, auth) as http:
        assert (await http.get("/orders")).status_code == 200
        await http.get("/orders")

    assert issuer.calls["token"] == 3  # refused, accepted, then the accepted one first


async def test_the_resource_becomes_the_tokens_aud(
    issuer: LocalIssuer, service: CalledService
) -> None:
    async with async_client(service, credentials(issuer, resource="https://orders")) as http:
        await http.get("/orders")

    assert claims_of(service.tokens[0])["aud"] == "https://orders"


async def test_a_refused_grant_is_an_error_with_cognitos_code(
    issuer: LocalIssuer, service: CalledService, caplog: pytest.LogCaptureFixture
) -> None:
    auth = credentials(issuer, client_secret="wrong+secret")

    async with async_client(service, auth) as http:
        with pytest.raises(ClientCredentialsError) as caught:
            await http.get("/orders")

    assert caught.value.code == "invalid_client"
    assert service.tokens == []
    assert "wrong+secret" not in caplog.text
    assert "wrong+secret" not in repr(auth)


async def test_an_unavailable_token_endpoint_is_oauth_unavailable(
    issuer: LocalIssuer, service: CalledService
) -> None:
    issuer.fail("token", status=503)

    async with async_client(service, credentials(issuer)) as http:
        with pytest.raises(OAuthUnavailableError):
            await http.get("/orders")


def test_the_secret_never_reaches_a_repr_or_a_log_line(
    issuer: LocalIssuer, service: CalledService, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    auth = credentials(issuer)
    with sync_client(service) as http:
        http.get("/orders", auth=auth)

    assert SECRET not in repr(auth)
    assert SECRET not in caplog.text


def test_a_public_client_is_refused_naming_the_variable() -> None:
    settings = CognitoSettings(
        user_pool_id="eu-central-1_Test", client_ids=["web"], domain="auth.example.com"
    )

    with pytest.raises(ValueError, match="COGNITO_CLIENT_SECRET"):
        CognitoClientCredentials(settings)


def test_settings_without_a_token_endpoint_are_refused_naming_the_variable() -> None:
    settings = CognitoSettings(
        user_pool_id="eu-central-1_Test", client_ids=["web"], client_secret=SecretStr("s")
    )

    with pytest.raises(ValueError, match="COGNITO_DOMAIN"):
        CognitoClientCredentials(settings)


def test_an_explicit_token_url_needs_no_domain() -> None:
    settings = CognitoSettings(user_pool_id="eu-central-1_Test", client_ids=["web"])

    auth = CognitoClientCredentials(
        settings, client_secret="s", token_url="https://auth.example.com/oauth2/token"
    )

    assert auth.token_url == "https://auth.example.com/oauth2/token"


def test_a_plain_http_token_url_to_another_host_is_refused() -> None:
    settings = CognitoSettings(user_pool_id="eu-central-1_Test", client_ids=["web"])

    with pytest.raises(ValueError, match="https"):
        CognitoClientCredentials(
            settings, client_secret="s", token_url="http://auth.example.com/oauth2/token"
        )
