"""Identity pools behind a browser session (§9 with §13): the session's ID token is
the one exchanged (no ``X-Cognito-Id-Token`` header), and a visitor without a
session keeps one guest identity across requests, counted at a loopback endpoint."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from fastapi_cognito_guard import AwsCredentials
from fastapi_cognito_guard.testing import LocalIssuer
from tests.identity_server import GET_CREDENTIALS, GET_ID, IdentityServer
from tests.sessions_support import browser, make_app, sign_in

IDENTITY_POOL_ID = "eu-central-1:00000000-0000-0000-0000-000000000001"


def identity_app(issuer: LocalIssuer, idp: IdentityServer) -> FastAPI:
    app = make_app(issuer, identity_pool_id=IDENTITY_POOL_ID, identity_endpoint=idp.url)
    auth = app.state.auth

    @app.get("/aws/identity")
    async def identity(creds: AwsCredentials = Depends(auth.aws_credentials)) -> dict[str, Any]:
        return {"identity_id": creds.identity_id}

    @app.get("/aws/guest")
    async def guest(creds: AwsCredentials = Depends(auth.guest_credentials)) -> dict[str, Any]:
        return {"identity_id": creds.identity_id}

    return app


async def test_a_signed_in_browser_gets_credentials_from_its_session_id_token(
    cognito_issuer_session: LocalIssuer,
) -> None:
    with IdentityServer() as idp:
        async with browser(identity_app(cognito_issuer_session, idp)) as client:
            await sign_in(client, cognito_issuer_session, "alice")
            first = await client.get("/aws/identity")
            second = await client.get("/aws/identity")
        assert first.status_code == 200, first.text
        assert second.json() == first.json()
        assert idp.counts() == (1, 1)
        logins = [body.get("Logins", {}) for action, body in idp.bodies if action == GET_ID]
        assert len(logins) == 1
        (id_token,) = logins[0].values()
        assert id_token.count(".") == 2


async def test_a_signed_out_browser_gets_no_signed_in_credentials(
    cognito_issuer_session: LocalIssuer,
) -> None:
    with IdentityServer() as idp:
        async with browser(identity_app(cognito_issuer_session, idp)) as client:
            answer = await client.get("/aws/identity")
        assert answer.status_code == 401
        assert idp.requests == 0


async def test_a_guest_keeps_one_identity_across_requests_of_its_browser(
    cognito_issuer_session: LocalIssuer,
) -> None:
    with IdentityServer() as idp:
        app = identity_app(cognito_issuer_session, idp)
        async with browser(app) as visitor, browser(app) as other:
            ids = [(await visitor.get("/aws/guest")).json()["identity_id"] for _ in range(3)]
            someone_else = (await other.get("/aws/guest")).json()["identity_id"]
        assert len(set(ids)) == 1
        assert someone_else != ids[0]
        assert idp.count(GET_ID) == 2  # one guest identity per visitor
        assert idp.count(GET_CREDENTIALS) >= 2
