"""How guards compose: every ``CognitoAuth`` verifies for itself, nothing is borrowed.

What the tests here prove, one behaviour each:

* A token accepted by a guard in front -- ``CognitoAuthMiddleware`` or an app-wide
  ``FastAPI(dependencies=[Depends(front.current_user)])`` -- is checked again by a
  route on another ``CognitoAuth``: a token of another user pool, of another app
  client, or of another token use is a 401 there, and the route receives its own
  ``user_model`` (never the front auth's class, never a 500). One auth in front and
  on the route still verifies the token once per request.
* Module-level dependencies resolve to the ``CognitoAuth`` registered on the app
  that handles the request: a mounted sub-app with ``init_app`` uses its own; one
  without (its lifespan never runs) is refused by the app it is mounted in (500
  ``unregistered_app`` naming ``init_app``, even when the ``COGNITO_*`` environment
  describes an auth; DESIGN §7), and a ``TestClient`` used without ``with`` never
  borrows another app's registration: 500 with one log line that names the fix.
* Scopes declared around a dependency (``Security(dep, scopes=[...])``) are
  enforced for every dependency: ``require_scope(..., all=False)`` and
  ``require_any`` included.
"""

import logging
import warnings
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Security
from pydantic import Field
from starlette.routing import Mount

import fastapi_cognito_guard.web.auth as auth_module
from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoAuthMiddleware,
    CognitoUser,
    current_user,
    require_any,
    require_scope,
)
from fastapi_cognito_guard.testing import LocalIssuer
from tests.helpers import bearer

FRONTS = ("middleware", "app_dependency")
OTHER_APP_CLIENT = "partner-client"


class AdminUser(CognitoUser):
    """A stricter route's user model: a field the front auth's model does not have."""

    clearance: str = Field("standard", alias="custom:clearance")


class BadgeUser(CognitoUser):
    """A user model that needs a claim the token does not carry."""

    badge: str = Field(alias="custom:badge")


def seeded(issuer: LocalIssuer, **settings: Any) -> CognitoAuth[Any]:
    """A ``CognitoAuth`` for ``issuer`` with its keys seeded (no HTTP)."""
    user_model = settings.pop("user_model", CognitoUser)
    auth: CognitoAuth[Any] = CognitoAuth(issuer.settings(**settings), user_model=user_model)
    auth.verifier.cache_jwks(issuer.jwks())
    return auth


def guarded_app(front: CognitoAuth[Any], route_auth: CognitoAuth[Any], how: str) -> FastAPI:
    """``GET /strict`` on ``route_auth.current_user``, behind ``front`` (as ``how`` says)."""
    if how == "middleware":
        app = FastAPI()
        app.add_middleware(CognitoAuthMiddleware, auth=front, exclude_paths=[])
    else:
        app = FastAPI(dependencies=[Depends(front.current_user)])
    route_auth.init_app(app)

    @app.get("/strict")
    async def strict(user: CognitoUser = Depends(route_auth.current_user)) -> dict[str, Any]:
        return {"username": user.username, "type": type(user).__name__}

    return app


def client_for(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


async def strict_answer(app: FastAPI, token: str) -> httpx.Response:
    async with client_for(app) as c:
        return await c.get("/strict", headers=bearer(token))


# -- each auth verifies for itself ---------------------------------------------------


@pytest.mark.parametrize("how", FRONTS)
async def test_stricter_auth_rejects_token_of_another_pool_accepted_in_front(
    issuer: LocalIssuer, other_issuer: LocalIssuer, how: str
) -> None:
    users_auth, admin_auth = seeded(issuer), seeded(other_issuer)
    response = await strict_answer(
        guarded_app(users_auth, admin_auth, how), issuer.access_token("alice")
    )
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_issuer"


@pytest.mark.parametrize("how", FRONTS)
async def test_stricter_auth_rejects_token_of_another_app_client_accepted_in_front(
    issuer: LocalIssuer, how: str
) -> None:
    lenient = seeded(issuer, client_ids=[issuer.client_id, OTHER_APP_CLIENT])
    strict = seeded(issuer)
    token = issuer.access_token("alice", client_id=OTHER_APP_CLIENT)
    response = await strict_answer(guarded_app(lenient, strict, how), token)
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_client"


@pytest.mark.parametrize("how", FRONTS)
async def test_stricter_auth_rejects_token_use_accepted_in_front(
    issuer: LocalIssuer, how: str
) -> None:
    any_use, access_only = seeded(issuer, token_use="any"), seeded(issuer, token_use="access")
    response = await strict_answer(guarded_app(any_use, access_only, how), issuer.id_token())
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_token_use"


@pytest.mark.parametrize("how", FRONTS)
async def test_route_auth_gives_its_own_user_model_after_front_auth(
    issuer: LocalIssuer, how: str
) -> None:
    front, admin = seeded(issuer), seeded(issuer, user_model=AdminUser)
    response = await strict_answer(guarded_app(front, admin, how), issuer.access_token("alice"))
    assert response.status_code == 200
    assert response.json() == {"username": "alice", "type": "AdminUser"}


@pytest.mark.parametrize("how", FRONTS)
async def test_route_user_model_missing_a_claim_is_403_even_after_front_auth(
    issuer: LocalIssuer, how: str
) -> None:
    front, badge = seeded(issuer), seeded(issuer, user_model=BadgeUser)
    response = await strict_answer(guarded_app(front, badge, how), issuer.access_token())
    assert response.status_code == 403
    assert response.json()["code"] == "missing_claims"


@pytest.mark.parametrize("how", FRONTS)
async def test_one_auth_in_front_and_on_the_route_verifies_once(
    issuer: LocalIssuer, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    auth = seeded(issuer)
    calls: list[str] = []
    verify = auth.verifier.verify

    async def counting_verify(token: str, **options: Any) -> Any:
        calls.append(token)
        return await verify(token, **options)

    monkeypatch.setattr(auth.verifier, "verify", counting_verify)
    response = await strict_answer(guarded_app(auth, auth, how), issuer.access_token())
    assert response.status_code == 200
    assert len(calls) == 1


# -- module-level dependencies: the app's own auth, else the environment ----------


@pytest.fixture
def no_cognito_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``COGNITO_*`` variables and no environment auth built by an earlier test."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("COGNITO_"):
            monkeypatch.delenv(name)
    monkeypatch.setattr(auth_module, "_environment_auth", None)


def me_app(**kwargs: Any) -> FastAPI:
    app = FastAPI(**kwargs)

    @app.get("/me")
    async def me(user: CognitoUser = Depends(current_user)) -> dict[str, Any]:
        return {"username": user.username, "pool": user.user_pool_id}

    return app


def mounted(users_auth: CognitoAuth[Any], admin_auth: CognitoAuth[Any], *, init: bool) -> FastAPI:
    """A users app (``users_auth`` registered) with an admin sub-app mounted at /admin
    whose lifespan is ``admin_auth``'s; ``init`` calls ``admin_auth.init_app`` on it."""
    admin = me_app(lifespan=admin_auth.lifespan)
    if init:
        admin_auth.init_app(admin)
    parent = me_app(routes=[Mount("/admin", app=admin)])
    users_auth.init_app(parent)
    return parent


def fix_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "init_app" in r.getMessage()]


@pytest.mark.usefixtures("no_cognito_env")
async def test_mounted_sub_app_with_init_app_uses_its_own_auth(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    app = mounted(seeded(issuer), seeded(other_issuer), init=True)
    async with client_for(app) as c:
        own = await c.get("/admin/me", headers=bearer(other_issuer.access_token("root")))
        parents = await c.get("/admin/me", headers=bearer(issuer.access_token("alice")))
        parent_route = await c.get("/me", headers=bearer(issuer.access_token("alice")))
    assert own.status_code == 200
    assert own.json() == {"username": "root", "pool": other_issuer.user_pool_id}
    assert parents.status_code == 401
    assert parents.json()["code"] == "wrong_issuer"
    assert parent_route.status_code == 200


@pytest.mark.usefixtures("no_cognito_env")
async def test_mounted_sub_app_without_init_app_never_borrows_the_parents_auth(
    issuer: LocalIssuer, other_issuer: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    app = mounted(seeded(issuer), seeded(other_issuer), init=False)
    with caplog.at_level(logging.ERROR, logger="fastapi_cognito_guard"):
        async with client_for(app) as c:
            parents = await c.get("/admin/me", headers=bearer(issuer.access_token("alice")))
            own = await c.get("/admin/me", headers=bearer(other_issuer.access_token("root")))
    assert parents.status_code == 500
    assert own.status_code == 500
    assert parents.json()["code"] == "unregistered_app"
    lines = fix_lines(caplog)
    assert len(lines) == 1  # once per app, not per request
    assert "lifespan" in lines[0]
    assert "mounted at /admin" in lines[0]


async def test_mounted_sub_app_without_init_app_is_refused_even_with_an_environment_auth(
    issuer: LocalIssuer,
    other_issuer: LocalIssuer,
    no_cognito_env: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # DESIGN §7 (issue 20): before, the sub-app's routes were served by the auth of
    # the COGNITO_* environment; now the app refuses to serve until init_app is called.
    with other_issuer.serve() as jwks_url:
        monkeypatch.setenv("COGNITO_USER_POOL_ID", other_issuer.user_pool_id)
        monkeypatch.setenv("COGNITO_CLIENT_IDS", other_issuer.client_id)
        monkeypatch.setenv("COGNITO_JWKS_URL", jwks_url)
        app = mounted(seeded(issuer), seeded(other_issuer), init=False)
        async with client_for(app) as c:
            own = await c.get("/admin/me", headers=bearer(other_issuer.access_token("root")))
            parents = await c.get("/admin/me", headers=bearer(issuer.access_token("alice")))
    assert (own.status_code, parents.status_code) == (500, 500)
    assert "init_app" in own.json()["detail"]


@pytest.fixture
def test_client_class() -> Any:
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using .httpx. with .starlette.testclient")
        from starlette.testclient import TestClient
    return TestClient


@pytest.mark.usefixtures("no_cognito_env")
def test_test_client_without_with_never_uses_another_apps_registration(
    issuer: LocalIssuer,
    other_issuer: LocalIssuer,
    test_client_class: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    seeded(issuer).init_app(FastAPI())  # another app, registered first
    app = me_app(lifespan=seeded(other_issuer).lifespan)
    client = test_client_class(app)  # no `with`: the lifespan never runs
    with caplog.at_level(logging.ERROR, logger="fastapi_cognito_guard"):
        borrowed = client.get("/me", headers=bearer(issuer.access_token("alice")))
        own = client.get("/me", headers=bearer(other_issuer.access_token("root")))
    assert borrowed.status_code == 500
    assert own.status_code == 500
    (line,) = fix_lines(caplog)
    assert "TestClient" in line


def test_test_client_with_with_uses_the_apps_lifespan_auth(
    other_issuer: LocalIssuer, test_client_class: Any
) -> None:
    app = me_app(lifespan=seeded(other_issuer).lifespan)
    with other_issuer.serve(), test_client_class(app) as client:
        response = client.get("/me", headers=bearer(other_issuer.access_token("root")))
    assert response.status_code == 200


# -- scopes declared around a dependency --------------------------------------------


def outer_scope_app(auth: CognitoAuth[Any]) -> FastAPI:
    """Routes wrapping any-of guards in ``Security(..., scopes=["orders/delete"])``,
    from the instance and from the module (resolved to ``auth``)."""
    app = FastAPI()
    auth.init_app(app)
    guards = {
        "instance-any-scope": auth.require_scope("a", "b", all=False),
        "module-any-scope": require_scope("a", "b", all=False),
        "instance-require-any": auth.require_any(groups=["staff"], scopes=["a"]),
        "module-require-any": require_any(groups=["staff"], scopes=["a"]),
    }
    for name, dependency in guards.items():

        async def endpoint(
            user: CognitoUser = Security(dependency, scopes=["orders/delete"]),
        ) -> dict[str, str | None]:
            return {"username": user.username}

        app.add_api_route(f"/{name}", endpoint, methods=["DELETE"])
    return app


OUTER_ROUTES = (
    "instance-any-scope",
    "module-any-scope",
    "instance-require-any",
    "module-require-any",
)


@pytest.mark.parametrize("route", OUTER_ROUTES)
async def test_outer_scopes_are_enforced_around_any_of_guards(
    issuer: LocalIssuer, route: str
) -> None:
    async with client_for(outer_scope_app(seeded(issuer))) as c:
        token = issuer.access_token(groups=["staff"], scopes=["a"])
        response = await c.delete(f"/{route}", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["code"] == "insufficient_scope"
    assert "orders/delete" in response.headers["www-authenticate"]


@pytest.mark.parametrize("route", OUTER_ROUTES)
async def test_outer_and_inner_scopes_together_are_admitted(
    issuer: LocalIssuer, route: str
) -> None:
    async with client_for(outer_scope_app(seeded(issuer))) as c:
        token = issuer.access_token(scopes=["a", "orders/delete"])
        response = await c.delete(f"/{route}", headers=bearer(token))
    assert response.status_code == 200
