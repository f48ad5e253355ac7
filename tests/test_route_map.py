"""The route map (DESIGN §17): what protects each route, read from the app itself.

Over ``tests/route_map_app.py`` (every kind of guard: open, user, groups any/all,
scopes any/all, group-or-scope, pools, step-up, active session, ``login_required``, declared
``Security`` scopes, a middleware with exclusions, a mounted app with its own auth,
a WebSocket, a user's own dependency): one record per route with its full path and
what it demands; a user's own dependency is ``unknown``, never ``open`` or
``guarded``; ``admits`` answers for a given user. ``assert_route_map`` fails naming a
new open route and a removed guard (those first), and writes the file with
``FCG_UPDATE_ROUTE_MAP=1``. Step-up (``require_auth``) is recorded with its
requirement.
"""

import json
from pathlib import Path

import pytest
from fastapi import FastAPI

from fastapi_cognito_guard import CognitoAuth, CognitoUser, CurrentUser, route_map
from fastapi_cognito_guard.route_records import RouteRecord, admits, route_map_json
from fastapi_cognito_guard.testing import assert_route_map
from tests.route_map_app import ADMIN_POOL, POOL, build

APP = build()


def record(path: str, method: str = "GET") -> RouteRecord:
    found = [r for r in route_map(APP) if r.path == path and (method in r.methods or not r.methods)]
    assert len(found) == 1, found
    return found[0]


def user(**fields: object) -> CognitoUser:
    values: dict[str, object] = {
        "sub": "u-1",
        "token_use": "access",
        "client_id": "main-client",
        "user_pool_id": POOL,
    }
    values.update(fields)
    return CognitoUser.model_validate(values)


# -- what each kind of route records --------------------------------------------------


def test_route_without_dependencies_is_open() -> None:
    assert record("/health").status == "open"


def test_current_user_route_is_guarded_by_the_registered_auth() -> None:
    me = record("/me")

    assert (me.status, me.auth_source, me.auth_app) == ("guarded", "registered", "/")
    assert (me.pools, me.clients, me.token_use) == ((POOL,), ("main-client",), ("access",))
    assert me.sessions


def test_optional_user_route_is_open() -> None:
    assert record("/hello").status == "open"


def test_require_group_records_any_of_the_groups() -> None:
    premium = record("/shop/premium")

    assert (premium.status, premium.groups, premium.groups_all) == ("guarded", ("premium",), False)


def test_require_group_all_records_every_group() -> None:
    staff = record("/shop/staff")

    assert (staff.groups, staff.groups_all) == (("staff", "admin"), True)


def test_require_scope_records_every_scope() -> None:
    orders = record("/shop/orders")

    assert (orders.scopes, orders.scopes_all) == (("orders/read",), True)


def test_require_scope_any_records_any_of_the_scopes() -> None:
    reports = record("/shop/reports")

    assert (reports.scopes, reports.scopes_all) == (("reports/read", "reports/all"), False)


def test_require_any_records_groups_or_scopes() -> None:
    either = record("/shop/either")

    assert (either.groups, either.scopes, either.group_or_scope) == (("ops",), ("ops/read",), True)


def test_scopes_declared_around_current_user_are_required() -> None:
    declared = record("/shop/declared")

    assert (declared.scopes, declared.scopes_all) == (("shop/write",), True)


def test_require_pool_records_the_pool_of_the_instance() -> None:
    pool = record("/main-pool-only")

    assert (pool.pools, pool.auth_source) == ((POOL,), "instance")


def test_active_session_is_recorded() -> None:
    assert record("/active").active_session


def test_login_required_is_recorded() -> None:
    assert record("/page").login_required


def test_users_own_dependency_alone_is_unknown() -> None:
    tenant = record("/tenant")

    assert (tenant.status, tenant.custom) == ("unknown", ("tenant",))


def test_users_own_dependency_beside_a_guard_is_guarded_and_named() -> None:
    both = record("/tenant-user")

    assert (both.status, both.custom) == ("guarded", ("tenant",))


def test_decorated_endpoint_without_a_guard_is_unknown() -> None:
    decorated = record("/decorated")

    assert (decorated.status, decorated.custom) == ("unknown", ("decorated checked",))


def test_websocket_route_is_recorded_as_websocket() -> None:
    ws = record("/ws")

    assert (ws.kind, ws.status, ws.methods) == ("websocket", "guarded", ())


def test_mounted_app_uses_its_own_registration() -> None:
    whoami = record("/admin/whoami")

    assert (whoami.auth_source, whoami.auth_app, whoami.pools) == (
        "registered",
        "/admin",
        (ADMIN_POOL,),
    )
    assert whoami.mount == "/admin"


def test_middleware_guards_the_routes_it_does_not_exclude() -> None:
    orders = record("/svc/orders")

    assert (orders.status, orders.auth_source, orders.pools) == ("guarded", "middleware", (POOL,))


@pytest.mark.parametrize(
    ("path", "entry"), [("/svc/health", "/health"), ("/svc/public/catalog", "/public/*")]
)
def test_middleware_exclusion_opens_a_route_and_names_the_entry(path: str, entry: str) -> None:
    excluded = record(path)

    assert (excluded.status, excluded.excluded_by) == ("open", entry)


def test_fastapi_docs_routes_are_open() -> None:
    assert record("/docs").status == "open"


def test_login_router_routes_are_open() -> None:
    assert record("/auth/login").status == "open"


def test_module_dependencies_without_any_registration_come_from_the_environment() -> None:
    app = FastAPI()

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.sub

    assert route_map(app)[-1].auth_source == "environment"


def test_lifespan_registration_counts_before_the_lifespan_ran() -> None:
    auth = CognitoAuth(build.__globals__["issuer"].settings())
    app = FastAPI(lifespan=auth.lifespan)

    @app.get("/me")
    async def me(user: CurrentUser) -> str:
        return user.sub

    assert route_map(app)[-1].auth_source == "registered"


def test_step_up_records_its_requirement() -> None:
    recent = record("/recent")

    assert (recent.status, recent.step_up) == ("guarded", "max_age=300 amr=mfa")


def test_cannot_tell_whether_a_user_passes_a_step_up_route() -> None:
    assert admits(record("/recent"), user()) is None


# -- would this user pass? -------------------------------------------------------------


def test_admits_a_user_in_the_group() -> None:
    assert admits(record("/shop/premium"), user(groups=("premium",))) is True


def test_refuses_a_user_outside_the_group() -> None:
    assert admits(record("/shop/premium"), user()) is False


def test_refuses_a_caller_without_a_token_on_a_guarded_route() -> None:
    assert admits(record("/me"), None) is False


def test_refuses_a_user_of_another_pool() -> None:
    assert admits(record("/me"), user(user_pool_id=ADMIN_POOL)) is False


def test_cannot_tell_for_an_unknown_route() -> None:
    assert admits(record("/tenant"), user()) is None


# -- assert_route_map ------------------------------------------------------------------


@pytest.fixture
def recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The app's map written by ``FCG_UPDATE_ROUTE_MAP=1``; the variable unset again."""
    target = tmp_path / "auth-routes.json"
    monkeypatch.setenv("FCG_UPDATE_ROUTE_MAP", "1")
    assert_route_map(APP, target)
    monkeypatch.delenv("FCG_UPDATE_ROUTE_MAP")
    return target


def test_update_variable_writes_the_map(recorded: Path) -> None:
    assert json.loads(recorded.read_text()) == route_map_json(APP)


def test_unchanged_app_passes(recorded: Path) -> None:
    assert_route_map(build(), recorded)


def test_new_open_route_fails_naming_it_first(recorded: Path) -> None:
    with pytest.raises(AssertionError) as failure:
        assert_route_map(build(extra_open=True), recorded)

    first = str(failure.value).splitlines()[1]
    assert first == "- added open route: GET /new"


def test_removed_guard_fails_naming_the_route(recorded: Path) -> None:
    with pytest.raises(AssertionError, match=r"- lost a guard: GET /me: .*'guarded' -> 'open'"):
        assert_route_map(build(me_guarded=False), recorded)


def test_removed_route_fails_naming_it(recorded: Path) -> None:
    recorded.write_text(
        json.dumps([*json.loads(recorded.read_text()), {"methods": ["GET"], "path": "/gone"}])
    )

    with pytest.raises(AssertionError, match=r"- removed route: GET /gone"):
        assert_route_map(APP, recorded)


def test_missing_file_fails_naming_the_update_variable(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="FCG_UPDATE_ROUTE_MAP=1"):
        assert_route_map(APP, tmp_path / "absent.json")


def test_path_is_relative_to_the_working_directory(
    recorded: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(recorded.parent)

    assert_route_map(APP, "auth-routes.json")
