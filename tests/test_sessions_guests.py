"""The guest identity id of a visitor without a session (identity pools, §9) kept in
a sealed cookie by browser sessions: one visitor, one id; a forged cookie is ignored."""

from __future__ import annotations

from itertools import count

from fastapi import FastAPI, Request

from fastapi_cognito_guard.testing import LocalIssuer
from tests.sessions_support import browser, make_app

NEW_IDS = count(1)


def guest_app(issuer: LocalIssuer) -> FastAPI:
    app = make_app(issuer)
    keeper = app.state.auth.guest_identities

    @app.get("/guest")
    async def guest(request: Request) -> dict[str, str]:
        identity_id = await keeper.get(request)
        if identity_id is None:
            identity_id = f"eu-central-1:guest-{next(NEW_IDS)}"
            await keeper.set(request, identity_id)
        return {"identity_id": identity_id}

    return app


async def test_a_visitor_keeps_one_guest_identity(cognito_issuer_session: LocalIssuer) -> None:
    app = guest_app(cognito_issuer_session)
    async with browser(app) as visitor, browser(app) as other:
        first = (await visitor.get("/guest")).json()["identity_id"]
        assert (await visitor.get("/guest")).json()["identity_id"] == first
        assert (await other.get("/guest")).json()["identity_id"] != first
        assert first not in visitor.cookies["fcg_guest"]  # sealed, not readable


async def test_a_forged_guest_cookie_is_ignored(cognito_issuer_session: LocalIssuer) -> None:
    async with browser(guest_app(cognito_issuer_session)) as visitor:
        visitor.cookies.set("fcg_guest", "eu-central-1:someone-else", domain="127.0.0.1")
        answer = (await visitor.get("/guest")).json()["identity_id"]
    assert answer != "eu-central-1:someone-else"
