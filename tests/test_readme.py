"""The README runs as written: its set-up commands are the ones CI runs, and its Python
examples execute against a local issuer on 127.0.0.1.

Every ```python block in README.md follows a marker comment
``<!-- readme-test: SCENARIO [file=NAME] [needs=NAME,...] -->``. Blocks of one scenario
run in order in one namespace, then the scenario's test drives the app they built;
``standalone`` blocks each run alone (the app starts, every plain GET route answers
without a 500); ``file=`` blocks are written to files and run by pytest in a
subprocess, as a user's own test suite. ``needs=`` names the features a block uses
(``CurrentUser``, ``CognitoAuth.login_router``): a missing one fails the block's
test, naming it.
"""

from __future__ import annotations

import importlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import yaml  # type: ignore[import-untyped]
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from fastapi_cognito_guard import CognitoClientCredentials, CognitoSettings
from fastapi_cognito_guard.sessions.session import Session
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.testing.dev_issuer import env_lines
from fastapi_cognito_guard.testing.devmode import DEV_TOKEN_PARAMETERS
from tests.helpers import claims_of
from tests.sessions_support import seal_session

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
MARKED_BLOCK = re.compile(
    r"<!-- readme-test: (?P<scenario>[\w-]+)(?P<options>[^>]*?)\s*-->\n```python\n(?P<code>.*?)```",
    flags=re.S,
)


@dataclass(frozen=True)
class Block:
    scenario: str
    code: str
    line: int
    file: str | None
    needs: tuple[str, ...]


def readme_blocks() -> list[Block]:
    blocks = []
    for match in MARKED_BLOCK.finditer(README):
        options = dict(option.split("=", 1) for option in match["options"].split())
        blocks.append(
            Block(
                scenario=match["scenario"],
                code=match["code"],
                line=README.count("\n", 0, match.start()) + 1,
                file=options.get("file"),
                needs=tuple(filter(None, options.get("needs", "").split(","))),
            )
        )
    return blocks


def scenario(name: str) -> list[Block]:
    blocks = [block for block in readme_blocks() if block.scenario == name]
    assert blocks, f"README has no {name!r} example"
    return blocks


def missing_features(blocks: list[Block]) -> list[str]:
    """The ``needs=`` names that do not exist yet: package attributes, dotted, where
    ``CognitoAuth.x`` is looked up on an instance (dependencies may be set in ``__init__``)."""
    package = importlib.import_module("fastapi_cognito_guard")
    auth = package.CognitoAuth(
        package.CognitoSettings(user_pool_id="eu-central-1_Test", client_ids=["readme"])
    )
    missing = []
    for name in dict.fromkeys(need for block in blocks for need in block.needs):
        first, *rest = name.split(".")
        value: Any = auth if first == "CognitoAuth" and rest else getattr(package, first, None)
        for part in rest:
            value = getattr(value, part, None)
        if value is None:
            missing.append(name)
    return missing


def require_available(blocks: list[Block]) -> None:
    """Every name a README example marks as needed must exist: a missing one fails
    (the README promises it), it is never a skip."""
    missing = missing_features(blocks)
    lines = ", ".join(str(block.line) for block in blocks)
    assert not missing, f"README example (line {lines}) uses what the package lacks: {missing}"


def run(blocks: list[Block]) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"readme_{blocks[0].scenario.replace('-', '_')}"}
    for block in blocks:
        exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)  # noqa: S102
    return namespace


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def plain_get_paths(app: FastAPI) -> list[str]:
    return [
        route.path
        for route in app.routes
        if isinstance(route, APIRoute) and "GET" in route.methods and "{" not in route.path
    ]


@pytest.fixture
def environment(cognito_issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch) -> LocalIssuer:
    """``COGNITO_*`` pointing at a local issuer; identity pool calls go to a closed port."""
    for name in list(os.environ):
        if name.upper().startswith("COGNITO_"):
            monkeypatch.delenv(name)
    settings = cognito_issuer.settings()
    monkeypatch.setenv("COGNITO_USER_POOL_ID", settings.user_pool_id)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", ",".join(settings.client_ids))
    monkeypatch.setenv("COGNITO_JWKS_URL", str(settings.jwks_url))
    monkeypatch.setenv(
        "COGNITO_IDENTITY_POOL_ID", "eu-central-1:00000000-0000-0000-0000-0000000000"
    )
    monkeypatch.setenv("COGNITO_IDENTITY_ENDPOINT", "http://127.0.0.1:9/")
    return cognito_issuer


# -- set-up commands ------------------------------------------------------------------


def readme_commands() -> list[str]:
    blocks = re.findall(r"```sh\n(.*?)```", README, flags=re.S)
    return [line for block in blocks for line in block.splitlines() if "pip install" in line]


def test_readme_gives_exactly_two_setup_commands() -> None:
    commands = readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("python -m example_app")
    assert commands[1].endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    assert readme_commands()[1] in ci_lines


def test_readme_test_command_installs_the_pinned_versions() -> None:
    assert 'pip install -c constraints.txt -e ".[dev]"' in readme_commands()[1]


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", markdown, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_links_to_sections_point_at_existing_headings() -> None:
    security = (ROOT / "SECURITY.md").read_text()
    links = re.findall(r"\]\((SECURITY\.md)?#([\w-]+)\)", README)

    assert [
        anchor for page, anchor in links if anchor not in anchors(security if page else README)
    ] == []


# -- the examples ---------------------------------------------------------------------


def test_every_python_example_is_marked_to_run() -> None:
    assert README.count("```python\n") == len(readme_blocks())


def test_api_example_guards_routes_by_group_scope_and_either(environment: LocalIssuer) -> None:
    blocks = scenario("api")
    require_available(blocks)
    app = run(blocks)["app"]
    alice = environment.access_token(username="alice", groups=["premium"], scopes=["orders/read"])
    machine = environment.client_credentials_token(scopes=["reports/read"])

    with TestClient(app) as client:
        assert client.get("/me", headers=bearer(alice)).json()["username"] == "alice"
        assert client.get("/hello").json() == {"hello": "stranger"}
        assert client.get("/hello", headers=bearer(alice)).json() == {"hello": "alice"}
        assert client.get("/premium", headers=bearer(alice)).status_code == 200
        assert client.get("/premium", headers=bearer(machine)).status_code == 403
        assert client.get("/orders", headers=bearer(alice)).status_code == 200
        assert client.get("/orders2", headers=bearer(machine)).status_code == 403
        assert client.get("/reports", headers=bearer(machine)).status_code == 200
        assert client.get("/reports", headers=bearer(alice)).status_code == 403
        assert client.get("/me").status_code == 401


def test_user_model_example_lifts_a_custom_attribute_from_id_tokens(
    environment: LocalIssuer,
) -> None:
    app = run(scenario("api-user-model"))["app"]
    token = environment.id_token(username="alice", custom={"tier": "gold"})

    with TestClient(app) as client:
        assert client.get("/tier", headers=bearer(token)).json() == {"tier": "gold"}


def test_browser_example_sends_signed_out_visitors_to_the_hosted_ui(
    environment: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = scenario("browser")
    require_available(blocks)
    oauth_url = environment.settings().oauth_url
    assert oauth_url is not None
    monkeypatch.setenv("COGNITO_OAUTH_URL", oauth_url)
    monkeypatch.setenv("COGNITO_SESSION_SECRET", "s" * 32)
    app = run(blocks)["app"]

    with TestClient(app, follow_redirects=False) as client:
        assert "Sign in" in client.get("/").text
        account = client.get("/account", headers={"Accept": "text/html"})
        assert account.status_code in (302, 303, 307)
        assert account.headers["location"].startswith("/auth/login")
        login = client.get("/auth/login")
        assert login.headers["location"].startswith(f"{oauth_url.rstrip('/')}/oauth2/authorize")


def test_microservice_example_answers_preflights_and_guards_the_rest(
    environment: LocalIssuer,
) -> None:
    app = run(scenario("microservice"))["app"]
    token = environment.access_token(username="alice")
    preflight = {"Origin": "https://app.example.com", "Access-Control-Request-Method": "GET"}

    with TestClient(app) as client:
        answer = client.options("/orders", headers=preflight)
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://app.example.com"
        assert client.get("/orders").status_code == 401
        assert client.get("/orders", headers=bearer(token)).status_code == 200
        assert client.get("/health").json() == {"status": "ok"}


def signed_in_cookie(issuer: LocalIssuer, secret: str, username: str) -> str:
    """A browser session cookie for ``username``, as a sign-in at ``issuer`` leaves it."""
    access = issuer.access_token(username=username)
    sub = claims_of(access)["sub"]
    session = Session(
        sid=f"sid-{username}",
        sub=sub,
        id_token=issuer.id_token(username=username, sub=sub),
        access_token=access,
        refresh_token=None,
        expires_at=claims_of(access)["exp"],
        started_at=int(time.time()),
    )
    return seal_session(session, secret)


def test_signout_example_signs_out_bearer_and_cookie_callers(
    environment: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = scenario("signout")
    require_available(blocks)
    secret = "s" * 32
    oauth_url = environment.settings().oauth_url
    assert oauth_url is not None
    monkeypatch.setenv("COGNITO_OAUTH_URL", oauth_url)
    monkeypatch.setenv("COGNITO_SESSION_SECRET", secret)
    app = run(blocks)["app"]
    token = environment.access_token(username="alice")
    cookie = signed_in_cookie(environment, secret, "bob")
    same_site = {"Origin": "http://testserver"}

    with TestClient(app) as client:
        answer = client.post("/logout", headers=bearer(token))
        assert answer.json() == {"user_revoked": False, "cognito": "not_asked"}
        assert client.post("/logout", headers=bearer(token)).json()["code"] == "revoked"
        client.cookies.set("fcg_session", cookie)
        answer = client.post("/logout", headers=same_site)
        assert answer.json() == {"user_revoked": False, "cognito": "not_asked"}
        assert "fcg_session=;" in answer.headers["set-cookie"]
        client.cookies.set("fcg_session", cookie)  # a copy kept from before
        assert client.post("/logout", headers=same_site).json()["code"] == "revoked"


def test_lambda_example_answers_by_the_token(environment: LocalIssuer) -> None:
    namespace = run(scenario("lambda"))
    handler, loop, verifier = namespace["handler"], namespace["loop"], namespace["verifier"]
    token = environment.access_token(username="alice")
    try:
        accepted = handler({"headers": {"authorization": f"Bearer {token}"}}, None)
        assert accepted["statusCode"] == 200
        forged = handler({"headers": {"authorization": f"bearer {token[:-4]}AAAA"}}, None)
        assert forged == {"statusCode": 401, "body": "bad_signature"}
        assert handler({"headers": {}}, None) == {"statusCode": 401, "body": "missing_token"}
    finally:
        loop.run_until_complete(verifier.aclose())
        loop.close()


def run_as_test_suite(
    blocks: list[Block], tmp_path: Path, env: dict[str, str] | None = None
) -> None:
    """Write the blocks as a user's test files and run pytest on them: every test passes."""
    require_available(blocks)
    for block in blocks:
        assert block.file is not None
        (tmp_path / block.file).write_text(block.code)
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("COGNITO_")}
    environ.update(env or {})

    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    tests = sum(block.code.count("\ndef test_") for block in blocks)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{tests} passed" in result.stdout


def test_testing_example_passes_as_a_users_test_suite(tmp_path: Path) -> None:
    run_as_test_suite(scenario("testing"), tmp_path)


def test_sign_in_recipe_passes_as_a_users_test_suite(tmp_path: Path) -> None:
    run_as_test_suite(scenario("recipe-sign-in"), tmp_path)


def test_identity_recipe_gives_the_user_credentials_from_moto() -> None:
    answer = run(scenario("recipe-identity"))["answer"]

    assert answer.status_code == 200, answer.text
    assert ":" in answer.json()  # an identity id: region:uuid


def test_proxy_recipe_links_and_redirects_carry_the_root_path(
    environment: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocks = scenario("recipe-proxy")
    require_available(blocks)
    oauth_url = environment.settings().oauth_url
    assert oauth_url is not None
    monkeypatch.setenv("COGNITO_OAUTH_URL", oauth_url)
    monkeypatch.setenv("COGNITO_SESSION_SECRET", "s" * 32)
    monkeypatch.setenv("COGNITO_REDIRECT_URI", "https://example.com/api/auth/callback")
    app = run(blocks)["app"]

    with TestClient(app, root_path="/api", follow_redirects=False) as client:
        home = client.get("/api/").text
        login = client.get("/api/auth/login", params={"next": "/api/"})

    assert 'href="/api/auth/login?next=/api/"' in home
    assert (
        "redirect_uri=https%3A%2F%2Fexample.com%2Fapi%2Fauth%2Fcallback"
        in login.headers["location"]
    )


def test_route_map_example_tells_open_guarded_and_unknown_routes(environment: LocalIssuer) -> None:
    statuses = run(scenario("route-map"))["statuses"]

    assert statuses["/health"] == ("open", ())
    assert statuses["/me"] == ("guarded", ())
    assert statuses["/admin"] == ("guarded", ("admin",))
    assert statuses["/tenant"] == ("unknown", ())


def test_route_map_check_writes_the_file_then_passes(tmp_path: Path) -> None:
    blocks = scenario("route-map-check")
    run_as_test_suite(blocks, tmp_path, env={"FCG_UPDATE_ROUTE_MAP": "1"})
    assert (tmp_path / "auth-routes.json").exists()

    run_as_test_suite(blocks, tmp_path)


def test_readme_shows_every_screenshot_in_docs() -> None:
    for screenshot in sorted((ROOT / "docs").glob("*.png")):
        assert f"](docs/{screenshot.name})" in README, screenshot.name


COMPOSE = ROOT / "examples" / "docker-compose.yml"


def test_readme_shows_the_compose_file_as_it_is() -> None:
    assert f"```yaml\n{COMPOSE.read_text()}```" in README


def test_compose_file_runs_dev_issuer_reachable_from_the_host_only() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    issuer, app = services["issuer"], services["app"]

    assert "fastapi_cognito_guard dev-issuer --host 0.0.0.0 --port 8001" in issuer["command"]
    assert "--public-url http://localhost:8001" in issuer["command"]
    assert all(port.startswith("127.0.0.1:") for port in issuer["ports"])
    assert app["network_mode"] == "service:issuer"


def test_compose_file_gives_the_app_the_lines_dev_issuer_prints() -> None:
    environment = yaml.safe_load(COMPOSE.read_text())["services"]["app"]["environment"]
    issuer = LocalIssuer(user_pool_id="eu-central-1_Local", client_id="local-client")
    with issuer.serve(public_url="http://localhost:8001"):
        printed = dict(line.split("=", 1) for line in env_lines(issuer))

    assert set(environment) == set(printed)
    secret = environment.pop("COGNITO_SESSION_SECRET")
    del printed["COGNITO_SESSION_SECRET"]
    assert environment == printed
    assert len(secret) >= 32


def test_readme_documents_every_dev_token_parameter() -> None:
    for name, meaning in DEV_TOKEN_PARAMETERS.items():
        assert f"| `{name}` | {meaning} |" in README


def test_readme_says_login_required_redirects_only_html_navigations() -> None:
    assert "`Accept` includes `text/html`" in README


def standalone_blocks() -> Iterator[Any]:
    for block in readme_blocks():
        if block.scenario == "standalone":
            yield pytest.param(block, id=f"line{block.line}")


def example_modules() -> dict[str, str]:
    """Every example whose features exist, as the module files a user would write."""
    modules: dict[str, str] = {}
    for block in readme_blocks():
        if missing_features([block]):
            continue
        if block.file is not None:
            name = block.file
        elif block.scenario == "standalone":
            name = f"readme_line{block.line}.py"
        else:
            name = f"readme_{block.scenario.replace('-', '_')}.py"
        modules[name] = modules.get(name, "") + block.code
    return modules


def test_examples_pass_mypy_strict(tmp_path: Path) -> None:
    for name, code in example_modules().items():
        (tmp_path / name).write_text(code)

    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert result.stdout.splitlines() == [], result.stdout


@pytest.mark.parametrize("block", list(standalone_blocks()))
def test_standalone_example_starts_and_never_answers_500(
    block: Block, environment: LocalIssuer
) -> None:
    require_available([block])
    app = run([block])["app"]

    with TestClient(app) as client:
        assert client.get("/openapi.json").status_code == 200
        for path in plain_get_paths(app):
            assert client.get(path).status_code != 500, path


# -- today's Cognito: service-to-service calls and emulator recipes ---------------------


async def test_service_to_service_example_sends_a_client_credentials_token(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    issuer = LocalIssuer(client_id="orders-worker", client_secret="worker+secret")
    seen: list[str] = []

    async def orders(scope: Any, receive: Any, send: Any) -> None:
        seen.append(dict(scope["headers"]).get(b"authorization", b"").decode())
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"[]"})

    with issuer.serve():
        for name in list(os.environ):
            if name.upper().startswith("COGNITO_"):
                monkeypatch.delenv(name)
        settings = issuer.settings()
        monkeypatch.setenv("COGNITO_USER_POOL_ID", settings.user_pool_id)
        monkeypatch.setenv("COGNITO_CLIENT_IDS", "orders-worker")
        monkeypatch.setenv("COGNITO_OAUTH_URL", str(settings.oauth_url))
        monkeypatch.setenv("COGNITO_CLIENT_SECRET", "worker+secret")
        blocks = scenario("service-to-service")
        require_available(blocks)
        namespace = run(blocks)
        auth = namespace["orders_api"].auth
        assert isinstance(auth, CognitoClientCredentials)
        await namespace["orders_api"].aclose()
        transport = httpx.ASGITransport(app=orders)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://orders", auth=auth
        ) as http:
            namespace["orders_api"] = http  # the same auth, calling a local service
            assert await namespace["open_orders"]() == []

    assert seen[0].startswith("Bearer ")
    assert issuer.calls["token:client_credentials"] == 1


COMPOSE_RECIPES = ("examples/cognito-local.compose.yml", "examples/localstack.compose.yml")


@pytest.mark.parametrize("path", COMPOSE_RECIPES)
def test_compose_recipe_is_shown_verbatim_in_the_readme(path: str) -> None:
    assert f"```yaml\n{(ROOT / path).read_text()}```" in README


@pytest.mark.parametrize("path", COMPOSE_RECIPES)
def test_compose_recipe_settings_parse(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = yaml.safe_load((ROOT / path).read_text())
    app = recipe["services"]["app"]
    assert app["depends_on"]
    assert set(app["depends_on"]) <= set(recipe["services"])
    for name in list(os.environ):
        if name.upper().startswith("COGNITO_"):
            monkeypatch.delenv(name)
    for name, value in app["environment"].items():
        monkeypatch.setenv(name, str(value))

    settings = CognitoSettings()

    assert settings.issuers == (app["environment"]["COGNITO_ISSUER"],)
    assert settings.jwks_url is not None
    assert urlsplit(settings.jwks_url).hostname in recipe["services"]


def test_step_up_example_challenges_an_old_sign_in(environment: LocalIssuer) -> None:
    blocks = scenario("step-up")
    require_available(blocks)
    app = run(blocks)["app"]
    old = environment.access_token(auth_time=int(time.time()) - 3600)
    fresh = environment.access_token(amr=["pwd", "mfa"])

    with TestClient(app) as client:
        refused = client.post("/payouts", headers=bearer(old))
        assert refused.status_code == 401
        assert refused.json()["code"] == "insufficient_user_authentication"
        assert 'max_age="300"' in refused.headers["www-authenticate"]
        assert "resource_metadata=" in refused.headers["www-authenticate"]
        assert client.post("/payouts", headers=bearer(fresh)).status_code == 200
        assert client.get("/security-keys", headers=bearer(old)).status_code == 401
        assert client.get("/security-keys", headers=bearer(fresh)).status_code == 200
        metadata = client.get("/.well-known/oauth-protected-resource").json()
        assert metadata["bearer_methods_supported"] == ["header"]
