"""The FastAPI layer: ``CognitoAuth``, its route dependencies and their module-level twins.

What the tests here prove, one behaviour each:

* The matrix. Each dependency -- ``current_user``, ``optional_user``,
  ``require_group("premium")``, ``require_scope("orders/read")`` and
  ``Security(current_user, scopes=["orders/read"])`` -- taken both from a
  ``CognitoAuth`` instance and from the package (module level, resolved to the
  app's ``CognitoAuth``) admits a valid token (200); answers no token with 401
  ``missing_token`` and a bare ``Bearer realm="api"`` challenge; a bad token with
  401, ``error="invalid_token"``, an ``error_description`` and the failed check as
  ``code``, never echoing the token; an ID token where an access token is required
  with 401 ``wrong_token_use``; a user outside the group with 403
  ``missing_group``; a token without the scope with 403 ``insufficient_scope`` and
  an RFC 6750 ``scope=`` challenge; unobtainable signing keys with 503
  ``keys_unavailable`` and ``Retry-After`` >= 1. ``optional_user`` is null without
  a token and a 401 with a bad one.
* Module-level dependencies use each app's own ``CognitoAuth``.
* ``Bearer`` is case-insensitive; ``Basic`` credentials count as no token.
* A 403 for a missing group names the group. ``require_any(groups=, scopes=)``
  admits a user in a listed group or a client with a listed scope, and refuses
  the rest as ``missing_group`` (users) or ``insufficient_scope`` (machine
  clients). Guard arguments that would widen or break access (none, one bare
  string, a list as a name, an empty name) are a ``ValueError``.
* ``CurrentUser`` / ``OptionalUser`` annotate routes; a consumer app with
  ``auth = CognitoAuth()`` passes ``mypy --strict`` with typed dependencies.
* ``require_group`` is any-of (``all=True``: all-of); ``require_scope`` is all-of
  (``all=False``: any-of).
* A ``user_model`` subclass receives ``custom:*`` claims from an ID token; a
  client-credentials token is a machine user that passes ``require_scope``.
* Two user pools in one app: ``require_pool`` keeps each pool's tokens on its own
  routes (401 ``wrong_issuer`` elsewhere) and a third pool is rejected everywhere.
* Sync and async handlers both receive the user; a request with several guards is
  verified once.
* OpenAPI 3.1: HTTP bearer without a hosted-UI ``domain``; OAuth2 authorization
  code (with PKCE in Swagger UI) with one; requirements, and the 401/403 answers
  with the ``{detail, code}`` body, on guarded routes only. ``init_app`` wires
  Swagger UI's OAuth settings itself when ``domain`` or ``oauth_url`` is set.
* On a WebSocket route the dependencies accept a valid token (header,
  ``cognito-bearer`` subprotocol -- named in the accept though the route calls a
  plain ``accept()`` -- or ``?access_token=``, removed from the query string) and
  close with 1008 without one or without a required scope; over uvicorn neither
  way puts the token into its log.
* The ``{"detail", "code"}`` error body with the auth's lifespan and with
  ``init_app``; the lifespan can run more than once.
* End to end over real HTTP: uvicorn on 127.0.0.1 trusting a moto user pool.
"""

import subprocess
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi import Depends, FastAPI, Security, WebSocket
from hypothesis import given, settings
from hypothesis import strategies as st
from openapi_spec_validator import OpenAPIV31SpecValidator, validate
from pydantic import Field
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect
from websockets.typing import Subprotocol

from fastapi_cognito_guard import (
    CognitoAuth,
    CognitoSettings,
    CognitoUser,
    CurrentUser,
    OptionalUser,
    current_user,
    optional_user,
    require_any,
    require_group,
    require_scope,
)
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.web import BEARER_SUBPROTOCOL, connection_token
from tests.helpers import bearer, running, websocket_refusal
from tests.moto_cognito import CognitoPool
from tests.uvicorn_server import uvicorn_server

THIRD_POOL_ID = "eu-central-1_Third"
BARE_CHALLENGE = 'Bearer realm="api"'
INVALID_CHALLENGE_PREFIX = 'Bearer realm="api", error="invalid_token", error_description="'

MODULE = SimpleNamespace(
    current_user=current_user,
    optional_user=optional_user,
    require_group=require_group,
    require_scope=require_scope,
    require_any=require_any,
)
"""The module-level dependencies, shaped like a ``CognitoAuth`` for the matrix."""

FLAVOURS = ("instance", "module")
ALL_DEPENDENCIES = (
    "current_user",
    "optional_user",
    "require_group",
    "require_scope",
    "security_scopes",
)
TOKEN_REQUIRED = tuple(name for name in ALL_DEPENDENCIES if name != "optional_user")


# -- helpers -----------------------------------------------------------------------


def full_token(issuer: LocalIssuer, username: str = "alice") -> str:
    """An access token that every route of the matrix admits."""
    return issuer.access_token(username, groups=["premium"], scopes=["orders/read"])


def forged_token(issuer: LocalIssuer) -> str:
    """alice's claims under the signature of another token: fails ``bad_signature``."""
    alice = full_token(issuer, "alice")
    mallory = full_token(issuer, "mallory")
    return f"{alice.rsplit('.', 1)[0]}.{mallory.rsplit('.', 1)[1]}"


def user_json(user: CognitoUser) -> dict[str, Any]:
    return {
        "username": user.username,
        "user_pool_id": user.user_pool_id,
        "is_machine": user.is_machine,
        "type": type(user).__name__,
    }


def add_echo_route(app: FastAPI, path: str, dependency: Any) -> None:
    """``GET path`` guarded by ``dependency``, answering the user (or null)."""

    async def endpoint(user: CognitoUser | None = dependency) -> dict[str, Any] | None:
        return None if user is None else user_json(user)

    app.add_api_route(path, endpoint, methods=["GET"])


def guard(source: Any, name: str) -> Any:
    """The matrix's dependency ``name`` from a ``CognitoAuth`` or from ``MODULE``."""
    if name == "current_user":
        return Depends(source.current_user)
    if name == "optional_user":
        return Depends(source.optional_user)
    if name == "require_group":
        return Depends(source.require_group("premium"))
    if name == "require_scope":
        return Depends(source.require_scope("orders/read"))
    assert name == "security_scopes"
    return Security(source.current_user, scopes=["orders/read"])


def matrix_app(auth: CognitoAuth[Any]) -> FastAPI:
    """``/{instance|module}/{dependency}`` for every dependency of the matrix."""
    app = FastAPI(lifespan=auth.lifespan)
    for flavour in FLAVOURS:
        source = auth if flavour == "instance" else MODULE
        for name in ALL_DEPENDENCIES:
            add_echo_route(app, f"/{flavour}/{name}", guard(source, name))
    return app


def cases(names: tuple[str, ...]) -> list[Any]:
    return [
        pytest.param(flavour, name, id=f"{flavour}-{name}")
        for flavour in FLAVOURS
        for name in names
    ]


def pools_transport(*issuers: LocalIssuer) -> httpx.MockTransport:
    """Serves each issuer's JWKS at ``/{user_pool_id}/.well-known/jwks.json``."""
    by_pool = {issuer.user_pool_id: issuer for issuer in issuers}

    def handle(request: httpx.Request) -> httpx.Response:
        issuer = by_pool.get(request.url.path.split("/")[1])
        if issuer is None:
            return httpx.Response(404)
        return httpx.Response(200, json=issuer.jwks())

    return httpx.MockTransport(handle)


def assert_no_token_leak(response: httpx.Response, token: str) -> None:
    signature = token.rsplit(".", 1)[1]
    for text in (response.text, *response.headers.values()):
        assert token not in text
        assert signature not in text


# -- fixtures ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def third_issuer() -> LocalIssuer:
    """A user pool no app here is configured for."""
    return LocalIssuer(user_pool_id=THIRD_POOL_ID, client_id="third-client")


@pytest.fixture
async def client(auth: CognitoAuth[Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with running(matrix_app(auth)) as c:
        yield c


@pytest.fixture
async def unavailable_client(
    issuer: LocalIssuer, closed_jwks_url: str
) -> AsyncIterator[httpx.AsyncClient]:
    """The matrix app with an auth whose signing keys cannot be fetched."""
    auth = CognitoAuth(issuer.settings(jwks_url=closed_jwks_url))
    async with running(matrix_app(auth)) as c:
        yield c


# -- the matrix --------------------------------------------------------------------


@pytest.mark.parametrize(("flavour", "dependency"), cases(ALL_DEPENDENCIES))
async def test_valid_token_is_admitted(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, dependency: str
) -> None:
    response = await client.get(f"/{flavour}/{dependency}", headers=bearer(full_token(issuer)))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"
    assert response.json()["user_pool_id"] == issuer.user_pool_id


@pytest.mark.parametrize(("flavour", "dependency"), cases(TOKEN_REQUIRED))
async def test_missing_token_is_401_with_a_bare_bearer_challenge(
    client: httpx.AsyncClient, flavour: str, dependency: str
) -> None:
    response = await client.get(f"/{flavour}/{dependency}")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE
    assert "error=" not in response.headers["www-authenticate"]
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "missing_token"
    assert body["detail"]


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_optional_user_is_null_without_a_token(
    client: httpx.AsyncClient, flavour: str
) -> None:
    response = await client.get(f"/{flavour}/optional_user")
    assert response.status_code == 200
    assert response.json() is None


@pytest.mark.parametrize(("flavour", "dependency"), cases(ALL_DEPENDENCIES))
async def test_bad_token_is_401_invalid_token_without_echoing_it(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, dependency: str
) -> None:
    token = forged_token(issuer)
    response = await client.get(f"/{flavour}/{dependency}", headers=bearer(token))
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(INVALID_CHALLENGE_PREFIX)
    assert challenge.endswith('"')
    assert len(challenge) > len(INVALID_CHALLENGE_PREFIX) + 1  # a non-empty description
    assert response.json() == {"detail": response.json()["detail"], "code": "bad_signature"}
    assert_no_token_leak(response, token)


@pytest.mark.parametrize(("flavour", "dependency"), cases(ALL_DEPENDENCIES))
async def test_id_token_where_access_is_required_is_401_wrong_token_use(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, dependency: str
) -> None:
    token = issuer.id_token(groups=["premium"])
    response = await client.get(f"/{flavour}/{dependency}", headers=bearer(token))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(INVALID_CHALLENGE_PREFIX)
    assert response.json()["code"] == "wrong_token_use"
    assert_no_token_leak(response, token)


@pytest.mark.parametrize(("flavour", "dependency"), cases(("require_group",)))
async def test_user_outside_the_group_is_403_missing_group(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, dependency: str
) -> None:
    token = issuer.access_token(scopes=["orders/read"])
    response = await client.get(f"/{flavour}/{dependency}", headers=bearer(token))
    assert response.status_code == 403
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "missing_group"


@pytest.mark.parametrize(("flavour", "dependency"), cases(("require_scope", "security_scopes")))
async def test_token_without_the_scope_is_403_insufficient_scope(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, dependency: str
) -> None:
    token = issuer.access_token(groups=["premium"], scopes=["aws.cognito.signin.user.admin"])
    response = await client.get(f"/{flavour}/{dependency}", headers=bearer(token))
    assert response.status_code == 403
    assert response.headers["www-authenticate"] == (
        'Bearer realm="api", error="insufficient_scope", scope="orders/read"'
    )
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "insufficient_scope"


@pytest.mark.parametrize(("flavour", "dependency"), cases(ALL_DEPENDENCIES))
async def test_unavailable_keys_are_503_with_retry_after(
    unavailable_client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, dependency: str
) -> None:
    response = await unavailable_client.get(
        f"/{flavour}/{dependency}", headers=bearer(full_token(issuer))
    )
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) >= 1
    assert set(response.json()) == {"detail", "code"}
    assert response.json()["code"] == "keys_unavailable"


async def test_module_dependencies_use_each_apps_own_auth(
    issuer: LocalIssuer, other_issuer: LocalIssuer
) -> None:
    transport = pools_transport(issuer, other_issuer)
    async with httpx.AsyncClient(transport=transport) as http:
        apps = {}
        for trusted in (issuer, other_issuer):
            app = FastAPI(lifespan=CognitoAuth(trusted.settings(), http_client=http).lifespan)
            add_echo_route(app, "/me", Depends(current_user))
            apps[trusted.user_pool_id] = app
        async with (
            running(apps[issuer.user_pool_id]) as first,
            running(apps[other_issuer.user_pool_id]) as second,
        ):
            token = full_token(issuer)
            assert (await first.get("/me", headers=bearer(token))).status_code == 200
            rejected = await second.get("/me", headers=bearer(token))
            assert rejected.status_code == 401
            assert rejected.json()["code"] == "wrong_issuer"


# -- the Authorization header --------------------------------------------------------


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_bearer_scheme_is_case_insensitive(
    client: httpx.AsyncClient, issuer: LocalIssuer, scheme: str
) -> None:
    headers = {"Authorization": f"{scheme} {full_token(issuer)}"}
    response = await client.get("/instance/current_user", headers=headers)
    assert response.status_code == 200


async def test_basic_credentials_count_as_no_token(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/instance/current_user", headers={"Authorization": "Basic YWxpY2U6c2VjcmV0"}
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE
    assert response.json()["code"] == "missing_token"


# -- any-of / all-of -----------------------------------------------------------------


@pytest.fixture
async def combinator_client(auth: CognitoAuth[Any]) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI(lifespan=auth.lifespan)
    add_echo_route(app, "/groups/any", Depends(auth.require_group("a", "b")))
    add_echo_route(app, "/groups/all", Depends(auth.require_group("a", "b", all=True)))
    add_echo_route(app, "/scopes/all", Depends(auth.require_scope("x", "y")))
    add_echo_route(app, "/scopes/any", Depends(auth.require_scope("x", "y", all=False)))
    async with running(app) as c:
        yield c


@pytest.mark.parametrize(
    ("groups", "route", "status"),
    [
        (["a"], "/groups/any", 200),
        (["b"], "/groups/any", 200),
        (["a", "b"], "/groups/any", 200),
        ([], "/groups/any", 403),
        (["c"], "/groups/any", 403),
        (["a"], "/groups/all", 403),
        (["a", "b"], "/groups/all", 200),
    ],
)
async def test_require_group_is_any_of_unless_all(
    combinator_client: httpx.AsyncClient,
    issuer: LocalIssuer,
    groups: list[str],
    route: str,
    status: int,
) -> None:
    token = issuer.access_token(groups=groups)
    response = await combinator_client.get(route, headers=bearer(token))
    assert response.status_code == status
    if status == 403:
        assert response.json()["code"] == "missing_group"


@pytest.mark.parametrize(
    ("scopes", "route", "status"),
    [
        (["x", "y"], "/scopes/all", 200),
        (["x"], "/scopes/all", 403),
        (["y"], "/scopes/all", 403),
        (["x"], "/scopes/any", 200),
        (["y"], "/scopes/any", 200),
        (["x", "y"], "/scopes/any", 200),
        (["z"], "/scopes/any", 403),
    ],
)
async def test_require_scope_is_all_of_unless_all_false(
    combinator_client: httpx.AsyncClient,
    issuer: LocalIssuer,
    scopes: list[str],
    route: str,
    status: int,
) -> None:
    token = issuer.access_token(scopes=scopes)
    response = await combinator_client.get(route, headers=bearer(token))
    assert response.status_code == status
    if status == 403:
        assert response.json()["code"] == "insufficient_scope"
        assert response.headers["www-authenticate"].endswith(
            'error="insufficient_scope", scope="x y"'
        )


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_missing_scope_detail_names_the_scope(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str
) -> None:
    token = issuer.access_token(groups=["premium"], scopes=["aws.cognito.signin.user.admin"])
    response = await client.get(f"/{flavour}/require_scope", headers=bearer(token))
    assert response.status_code == 403
    assert "orders/read" in response.json()["detail"]


async def test_missing_scopes_detail_names_only_the_missing_ones(
    combinator_client: httpx.AsyncClient, issuer: LocalIssuer
) -> None:
    token = issuer.access_token(scopes=["x"])
    response = await combinator_client.get("/scopes/all", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["detail"].endswith("required scope(s): y")


# -- user models ---------------------------------------------------------------------


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_missing_group_detail_names_the_group(
    client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str
) -> None:
    token = issuer.access_token(scopes=["orders/read"])
    response = await client.get(f"/{flavour}/require_group", headers=bearer(token))
    assert response.status_code == 403
    assert "premium" in response.json()["detail"]


@pytest.fixture
async def require_any_client(auth: CognitoAuth[Any]) -> AsyncIterator[httpx.AsyncClient]:
    """``/{instance|module}/any``: group ``staff`` or scope ``reports/read``."""
    app = FastAPI(lifespan=auth.lifespan)
    for flavour in FLAVOURS:
        source = auth if flavour == "instance" else MODULE
        guard = source.require_any(groups=["staff"], scopes=["reports/read"])
        add_echo_route(app, f"/{flavour}/any", Depends(guard))
    async with running(app) as c:
        yield c


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_require_any_admits_a_user_in_a_listed_group(
    require_any_client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str
) -> None:
    token = issuer.access_token(groups=["staff"])
    assert (
        await require_any_client.get(f"/{flavour}/any", headers=bearer(token))
    ).status_code == 200


@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_require_any_admits_a_machine_client_with_a_listed_scope(
    require_any_client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str
) -> None:
    token = issuer.client_credentials_token(scopes=["reports/read"])
    response = await require_any_client.get(f"/{flavour}/any", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["is_machine"] is True


@pytest.mark.parametrize(
    ("caller", "code"), [("user", "missing_group"), ("machine", "insufficient_scope")]
)
@pytest.mark.parametrize("flavour", FLAVOURS)
async def test_require_any_refuses_a_caller_with_neither_naming_what_would_do(
    require_any_client: httpx.AsyncClient, issuer: LocalIssuer, flavour: str, caller: str, code: str
) -> None:
    token = (
        issuer.access_token(groups=["guests"])
        if caller == "user"
        else issuer.client_credentials_token(scopes=["reports/write"])
    )
    response = await require_any_client.get(f"/{flavour}/any", headers=bearer(token))
    assert response.status_code == 403
    assert response.json()["code"] == code
    if caller == "user":
        assert "staff" in response.json()["detail"]
    else:
        assert 'scope="reports/read"' in response.headers["www-authenticate"]


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda source: source.require_any(), id="require_any-nothing"),
        pytest.param(lambda source: source.require_any(groups="staff"), id="require_any-string"),
        pytest.param(lambda source: source.require_group(["a", "b"]), id="require_group-list"),
        pytest.param(lambda source: source.require_scope(""), id="require_scope-empty"),
    ],
)
@pytest.mark.parametrize("flavour", FLAVOURS)
def test_guard_arguments_that_would_widen_or_break_access_are_a_value_error(
    auth: CognitoAuth[Any], flavour: str, make: Any
) -> None:
    with pytest.raises(ValueError, match="require_"):
        make(auth if flavour == "instance" else MODULE)


async def test_current_user_and_optional_user_aliases_give_the_verified_user(
    auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(user: CurrentUser) -> dict[str, Any]:
        return user_json(user)

    @app.get("/maybe")
    async def maybe(user: OptionalUser) -> dict[str, Any] | None:
        return None if user is None else user_json(user)

    async with running(app) as c:
        token = bearer(full_token(issuer))
        assert (await c.get("/me", headers=token)).json()["username"] == "alice"
        assert (await c.get("/me")).status_code == 401
        assert (await c.get("/maybe", headers=token)).json()["username"] == "alice"
        assert (await c.get("/maybe")).json() is None


CONSUMER_APP = """\
from collections.abc import Awaitable, Callable

from fastapi import Depends, FastAPI
from typing_extensions import assert_type

from fastapi_cognito_guard import CognitoAuth, CognitoUser, CurrentUser, OptionalUser, require_any

auth = CognitoAuth()
assert_type(auth, CognitoAuth[CognitoUser])


class TierUser(CognitoUser):
    tier: str = "free"


tiered = CognitoAuth(user_model=TierUser)
assert_type(tiered.current_user, Callable[..., Awaitable[TierUser]])
assert_type(tiered.optional_user, Callable[..., Awaitable[TierUser | None]])
assert_type(tiered.require_any(groups=["staff"]), Callable[..., Awaitable[TierUser]])
app = FastAPI(lifespan=auth.lifespan)


@app.get("/me")
async def me(user: CurrentUser) -> str:
    return user.sub


@app.get("/maybe")
async def maybe(user: OptionalUser) -> str | None:
    return None if user is None else user.sub


@app.get("/staff")
async def staff(user: CognitoUser = Depends(require_any(groups=["staff"]))) -> str:
    return user.sub
"""


def test_consumer_app_passes_mypy_strict(tmp_path: Path) -> None:
    consumer = tmp_path / "consumer_app.py"
    consumer.write_text(CONSUMER_APP)
    repo = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", str(consumer)],
        cwd=repo,
        env={"MYPYPATH": str(repo), "PATH": "", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


class TierUser(CognitoUser):
    """A user model lifting the ``custom:tier`` attribute into a typed field."""

    tier: str = Field(alias="custom:tier")


async def test_custom_user_model_receives_custom_attribute_from_id_token(
    issuer: LocalIssuer, jwks_http: httpx.AsyncClient
) -> None:
    auth = CognitoAuth(issuer.settings(token_use="id"), user_model=TierUser, http_client=jwks_http)
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/tier")
    async def tier(user: TierUser = Depends(auth.current_user)) -> dict[str, Any]:
        return {"type": type(user).__name__, "tier": user.tier, "token_use": user.token_use}

    async with running(app) as c:
        token = issuer.id_token("alice", custom={"tier": "gold"})
        response = await c.get("/tier", headers=bearer(token))
    assert response.status_code == 200
    assert response.json() == {"type": "TierUser", "tier": "gold", "token_use": "id"}


async def test_client_credentials_token_is_a_machine_user_with_the_scope(
    issuer: LocalIssuer, auth: CognitoAuth[Any]
) -> None:
    app = FastAPI(lifespan=auth.lifespan)
    add_echo_route(app, "/orders", Depends(auth.require_scope("orders/read")))
    async with running(app) as c:
        token = issuer.client_credentials_token(scopes=["orders/read"])
        response = await c.get("/orders", headers=bearer(token))
    assert response.status_code == 200
    assert response.json()["is_machine"] is True
    assert response.json()["username"] is None


# -- several user pools ----------------------------------------------------------------


@pytest.fixture
async def pools_client(
    issuer: LocalIssuer, other_issuer: LocalIssuer, third_issuer: LocalIssuer
) -> AsyncIterator[httpx.AsyncClient]:
    """Pools A (``issuer``) and B (``other_issuer``) on one app; C's keys are served too."""
    transport = pools_transport(issuer, other_issuer, third_issuer)
    async with httpx.AsyncClient(transport=transport) as http:
        auth = CognitoAuth([issuer.settings(), other_issuer.settings()], http_client=http)
        app = FastAPI(lifespan=auth.lifespan)
        add_echo_route(app, "/a", Depends(auth.require_pool(issuer.user_pool_id)))
        add_echo_route(app, "/b", Depends(auth.require_pool(other_issuer.user_pool_id)))
        add_echo_route(app, "/any", Depends(auth.current_user))
        async with running(app) as c:
            yield c


@pytest.fixture
def pool_issuers(
    issuer: LocalIssuer, other_issuer: LocalIssuer, third_issuer: LocalIssuer
) -> dict[str, LocalIssuer]:
    return {"a": issuer, "b": other_issuer, "c": third_issuer}


@pytest.mark.parametrize("pool", ["a", "b"])
async def test_each_pools_token_passes_its_own_route(
    pools_client: httpx.AsyncClient, pool_issuers: dict[str, LocalIssuer], pool: str
) -> None:
    token_issuer = pool_issuers[pool]
    response = await pools_client.get(f"/{pool}", headers=bearer(token_issuer.access_token()))
    assert response.status_code == 200
    assert response.json()["user_pool_id"] == token_issuer.user_pool_id


@pytest.mark.parametrize(("pool", "route"), [("a", "/b"), ("b", "/a")])
async def test_pools_token_is_401_wrong_issuer_on_the_other_pools_route(
    pools_client: httpx.AsyncClient, pool_issuers: dict[str, LocalIssuer], pool: str, route: str
) -> None:
    response = await pools_client.get(route, headers=bearer(pool_issuers[pool].access_token()))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith(INVALID_CHALLENGE_PREFIX)
    assert response.json()["code"] == "wrong_issuer"


@pytest.mark.parametrize("route", ["/a", "/b", "/any"])
async def test_unconfigured_pools_token_is_rejected_everywhere(
    pools_client: httpx.AsyncClient, third_issuer: LocalIssuer, route: str
) -> None:
    response = await pools_client.get(route, headers=bearer(third_issuer.access_token()))
    assert response.status_code == 401
    assert response.json()["code"] == "wrong_issuer"


# -- handlers and per-request verification -------------------------------------------


@pytest.mark.parametrize("route", ["/sync", "/async"])
async def test_sync_and_async_handlers_receive_the_user(
    auth: CognitoAuth[Any], issuer: LocalIssuer, route: str
) -> None:
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/sync")
    def sync_handler(user: CognitoUser = Depends(auth.current_user)) -> dict[str, Any]:
        return {"username": user.username}

    @app.get("/async")
    async def async_handler(user: CognitoUser = Depends(auth.current_user)) -> dict[str, Any]:
        return {"username": user.username}

    async with running(app) as c:
        response = await c.get(route, headers=bearer(full_token(issuer)))
    assert response.status_code == 200
    assert response.json()["username"] == "alice"


async def test_several_guards_verify_the_token_once_per_request(
    auth: CognitoAuth[Any], issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    verify = auth.verifier.verify

    async def counting_verify(token: str, **options: Any) -> Any:
        calls.append(token)
        return await verify(token, **options)

    monkeypatch.setattr(auth.verifier, "verify", counting_verify)
    app = FastAPI(lifespan=auth.lifespan)
    in_group = auth.require_group("premium")
    with_scope = auth.require_scope("orders/read")
    with_any_scope = auth.require_scope("orders/read", "x", all=False)

    @app.get("/guarded")
    async def guarded(
        me: CognitoUser = Depends(auth.current_user),
        maybe: CognitoUser | None = Depends(auth.optional_user),
        member: CognitoUser = Depends(in_group),
        scoped: CognitoUser = Depends(with_scope),
        any_scoped: CognitoUser = Depends(with_any_scope),
        secured: CognitoUser = Security(auth.current_user, scopes=["orders/read"]),
    ) -> dict[str, bool]:
        return {"same": all(u is me for u in (maybe, member, scoped, any_scoped, secured))}

    async with running(app) as c:
        first, second = full_token(issuer, "alice"), full_token(issuer, "bob")
        assert (await c.get("/guarded", headers=bearer(first))).json() == {"same": True}
        assert calls == [first]
        assert (await c.get("/guarded", headers=bearer(second))).json() == {"same": True}
    assert calls == [first, second]


class CountingUser(CognitoUser):
    """A user model that counts the users it builds, per class."""

    built: ClassVar[int] = 0

    @classmethod
    def from_claims(cls, claims: Any) -> Any:
        cls.built += 1
        return super().from_claims(claims)


class OtherCountingUser(CountingUser):
    built: ClassVar[int] = 0


async def test_user_is_built_once_per_token_per_auth(
    issuer: LocalIssuer, jwks_http: httpx.AsyncClient
) -> None:
    app = FastAPI()
    for path, model in (("/one", CountingUser), ("/two", OtherCountingUser)):
        each = CognitoAuth(issuer.settings(), user_model=model, http_client=jwks_http)
        add_echo_route(app, path, Depends(each.current_user))
    alice, bob = full_token(issuer, "alice"), full_token(issuer, "bob")

    async with running(app) as c:
        for _ in range(3):
            for path in ("/one", "/two"):
                for token in (alice, bob):
                    assert (await c.get(path, headers=bearer(token))).status_code == 200

    assert (CountingUser.built, OtherCountingUser.built) == (2, 2)


async def test_cached_token_whose_session_was_revoked_is_401_revoked(
    auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    app = FastAPI(lifespan=auth.lifespan)
    add_echo_route(app, "/me", Depends(auth.current_user))
    token = full_token(issuer)
    origin_jti = (await auth.verifier.verify(token)).origin_jti
    assert origin_jti is not None

    async with running(app) as c:
        assert (await c.get("/me", headers=bearer(token))).status_code == 200
        auth.revocations.revoke_session(origin_jti)
        refused = await c.get("/me", headers=bearer(token))

    assert refused.status_code == 401
    assert "revoked" in refused.headers["www-authenticate"]


# -- OpenAPI -------------------------------------------------------------------------


def openapi_app(auth: CognitoAuth[Any]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan, swagger_ui_init_oauth=auth.swagger_ui_init_oauth)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    add_echo_route(app, "/me", Depends(auth.current_user))
    add_echo_route(app, "/optional", Depends(auth.optional_user))
    add_echo_route(app, "/premium", Depends(auth.require_group("premium")))
    add_echo_route(app, "/orders", Depends(auth.require_scope("orders/read")))
    add_echo_route(app, "/orders2", Security(auth.current_user, scopes=["orders/read"]))
    add_echo_route(app, "/export", Security(auth.current_user, scopes=["reports/export"]))
    return app


UNSCOPED_ROUTES = ["/me", "/optional", "/premium"]
SCOPED_ROUTES = ["/orders", "/orders2"]


def only_scheme(spec: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    schemes = spec["components"]["securitySchemes"]
    assert len(schemes) == 1
    ((name, scheme),) = schemes.items()
    return name, scheme


async def served_openapi(app: FastAPI) -> dict[str, Any]:
    """``/openapi.json`` as the running app (lifespan started) serves it."""
    async with running(app) as c:
        response = await c.get("/openapi.json")
    assert response.status_code == 200
    spec: dict[str, Any] = response.json()
    return spec


@pytest.fixture
async def bearer_spec(auth: CognitoAuth[Any]) -> dict[str, Any]:
    return await served_openapi(openapi_app(auth))


@pytest.fixture
def oauth2_auth(issuer: LocalIssuer, jwks_http: httpx.AsyncClient) -> CognitoAuth[Any]:
    return CognitoAuth(issuer.settings(domain="auth.example.com"), http_client=jwks_http)


@pytest.fixture
async def oauth2_spec(oauth2_auth: CognitoAuth[Any]) -> dict[str, Any]:
    return await served_openapi(openapi_app(oauth2_auth))


def test_openapi_bearer_mode_is_valid_openapi_31(bearer_spec: dict[str, Any]) -> None:
    assert bearer_spec["openapi"].startswith("3.1")
    validate(bearer_spec, cls=OpenAPIV31SpecValidator)


def test_openapi_bearer_mode_declares_an_http_bearer_scheme(bearer_spec: dict[str, Any]) -> None:
    _, scheme = only_scheme(bearer_spec)
    assert scheme["type"] == "http"
    assert scheme["scheme"].lower() == "bearer"


@pytest.mark.parametrize("route", UNSCOPED_ROUTES)
def test_openapi_guarded_route_requires_the_scheme(bearer_spec: dict[str, Any], route: str) -> None:
    name, _ = only_scheme(bearer_spec)
    assert bearer_spec["paths"][route]["get"]["security"] == [{name: []}]


@pytest.mark.parametrize("route", SCOPED_ROUTES)
def test_openapi_scoped_route_lists_its_scopes(bearer_spec: dict[str, Any], route: str) -> None:
    name, _ = only_scheme(bearer_spec)
    assert bearer_spec["paths"][route]["get"]["security"] == [{name: ["orders/read"]}]


def test_openapi_unguarded_route_has_no_security(bearer_spec: dict[str, Any]) -> None:
    assert "security" not in bearer_spec["paths"]["/health"]["get"]
    assert "security" not in bearer_spec


def test_openapi_oauth2_mode_is_valid_openapi_31(oauth2_spec: dict[str, Any]) -> None:
    validate(oauth2_spec, cls=OpenAPIV31SpecValidator)


def test_openapi_oauth2_mode_uses_the_hosted_ui_code_flow(oauth2_spec: dict[str, Any]) -> None:
    _, scheme = only_scheme(oauth2_spec)
    assert scheme["type"] == "oauth2"
    assert set(scheme["flows"]) == {"authorizationCode"}
    flow = scheme["flows"]["authorizationCode"]
    assert flow["authorizationUrl"] == "https://auth.example.com/oauth2/authorize"
    assert flow["tokenUrl"] == "https://auth.example.com/oauth2/token"


@pytest.mark.parametrize("route", SCOPED_ROUTES)
def test_openapi_oauth2_required_scopes_are_in_the_flow_and_the_route(
    oauth2_spec: dict[str, Any], route: str
) -> None:
    name, scheme = only_scheme(oauth2_spec)
    assert "orders/read" in scheme["flows"]["authorizationCode"]["scopes"]
    assert oauth2_spec["paths"][route]["get"]["security"] == [{name: ["orders/read"]}]
    assert oauth2_spec["paths"]["/me"]["get"]["security"] == [{name: []}]


def test_openapi_oauth2_flow_lists_scopes_required_only_through_security(
    oauth2_spec: dict[str, Any],
) -> None:
    name, scheme = only_scheme(oauth2_spec)
    assert oauth2_spec["paths"]["/export"]["get"]["security"] == [{name: ["reports/export"]}]
    assert "reports/export" in scheme["flows"]["authorizationCode"]["scopes"]


def test_swagger_ui_init_oauth_uses_pkce_and_the_client_id(
    oauth2_auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    init_oauth = oauth2_auth.swagger_ui_init_oauth
    assert init_oauth is not None
    assert init_oauth["usePkceWithAuthorizationCodeGrant"] is True
    assert init_oauth["clientId"] == issuer.client_id


def test_swagger_ui_init_oauth_is_none_without_a_domain(issuer: LocalIssuer) -> None:
    assert CognitoAuth(issuer.settings()).swagger_ui_init_oauth is None


@pytest.mark.parametrize("route", [*UNSCOPED_ROUTES, *SCOPED_ROUTES])
def test_openapi_guarded_routes_list_401_and_403_with_the_error_body(
    bearer_spec: dict[str, Any], route: str
) -> None:
    responses = bearer_spec["paths"][route]["get"]["responses"]
    for status in ("401", "403"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema == {"$ref": "#/components/schemas/CognitoError"}
    body = bearer_spec["components"]["schemas"]["CognitoError"]
    assert body["required"] == ["detail", "code"]


def test_openapi_unguarded_route_lists_no_401(bearer_spec: dict[str, Any]) -> None:
    assert set(bearer_spec["paths"]["/health"]["get"]["responses"]) == {"200"}


@pytest.mark.parametrize(
    "oauth", [{"domain": "auth.example.com"}, {"oauth_url": "http://127.0.0.1:9/local"}]
)
async def test_init_app_wires_swagger_ui_sign_in_when_an_oauth_url_is_set(
    issuer: LocalIssuer, oauth: dict[str, str]
) -> None:
    auth = CognitoAuth(issuer.settings(**oauth))
    app = FastAPI(lifespan=auth.lifespan)  # no swagger_ui_init_oauth passed by hand
    add_echo_route(app, "/me", Depends(auth.current_user))
    async with running(app) as c:
        docs = (await c.get("/docs")).text
        spec = (await c.get("/openapi.json")).json()
    assert app.swagger_ui_init_oauth == auth.swagger_ui_init_oauth
    assert f'"clientId": "{issuer.client_id}"' in docs
    assert '"usePkceWithAuthorizationCodeGrant": true' in docs
    base = oauth.get("oauth_url") or f"https://{oauth['domain']}"
    _, scheme = only_scheme(spec)
    assert scheme["flows"]["authorizationCode"]["authorizationUrl"] == f"{base}/oauth2/authorize"


def test_init_app_keeps_swagger_oauth_settings_the_app_was_given(issuer: LocalIssuer) -> None:
    own = {"clientId": "from-the-app"}
    app = FastAPI(swagger_ui_init_oauth=own)
    CognitoAuth(issuer.settings(domain="auth.example.com")).init_app(app)
    assert app.swagger_ui_init_oauth is own


def test_openapi_module_dependencies_use_the_registered_auths_scheme(
    issuer: LocalIssuer,
) -> None:
    app = FastAPI()
    CognitoAuth(issuer.settings()).init_app(app)
    add_echo_route(app, "/me", Depends(current_user))
    add_echo_route(app, "/orders", Depends(require_scope("orders/read")))
    spec = app.openapi()
    validate(spec, cls=OpenAPIV31SpecValidator)
    name, scheme = only_scheme(spec)
    assert scheme["type"] == "http"
    assert spec["paths"]["/me"]["get"]["security"] == [{name: []}]
    assert spec["paths"]["/orders"]["get"]["security"] == [{name: ["orders/read"]}]


def test_openapi_module_dependencies_describe_their_own_apps_auth(issuer: LocalIssuer) -> None:
    bearer_app = FastAPI()
    CognitoAuth(issuer.settings()).init_app(bearer_app)
    add_echo_route(bearer_app, "/me", Depends(current_user))
    CognitoAuth(issuer.settings(domain="auth.example.com")).init_app(FastAPI())  # registered last
    _, scheme = only_scheme(bearer_app.openapi())
    assert scheme["type"] == "http"


# -- dependencies on a WebSocket route ----------------------------------------------------


@pytest.fixture
def ws_client(auth: CognitoAuth[Any]) -> Any:
    """Starlette's TestClient over a WebSocket route guarded by ``Security(current_user)``."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using .httpx. with .starlette.testclient")
        from starlette.testclient import TestClient

    app = FastAPI(lifespan=auth.lifespan)

    @app.websocket("/ws")
    async def echo(
        websocket: WebSocket,
        user: CognitoUser = Security(auth.current_user, scopes=["orders/read"]),
    ) -> None:
        await websocket.accept()
        await websocket.send_text(user.username or "")
        await websocket.send_text(websocket.scope["query_string"].decode())
        await websocket.close()

    with TestClient(app) as client:
        yield client


def test_websocket_dependency_accepts_a_valid_token(ws_client: Any, issuer: LocalIssuer) -> None:
    with ws_client.websocket_connect("/ws", headers=bearer(full_token(issuer))) as ws:
        assert ws.receive_text() == "alice"


def test_websocket_dependency_accepts_the_bearer_subprotocol_and_names_it(
    ws_client: Any, issuer: LocalIssuer
) -> None:
    offered = [BEARER_SUBPROTOCOL, full_token(issuer)]
    with ws_client.websocket_connect("/ws", subprotocols=offered) as ws:
        assert ws.accepted_subprotocol == BEARER_SUBPROTOCOL  # the route called accept()
        assert ws.receive_text() == "alice"


def test_websocket_dependency_removes_the_query_token_from_the_query_string(
    ws_client: Any, issuer: LocalIssuer
) -> None:
    with ws_client.websocket_connect(f"/ws?access_token={full_token(issuer)}&room=7") as ws:
        assert ws.receive_text() == "alice"
        assert ws.receive_text() == "room=7"


def test_websocket_dependency_refusal_through_the_subprotocol_names_it_and_closes_1008(
    ws_client: Any, issuer: LocalIssuer
) -> None:
    offered = [BEARER_SUBPROTOCOL, forged_token(issuer)]
    assert websocket_refusal(ws_client, "/ws", offered) == (BEARER_SUBPROTOCOL, 1008)


def test_websocket_dependency_without_a_token_closes_with_1008(ws_client: Any) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, ws_client.websocket_connect("/ws") as ws:
        ws.receive_text()
    assert closed.value.code == 1008


def test_websocket_dependency_without_the_scope_closes_with_1008(
    ws_client: Any, issuer: LocalIssuer
) -> None:
    token = issuer.access_token(groups=["premium"])
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        ws_client.websocket_connect("/ws", headers=bearer(token)) as ws,
    ):
        ws.receive_text()
    assert closed.value.code == 1008


QUERY_NAME = st.one_of(
    st.sampled_from(["access_token", "access%5Ftoken", "access_tok%65n", "room", "a+b", ""]),
    st.text(alphabet="abc_%=+5F", max_size=8),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(QUERY_NAME, st.text(alphabet="xyz%=+", max_size=4)), max_size=5))
def test_no_access_token_parameter_survives_in_a_websocket_query_string(
    pairs: list[tuple[str, str]],
) -> None:
    query = "&".join(f"{name}={value}" for name, value in pairs)
    scope = {"type": "websocket", "headers": [], "query_string": query.encode()}
    sent = [v for n, v in parse_qsl(query, keep_blank_values=True) if n == "access_token"]
    assert connection_token(scope) == (sent[0] if sent and sent[0] else None)
    remaining = parse_qsl(scope["query_string"].decode(), keep_blank_values=True)
    assert "access_token" not in {name for name, _ in remaining}


def ws_dependency_app(auth: CognitoAuth[Any]) -> FastAPI:
    app = FastAPI(lifespan=auth.lifespan)

    @app.websocket("/ws")
    async def echo(websocket: WebSocket, user: CognitoUser = Depends(auth.current_user)) -> None:
        await websocket.accept()
        await websocket.send_text(user.username or "")
        await websocket.close()

    return app


@pytest.mark.parametrize("way", ["query", "subprotocol"])
def test_websocket_dependency_over_uvicorn_keeps_the_token_out_of_its_log(
    issuer: LocalIssuer, way: str
) -> None:
    token = full_token(issuer)
    with (
        issuer.serve(),
        uvicorn_server(ws_dependency_app(CognitoAuth(issuer.settings()))) as (
            url,
            log,
        ),
    ):
        ws_url = url.replace("http", "ws", 1) + "/ws"
        if way == "query":
            socket = connect(f"{ws_url}?access_token={token}")
        else:
            socket = connect(
                ws_url, subprotocols=[Subprotocol(BEARER_SUBPROTOCOL), Subprotocol(token)]
            )
        with socket:
            assert socket.recv(timeout=5) == "alice"
            assert socket.subprotocol == (BEARER_SUBPROTOCOL if way == "subprotocol" else None)
    assert "[accepted]" in log.text
    assert token.rsplit(".", 1)[1] not in log.text


# -- error bodies and lifespan ---------------------------------------------------------


async def test_error_body_has_detail_and_code_with_the_lifespan(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/instance/current_user")
    assert response.json() == {"detail": response.json()["detail"], "code": "missing_token"}


async def test_error_body_has_detail_and_code_with_init_app_and_no_lifespan(
    auth: CognitoAuth[Any], issuer: LocalIssuer
) -> None:
    app = FastAPI()
    auth.init_app(app)
    add_echo_route(app, "/me", Depends(auth.current_user))
    add_echo_route(app, "/module", Depends(current_user))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        for route in ("/me", "/module"):
            missing = await c.get(route)
            assert missing.json() == {"detail": missing.json()["detail"], "code": "missing_token"}
            bad = await c.get(route, headers=bearer(forged_token(issuer)))
            assert bad.json() == {"detail": bad.json()["detail"], "code": "bad_signature"}
            assert (await c.get(route, headers=bearer(full_token(issuer)))).status_code == 200


async def test_without_registration_errors_keep_status_and_challenge(
    auth: CognitoAuth[Any],
) -> None:
    app = FastAPI()
    add_echo_route(app, "/me", Depends(auth.current_user))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
        response = await c.get("/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == BARE_CHALLENGE
    assert response.json() == {"detail": response.json()["detail"]}


async def test_lifespan_can_run_twice(issuer: LocalIssuer) -> None:
    with issuer.serve():
        auth = CognitoAuth(issuer.settings())
        app = FastAPI(lifespan=auth.lifespan)
        add_echo_route(app, "/me", Depends(auth.current_user))
        for username in ("alice", "bob"):
            async with running(app) as c:
                response = await c.get("/me", headers=bearer(full_token(issuer, username)))
            assert response.status_code == 200
            assert response.json()["username"] == username


# -- end to end: uvicorn + moto -------------------------------------------------------


def moto_app(pool: CognitoPool) -> FastAPI:
    settings = CognitoSettings(
        user_pool_id=pool.pool_id, client_ids=[pool.client_id], jwks_url=pool.jwks_url
    )
    auth = CognitoAuth(settings)
    app = FastAPI(lifespan=auth.lifespan)
    add_echo_route(app, "/me", Depends(auth.current_user))
    add_echo_route(app, "/premium", Depends(auth.require_group("premium")))
    return app


def test_end_to_end_over_uvicorn_with_a_moto_pool(moto_pool: CognitoPool) -> None:
    moto_pool.create_user("alice", email="alice@example.com", groups=["premium"])
    tokens = moto_pool.tokens("alice")
    with (
        uvicorn_server(moto_app(moto_pool)) as (url, _),
        httpx.Client(base_url=url, trust_env=False, timeout=10) as http,
    ):
        me = http.get("/me", headers=bearer(tokens["AccessToken"]))
        assert me.status_code == 200
        assert me.json()["username"] == "alice"
        assert me.json()["user_pool_id"] == moto_pool.pool_id
        assert http.get("/premium", headers=bearer(tokens["AccessToken"])).status_code == 200
        anonymous = http.get("/me")
        assert anonymous.status_code == 401
        assert anonymous.json()["code"] == "missing_token"
        wrong_use = http.get("/me", headers=bearer(tokens["IdToken"]))
        assert wrong_use.status_code == 401
        assert wrong_use.json()["code"] == "wrong_token_use"
