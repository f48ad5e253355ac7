"""Specification of RFC 9728 protected-resource metadata (DESIGN §18):
``auth.protected_resource_router()`` and the ``resource_metadata`` challenge parameter.

Proves that the metadata is served at ``/.well-known/oauth-protected-resource`` with the
fields of RFC 9728 §2 (``resource`` the app's base URL without audiences,
``authorization_servers`` each pool's issuer, ``scopes_supported`` the scopes the app's
guards name, gathered when served, ``bearer_methods_supported``), publicly; that once it
is served every 401 challenge (missing token, bad token, step-up) names it with
``resource_metadata`` and a 403 does not; and that without the router nothing changes.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Security

from fastapi_cognito_guard import CognitoAuth, CognitoAuthMiddleware, CognitoUser
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.web.protected_resource import ProtectedResource
from tests.conftest import OTHER_POOL_ID
from tests.helpers import bearer

BASE = "http://api.example.test"
METADATA = f"{BASE}/.well-known/oauth-protected-resource"


def guarded_app(auth: CognitoAuth[Any], *, metadata: bool = True) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)
    if metadata:
        app.include_router(auth.protected_resource_router())
    read = auth.require_scope("orders/read")
    either = auth.require_scope("reports/a", "reports/b", all=False)
    recent = auth.require_auth(max_age=300)

    @app.get("/orders")
    async def orders(user: CognitoUser = Depends(read)) -> str:
        return user.sub

    @app.post("/orders")
    async def write(
        user: CognitoUser = Security(auth.current_user, scopes=["orders/write"]),
    ) -> str:
        return user.sub

    @app.get("/reports")
    async def reports(user: CognitoUser = Depends(either)) -> str:
        return user.sub

    @app.get("/vault")
    async def vault(user: CognitoUser = Depends(recent)) -> str:
        return user.sub

    return app


async def client_for(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client,
    ):
        yield client


@pytest.fixture
def app(auth: CognitoAuth[Any]) -> FastAPI:
    return guarded_app(auth)


@pytest.fixture
async def api(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async for client in client_for(app):
        yield client


async def test_metadata_has_the_fields_of_rfc_9728(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.get("/.well-known/oauth-protected-resource")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "resource": BASE,
        "authorization_servers": [issuer.issuer],
        "scopes_supported": ["orders/read", "orders/write", "reports/a", "reports/b"],
        "bearer_methods_supported": ["header"],
    }


async def test_with_audiences_the_resource_is_the_first_and_its_path_follows_the_well_known(
    issuer: LocalIssuer, jwks_http: httpx.AsyncClient
) -> None:
    settings = issuer.settings(audiences=["https://api.example.test/orders", "urn:other"])
    auth: CognitoAuth[Any] = CognitoAuth(settings, http_client=jwks_http)
    async for api in client_for(guarded_app(auth)):
        served = await api.get("/.well-known/oauth-protected-resource/orders")
        bare = await api.get("/.well-known/oauth-protected-resource")
        challenge = (await api.get("/orders")).headers["www-authenticate"]

    assert served.json()["resource"] == "https://api.example.test/orders"
    assert bare.status_code == 404  # RFC 9728 §3.1: the resource's path follows it
    # formed from the resource identifier, as RFC 9728 §3.1 says
    metadata = "https://api.example.test/.well-known/oauth-protected-resource/orders"
    assert f'resource_metadata="{metadata}"' in challenge


async def test_scopes_are_gathered_when_served(
    auth: CognitoAuth[Any], app: FastAPI, api: httpx.AsyncClient
) -> None:
    later = auth.require_scope("late/scope")

    @app.get("/late")
    async def late(user: CognitoUser = Depends(later)) -> str:
        return user.sub

    document = (await api.get("/.well-known/oauth-protected-resource")).json()

    assert "late/scope" in document["scopes_supported"]


async def test_every_pool_is_an_authorization_server(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    auth: CognitoAuth[Any] = CognitoAuth([issuer.settings(), other_issuer.settings()])

    servers = ProtectedResource(auth.settings).authorization_servers

    assert servers == [issuer.issuer, other_issuer.issuer]
    assert OTHER_POOL_ID in servers[1]


@pytest.mark.parametrize(
    ("headers", "path"),
    [
        ({}, "/orders"),
        (bearer("not.a.token"), "/orders"),
    ],
)
async def test_401_challenges_name_the_metadata(
    api: httpx.AsyncClient, headers: dict[str, str], path: str
) -> None:
    response = await api.get(path, headers=headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"].endswith(f', resource_metadata="{METADATA}"')


async def test_the_step_up_challenge_names_the_metadata(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.access_token(auth_time=int(time.time()) - 3600)

    challenge = (await api.get("/vault", headers=bearer(token))).headers["www-authenticate"]

    assert challenge.startswith('Bearer error="insufficient_user_authentication"')
    assert challenge.endswith(f'max_age="300", resource_metadata="{METADATA}"')


async def test_a_403_does_not_name_it(api: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    response = await api.get("/orders", headers=bearer(issuer.access_token(scopes=[])))

    assert response.status_code == 403
    assert "resource_metadata" not in response.headers["www-authenticate"]


async def test_without_the_router_challenges_are_unchanged(auth: CognitoAuth[Any]) -> None:
    async for client in client_for(guarded_app(auth, metadata=False)):
        response = await client.get("/orders")
        missing = await client.get("/.well-known/oauth-protected-resource")

    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    assert missing.status_code == 404


async def test_the_middlewares_401_names_the_metadata(auth: CognitoAuth[Any]) -> None:
    app = FastAPI(lifespan=auth.lifespan)
    app.include_router(auth.protected_resource_router())
    app.add_middleware(
        CognitoAuthMiddleware,
        auth=auth,
        exclude_paths=["/health", "/.well-known/oauth-protected-resource"],
    )

    @app.get("/orders")
    async def orders() -> str:
        return "never"

    async for client in client_for(app):
        refused = await client.get("/orders")
        metadata = await client.get("/.well-known/oauth-protected-resource")

    assert refused.headers["www-authenticate"].endswith(f'resource_metadata="{METADATA}"')
    assert metadata.status_code == 200


async def test_scopes_of_require_any_are_supported_scopes(
    auth: CognitoAuth[Any], app: FastAPI, api: httpx.AsyncClient
) -> None:
    either = auth.require_any(groups=["staff"], scopes=["either/scope"])

    @app.get("/either")
    async def either_route(user: CognitoUser = Depends(either)) -> str:
        return user.sub

    document = (await api.get("/.well-known/oauth-protected-resource")).json()

    assert "either/scope" in document["scopes_supported"]
