"""Wiring that cannot be silently wrong (DESIGN §7, ``web/wiring.py``).

The two silent failures of issue 20, each failing before this change:

* A FastAPI app mounted at ``/admin`` for a second pool, whose routes use the
  module-level ``CurrentUser``, without ``admin_auth.init_app(admin)``: a main-pool
  token got 200 there through the environment's auth. Now the parent app refuses to
  start (with ``lifespan=auth.lifespan``, and registered by ``init_app`` alone), and a
  request that arrives without any start-up answers 500 ``unregistered_app``.
* ``auth = CognitoAuth()`` and an app that forgot its lifespan: ``auth.sign_out``
  revoked in one list while the module-level dependencies read another's. Now
  ``CognitoAuth()`` is the process's environment auth, and the fallback reuses it.

And a route handing out identity-pool credentials without ``COGNITO_IDENTITY_POOL_ID``
is named once at start-up.
"""

import logging
from collections.abc import Iterator
from typing import Annotated

import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from fastapi_cognito_guard import AwsCredentials, CognitoAuth, CurrentUser
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.web.wiring import UnregisteredAppError
from tests.helpers import bearer

ADMIN_POOL = "eu-central-1_Admins"


@pytest.fixture(scope="module")
def main_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    with issuer.serve():
        yield issuer


@pytest.fixture(scope="module")
def admin_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer(user_pool_id=ADMIN_POOL, client_id="admin-client")
    with issuer.serve():
        yield issuer


@pytest.fixture
def environment(main_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch) -> LocalIssuer:
    """``COGNITO_*`` describing the main pool, as in production."""
    settings = main_issuer.settings()
    monkeypatch.setenv("COGNITO_USER_POOL_ID", settings.user_pool_id)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", ",".join(settings.client_ids))
    monkeypatch.setenv("COGNITO_JWKS_URL", str(settings.jwks_url))
    return main_issuer


def admin_app() -> FastAPI:
    """The sub-app meant for the admin pool, using the module-level dependencies."""
    admin = FastAPI()

    @admin.get("/whoami")
    async def whoami(user: CurrentUser) -> str:
        return user.sub

    return admin


def test_mounted_app_without_registration_refuses_the_parents_start_up(
    environment: LocalIssuer,
) -> None:
    auth = CognitoAuth()
    app = FastAPI(lifespan=auth.lifespan)
    app.mount("/admin", admin_app())

    with pytest.raises(UnregisteredAppError, match=r"mounted at /admin.*init_app"):  # noqa: SIM117
        with TestClient(app):
            pass


def test_mounted_app_without_registration_refuses_an_init_app_parents_start_up(
    environment: LocalIssuer,
) -> None:
    auth = CognitoAuth()
    app = FastAPI()
    auth.init_app(app)
    app.mount("/admin", admin_app())

    with pytest.raises(UnregisteredAppError, match=r"GET /admin/whoami"):  # noqa: SIM117
        with TestClient(app):
            pass


def test_without_any_start_up_the_first_request_is_refused_naming_init_app(
    environment: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    auth = CognitoAuth()
    app = FastAPI()
    auth.init_app(app)
    app.mount("/admin", admin_app())
    token = environment.access_token("mallory")

    client = TestClient(app)  # no `with`: no lifespan runs
    first = client.get("/admin/whoami", headers=bearer(token))
    second = client.get("/admin/whoami", headers=bearer(token))

    assert (first.status_code, second.status_code) == (500, 500)
    assert first.json()["code"] == "unregistered_app"
    assert "init_app" in first.json()["detail"]
    assert len([r for r in caplog.records if "init_app" in r.getMessage()]) == 1


def test_main_pool_token_never_reaches_a_registered_admin_app(
    environment: LocalIssuer, admin_issuer: LocalIssuer
) -> None:
    auth = CognitoAuth()
    app = FastAPI(lifespan=auth.lifespan)
    admin = admin_app()
    CognitoAuth(admin_issuer.settings()).init_app(admin)
    app.mount("/admin", admin)

    with TestClient(app) as client:
        main_user = client.get("/admin/whoami", headers=bearer(environment.access_token()))
        admin_user = client.get("/admin/whoami", headers=bearer(admin_issuer.access_token()))

    assert (main_user.status_code, admin_user.status_code) == (401, 200)


def test_mounted_app_with_only_its_own_auths_dependencies_is_accepted(
    environment: LocalIssuer, admin_issuer: LocalIssuer
) -> None:
    auth = CognitoAuth()
    admin_auth = CognitoAuth(admin_issuer.settings())
    app = FastAPI(lifespan=auth.lifespan)
    admin = FastAPI()

    @admin.get("/whoami")
    async def whoami(user: Annotated[object, Depends(admin_auth.current_user)]) -> str:
        return "admin"

    app.mount("/admin", admin)

    with TestClient(app) as client:
        answer = client.get("/admin/whoami", headers=bearer(admin_issuer.access_token()))

    assert answer.status_code == 200


async def test_app_without_lifespan_revokes_in_the_list_its_dependencies_read(
    environment: LocalIssuer,
) -> None:
    auth = CognitoAuth()
    app = FastAPI()  # forgot lifespan=auth.lifespan

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.sub

    token = environment.access_token("alice")
    client = TestClient(app)
    assert client.get("/me", headers=bearer(token)).status_code == 200

    await auth.sign_out(token)

    refused = client.get("/me", headers=bearer(token))
    assert refused.status_code == 401
    assert "revoked" in refused.text


def test_cognito_auth_without_settings_is_the_environment_auth(
    environment: LocalIssuer,
) -> None:
    from fastapi_cognito_guard.web.auth import environment_auth

    auth = CognitoAuth()

    assert environment_auth() is auth


def test_credentials_route_without_an_identity_pool_is_named_at_start_up(
    environment: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    auth = CognitoAuth()
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/files")
    async def files(creds: Annotated[AwsCredentials, Depends(auth.aws_credentials)]) -> str:
        return creds.identity_id

    with caplog.at_level(logging.ERROR), TestClient(app):
        pass

    lines = [r.getMessage() for r in caplog.records if "COGNITO_IDENTITY_POOL_ID" in r.getMessage()]
    assert len(lines) == 1
    assert "GET /files" in lines[0]


def test_credentials_request_without_an_identity_pool_is_a_500_naming_the_setting(
    environment: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    auth = CognitoAuth()
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/files")
    async def files(creds: Annotated[AwsCredentials, Depends(auth.aws_credentials)]) -> str:
        return creds.identity_id

    token = environment.access_token("alice")
    with TestClient(app) as client:
        caplog.clear()
        answers = [client.get("/files", headers=bearer(token)) for _ in range(3)]

    assert {a.status_code for a in answers} == {500}
    assert answers[0].json()["code"] == "identity_pool_misconfigured"
    assert "COGNITO_IDENTITY_POOL_ID" in answers[0].json()["detail"]
    logged = [r for r in caplog.records if "COGNITO_IDENTITY_POOL_ID" in r.getMessage()]
    assert len(logged) == 1  # once, not per request


def test_app_without_registration_says_once_that_it_uses_the_environment_auth(
    environment: LocalIssuer, caplog: pytest.LogCaptureFixture
) -> None:
    CognitoAuth()
    app = FastAPI()  # forgot lifespan=auth.lifespan

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.sub

    client = TestClient(app)
    for _ in range(3):
        client.get("/me", headers=bearer(environment.access_token()))

    lines = [r.getMessage() for r in caplog.records if "environment auth" in r.getMessage()]
    assert len(lines) == 1
    assert "auth.init_app(app)" in lines[0]
