"""Specification of step-up (DESIGN §7, RFC 9470): ``require_auth(max_age=, acr=, amr=)``.

Proves that a caller whose sign-in is too old, at another level or without a method gets
401 with RFC 9470 §3's challenge field by field and the code
``insufficient_user_authentication`` (never 403 or 500), on ``CognitoAuth`` and at
module level, reading the claims of access and ID tokens alike; and that a browser
session is sent through ``/auth/login`` with ``max_age`` / ``acr_values`` to the local
hosted UI, which makes the user authenticate again, and comes back upgraded (the new
sign-in replacing the session), while a sign-in that cannot meet the requirement ends
in the 401 instead of a loop.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from fastapi import Depends, FastAPI

from fastapi_cognito_guard import CognitoAuth, CognitoUser, require_auth
from fastapi_cognito_guard.testing import LocalIssuer, LocalUser
from tests.helpers import bearer, claims_of
from tests.sessions_support import (
    SECRET,
    authorize,
    browser,
    open_session,
    query_of,
    session_cookies,
    start_sign_in,
)

HTML = {"Accept": "text/html"}
ACR_MFA = "urn:example:mfa"
ACR_HW = "urn:example:hw"


def step_up_app(auth: CognitoAuth[Any]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)
    recent_sign_in = auth.require_auth(max_age=300)
    high_level = auth.require_auth(acr=(ACR_MFA, ACR_HW))
    recent_and_high = auth.require_auth(max_age=60, acr=(ACR_MFA,))
    second_factor = auth.require_auth(amr=("mfa",))

    @app.get("/recent")
    async def recent(user: CognitoUser = Depends(recent_sign_in)) -> str:
        return user.sub

    @app.get("/level")
    async def level(user: CognitoUser = Depends(high_level)) -> str:
        return user.sub

    @app.get("/both")
    async def both(user: CognitoUser = Depends(recent_and_high)) -> str:
        return user.sub

    @app.get("/mfa")
    async def mfa(user: CognitoUser = Depends(second_factor)) -> str:
        return user.sub

    @app.get("/module")
    async def module(user: CognitoUser = Depends(require_auth(max_age=300))) -> str:
        return user.sub

    return app


@pytest.fixture
async def api(auth: CognitoAuth[Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = step_up_app(auth)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        yield c


def hour_old(issuer: LocalIssuer, **claims: Any) -> str:
    return issuer.access_token(auth_time=int(time.time()) - 3600, **claims)


# -- the RFC 9470 challenge --------------------------------------------------------------


async def test_an_old_sign_in_gets_the_rfc_9470_challenge_with_max_age(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.get("/recent", headers=bearer(hour_old(issuer)))

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="this route needs a sign-in within the last 300 seconds", '
        'max_age="300"'
    )
    assert response.json()["code"] == "insufficient_user_authentication"


async def test_another_level_gets_the_challenge_with_acr_values(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.get("/level", headers=bearer(issuer.access_token(acr="urn:example:pwd")))

    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer error="insufficient_user_authentication", ')
    assert re.search(r'error_description="[^"]+"', challenge)
    assert f'acr_values="{ACR_MFA} {ACR_HW}"' in challenge
    assert "max_age" not in challenge


async def test_max_age_and_acr_values_together(api: httpx.AsyncClient, issuer: LocalIssuer) -> None:
    response = await api.get("/both", headers=bearer(hour_old(issuer)))

    challenge = response.headers["www-authenticate"]
    assert challenge.endswith(f', max_age="60", acr_values="{ACR_MFA}"')


async def test_every_parameter_is_a_quoted_auth_param(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.get("/both", headers=bearer(hour_old(issuer)))

    scheme, _, params = response.headers["www-authenticate"].partition(" ")
    names = re.findall(r'(\w+)="(?:[^"\\]|\\.)*"(?:, |$)', params)
    assert scheme == "Bearer"
    assert names == ["error", "error_description", "max_age", "acr_values"]


@pytest.mark.parametrize(
    ("path", "claims"),
    [
        ("/recent", {"auth_time": int(time.time()) - 10}),
        ("/level", {"acr": ACR_HW}),
        ("/mfa", {"amr": ["pwd", "mfa"]}),
        ("/both", {"acr": ACR_MFA}),
    ],
)
async def test_a_sign_in_that_meets_the_requirement_passes(
    api: httpx.AsyncClient, issuer: LocalIssuer, path: str, claims: dict[str, Any]
) -> None:
    response = await api.get(path, headers=bearer(issuer.access_token(**claims)))

    assert response.status_code == 200, response.text


@pytest.mark.parametrize("amr", [["pwd"], [], None])  # a non-list amr is malformed (§4)
async def test_a_missing_method_is_a_401_never_a_403_or_500(
    api: httpx.AsyncClient, issuer: LocalIssuer, amr: Any
) -> None:
    claims = {} if amr is None else {"amr": amr}
    response = await api.get("/mfa", headers=bearer(issuer.access_token(**claims)))

    assert response.status_code == 401
    assert response.json()["code"] == "insufficient_user_authentication"


async def test_the_module_level_guard_uses_the_apps_auth(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    assert (await api.get("/module", headers=bearer(hour_old(issuer)))).status_code == 401
    assert (await api.get("/module", headers=bearer(issuer.access_token()))).status_code == 200


async def test_id_tokens_are_read_alike(issuer: LocalIssuer, jwks_http: httpx.AsyncClient) -> None:
    auth: CognitoAuth[Any] = CognitoAuth(issuer.settings(token_use="id"), http_client=jwks_http)
    app = step_up_app(auth)
    old = issuer.id_token(auth_time=int(time.time()) - 3600)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        assert (await c.get("/recent", headers=bearer(old))).status_code == 401
        assert (await c.get("/recent", headers=bearer(issuer.id_token()))).status_code == 200


async def test_a_bearer_navigation_gets_the_401_not_a_redirect(
    api: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    response = await api.get("/recent", headers={**bearer(hour_old(issuer)), **HTML})

    assert response.status_code == 401


@pytest.mark.parametrize("options", [{}, {"max_age": -5}, {"acr": "urn:one"}, {"amr": ("",)}])
def test_a_bad_requirement_fails_when_the_route_is_defined(
    auth: CognitoAuth[Any], options: dict[str, Any]
) -> None:
    with pytest.raises((ValueError, TypeError)):
        auth.require_auth(**options)


# -- the browser: sent to sign in again through the local hosted UI -------------------------


@pytest.fixture
def served(cognito_issuer_session: LocalIssuer) -> LocalIssuer:
    return cognito_issuer_session


def browser_app(issuer: LocalIssuer, **overrides: Any) -> FastAPI:
    auth: CognitoAuth[Any] = CognitoAuth(issuer.settings(session_secret=SECRET, **overrides))
    app = step_up_app(auth)
    app.include_router(auth.login_router())
    return app


async def signed_in(client: httpx.AsyncClient, issuer: LocalIssuer, user: LocalUser) -> None:
    issuer.login_as = user
    callback = await authorize(await start_sign_in(client, "/"))
    assert (await client.get(callback)).status_code == 302


def access_claims(client: httpx.AsyncClient) -> dict[str, Any]:
    (value,) = session_cookies(client).values()
    session = open_session(value)
    assert session is not None
    return claims_of(session.access_token)


async def test_a_stale_session_is_re_authenticated_with_max_age_and_upgraded(
    served: LocalIssuer,
) -> None:
    an_hour_ago = int(time.time()) - 3600
    async with browser(browser_app(served)) as client:
        await signed_in(client, served, LocalUser("alice", auth_time=an_hour_ago))
        first_session = access_claims(client)["origin_jti"]

        refused = await client.get("/recent", headers=HTML)
        assert refused.status_code == 302
        step_up = refused.headers["location"]
        assert urlsplit(step_up).path == "/auth/login"
        assert query_of(step_up) == {"next": "/recent", "max_age": "300"}

        login = await client.get(step_up)
        authorize_url = login.headers["location"]
        assert query_of(authorize_url)["max_age"] == "300"
        callback = await authorize(authorize_url)  # the hosted UI: alice authenticates again
        assert served.calls["authenticate"] == 1
        landed = await client.get(callback)
        assert landed.headers["location"] == "/recent"

        claims = access_claims(client)
        assert claims["origin_jti"] != first_session  # the new sign-in replaced the session
        assert claims["auth_time"] > an_hour_ago
        assert (await client.get("/recent", headers=HTML)).status_code == 200


async def test_acr_values_reach_the_hosted_ui_and_the_session_is_upgraded(
    served: LocalIssuer,
) -> None:
    async with browser(browser_app(served)) as client:
        await signed_in(client, served, LocalUser("alice"))

        step_up = (await client.get("/level", headers=HTML)).headers["location"]
        assert query_of(step_up)["acr_values"] == f"{ACR_MFA} {ACR_HW}"
        authorize_url = (await client.get(step_up)).headers["location"]
        await client.get(await authorize(authorize_url))

        assert access_claims(client)["acr"] == ACR_MFA
        assert (await client.get("/level", headers=HTML)).status_code == 200


async def test_a_sign_in_that_cannot_reach_the_requirement_ends_in_a_401_not_a_loop(
    served: LocalIssuer,
) -> None:
    async with browser(browser_app(served)) as client:
        await signed_in(client, served, LocalUser("alice"))  # no second factor
        step_up = (await client.get("/mfa", headers=HTML)).headers["location"]
        authorize_url = (await client.get(step_up)).headers["location"]
        await client.get(await authorize(authorize_url))

        again = await client.get("/mfa", headers=HTML)

    assert again.status_code == 401
    assert again.json()["code"] == "insufficient_user_authentication"


async def test_api_calls_of_a_session_get_the_401(served: LocalIssuer) -> None:
    async with browser(browser_app(served)) as client:
        await signed_in(client, served, LocalUser("alice", auth_time=int(time.time()) - 3600))

        response = await client.get("/recent", headers={"Accept": "application/json"})

    assert response.status_code == 401


async def test_login_passes_max_age_zero_as_prompt_login(served: LocalIssuer) -> None:
    async with browser(browser_app(served)) as client:
        response = await client.get(
            "/auth/login", params={"next": "/", "max_age": "0", "acr_values": ACR_MFA}
        )

    query = query_of(response.headers["location"])
    assert (query["max_age"], query["prompt"], query["acr_values"]) == ("0", "login", ACR_MFA)


@pytest.mark.parametrize(
    "params", [{"max_age": "-1"}, {"max_age": "1e3"}, {"acr_values": 'a"b'}, {"acr_values": ""}]
)
async def test_login_drops_malformed_step_up_parameters(
    served: LocalIssuer, params: dict[str, str]
) -> None:
    async with browser(browser_app(served)) as client:
        response = await client.get("/auth/login", params={"next": "/", **params})

    query = query_of(response.headers["location"])
    assert {"max_age", "acr_values", "prompt"}.isdisjoint(query)


async def test_login_resource_binds_the_sessions_access_token(served: LocalIssuer) -> None:
    api = "https://api.example.com"
    async with browser(browser_app(served, login_resource=api)) as client:
        served.login_as = "alice"
        authorize_url = await start_sign_in(client, "/")
        assert query_of(authorize_url)["resource"] == api
        await client.get(await authorize(authorize_url))

        assert access_claims(client)["aud"] == api
