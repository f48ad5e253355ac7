"""The command line (DESIGN.md section 12): ``python -m fastapi_cognito_guard``.

Most tests call ``fastapi_cognito_guard.cli.main(argv, out=StringIO())`` in
process (stderr through ``capsys``); two run the module as a subprocess to prove
the entry point and its exit status. What they prove, one behaviour each:

* ``inspect`` says UNVERIFIED, prints the header and the claims, shows the time
  claims as UTC dates with a relative form ("in 60 min", "2 h ago"), reads ``-``
  from stdin, and exits 1 with a message on garbage (deeply nested JSON included);
  time claims outside what a date can show are printed as they are.
* ``verify`` with the ``COGNITO_*`` environment pointing at a ``LocalIssuer``
  served on 127.0.0.1 prints the verified claims and exits 0; each failed check
  (``expired``, ``wrong_issuer``, ``wrong_token_use``, ``wrong_client``,
  ``bad_signature``, ``unknown_kid``, ``malformed``) is printed by its exact code
  with exit 1, and so are keys that cannot be fetched (closed port); flags
  (``--client-id``, ``--jwks-url``, ``--token-use``) override the environment;
  invalid or missing settings exit 2 naming the field and its variable; a pasted
  ``Bearer …`` (any case, extra whitespace, even the ``Authorization:`` name)
  works for ``inspect`` and ``verify``; on failure the token's ``iss``,
  ``client_id``/``aud`` and ``token_use`` are shown next to the configured ones
  where they differ, control characters escaped.
* ``jwks`` against a local server (``tests/jwks_server.JWKSServer`` with a custom
  document) lists every kid with its algorithm and key size, marks a 1024-bit key
  and a ``use: enc`` key as ignored, takes the URL from the settings when none is
  given (no client id needed), and exits 1 on an unreachable URL. Hostile JWKS
  bodies: a 64 MiB body is never held (peak memory of a subprocess), deeply nested
  JSON is a failed fetch, and escape sequences in any field are printed escaped.
  A pool's two issuer forms are alternatives (Cognito's URLs answered by an
  ``httpx.MockTransport`` that injects 403s): one answering is success.
"""

import base64
import functools
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone

import httpx
import pytest
from redis import Redis

import fastapi_cognito_guard
from fastapi_cognito_guard.cli import main
from fastapi_cognito_guard.testing import LocalIssuer
from tests.example_server import REPO_ROOT, clean_environment
from tests.jwks_server import JWKS_SUFFIX, JWKSServer, closed_port_url
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

pytest_plugins = ["tests.jwks_server"]

OTHER_POOL_ISSUER = "https://cognito-idp.eu-central-1.amazonaws.com/eu-central-1_Other"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[LocalIssuer, str]]:
    """One issuer (RSA key generation is slow) with its JWKS on 127.0.0.1."""
    issuer = LocalIssuer()
    with issuer.serve() as url:
        yield issuer, url


@pytest.fixture
def issuer(served: tuple[LocalIssuer, str]) -> LocalIssuer:
    return served[0]


@pytest.fixture
def jwks_url(served: tuple[LocalIssuer, str]) -> str:
    return served[1]


@pytest.fixture(autouse=True)
def no_cognito_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's own ``COGNITO_*`` settings."""
    for name in list(os.environ):
        if name.startswith("COGNITO_"):
            monkeypatch.delenv(name)


@pytest.fixture
def cognito_env(monkeypatch: pytest.MonkeyPatch, issuer: LocalIssuer, jwks_url: str) -> None:
    """``COGNITO_*`` settings that trust ``issuer``."""
    monkeypatch.setenv("COGNITO_USER_POOL_ID", issuer.user_pool_id)
    monkeypatch.setenv("COGNITO_CLIENT_IDS", issuer.client_id)
    monkeypatch.setenv("COGNITO_JWKS_URL", jwks_url)


def run(*argv: str) -> tuple[int, str]:
    """Run the command line in process; return (exit status, stdout)."""
    out = io.StringIO()
    status = main(list(argv), out=out)
    return status, out.getvalue()


def b64url(value: object) -> str:
    raw = value if isinstance(value, str) else json.dumps(value)
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def time_line(output: str, claim: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(f"{claim} "))


# -- inspect ----------------------------------------------------------------------------


def test_inspect_says_unverified(issuer: LocalIssuer) -> None:
    status, output = run("inspect", issuer.access_token())

    assert status == 0
    assert output.startswith("UNVERIFIED")


def test_inspect_prints_the_header_and_the_claims(issuer: LocalIssuer) -> None:
    status, output = run("inspect", issuer.access_token("alice", groups=["premium"]))

    assert status == 0
    header = output.split("header:\n", 1)[1].split("claims:\n", 1)[0]
    assert json.loads(header) == {"alg": "RS256", "kid": issuer.kid}
    claims = json.loads(output.split("claims:\n", 1)[1].split("times:\n", 1)[0])
    assert claims["username"] == "alice"
    assert claims["cognito:groups"] == ["premium"]


def test_inspect_shows_expiry_as_a_utc_date_in_60_min(issuer: LocalIssuer) -> None:
    token = issuer.access_token(expires_in=3600)
    exp = int(time.time()) + 3600

    _, output = run("inspect", token)

    line = time_line(output, "exp")
    stamp = datetime.fromtimestamp(exp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M")
    assert stamp in line
    assert "UTC" in line
    assert line.endswith("(in 60 min)")


def test_inspect_shows_past_times_as_ago(issuer: LocalIssuer) -> None:
    now = int(time.time())
    token = issuer.access_token(iat=now - 7200, auth_time=now - 7200, exp=now + 1800)

    _, output = run("inspect", token)

    assert time_line(output, "iat").endswith("(2 h ago)")
    assert time_line(output, "auth_time").endswith("(2 h ago)")
    assert time_line(output, "exp").endswith("(in 30 min)")


def test_inspect_reads_the_token_from_stdin(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(issuer.access_token("bob") + "\n"))

    status, output = run("inspect", "-")

    assert status == 0
    assert '"username": "bob"' in output


@pytest.mark.parametrize(
    "garbage",
    [
        "garbage",
        "only.two",
        "###.###.###",
        "é.é.é",
        f"{b64url('not json')}.{b64url({})}.sig",
    ],
    ids=["one-segment", "two-segments", "bad-alphabet", "non-ascii", "not-json"],
)
def test_inspect_garbage_exits_1(garbage: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, output = run("inspect", garbage)

    assert status == 1
    assert output == ""
    assert "not a decodable JWT" in capsys.readouterr().err


def test_inspect_deeply_nested_json_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    token = f"{b64url('[' * 5000 + ']' * 5000)}.{b64url({})}.sig"

    status, _ = run("inspect", token)

    assert status == 1
    assert "not a decodable JWT" in capsys.readouterr().err


def test_inspect_prints_an_out_of_range_expiry_as_is(issuer: LocalIssuer) -> None:
    status, output = run("inspect", issuer.access_token(exp=99_999_999_999_999))

    assert status == 0
    assert "99999999999999" in time_line(output, "exp")


# -- verify -----------------------------------------------------------------------------


@pytest.mark.usefixtures("cognito_env")
def test_verify_prints_the_verified_claims_and_exits_0(issuer: LocalIssuer) -> None:
    status, output = run("verify", issuer.access_token("alice", groups=["premium"]))

    assert status == 0
    first, rest = output.split("\n", 1)
    assert first == f"verified: access token from user pool {issuer.user_pool_id}"
    claims = json.loads(rest)
    assert claims["username"] == "alice"
    assert claims["cognito:groups"] == ["premium"]


@pytest.mark.usefixtures("cognito_env")
def test_verify_reads_the_token_from_stdin(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(issuer.access_token() + "\n"))

    status, _ = run("verify", "-")

    assert status == 0


def signed_by_another_key(issuer: LocalIssuer) -> str:
    """A token whose header names ``issuer``'s kid but whose signature is another key's."""
    impostor = LocalIssuer(user_pool_id=issuer.user_pool_id, client_id=issuer.client_id)
    claims = json.loads(base64.urlsafe_b64decode(issuer.access_token().split(".")[1] + "=="))
    return impostor.sign(claims, header={"kid": issuer.kid, "alg": "RS256"})


FAILURES: dict[str, Callable[[LocalIssuer], str]] = {
    "expired": lambda issuer: issuer.access_token(expires_in=-3600),
    "wrong_issuer": lambda issuer: issuer.access_token(iss=OTHER_POOL_ISSUER),
    "wrong_token_use": lambda issuer: issuer.id_token(),
    "wrong_client": lambda issuer: issuer.access_token(client_id="someone-else"),
    "bad_signature": signed_by_another_key,
    "unknown_kid": lambda issuer: issuer.sign(
        json.loads(base64.urlsafe_b64decode(issuer.access_token().split(".")[1] + "==")),
        header={"kid": "no-such-kid", "alg": "RS256"},
    ),
    "malformed": lambda issuer: "not-a-jwt",
}


@pytest.mark.usefixtures("cognito_env")
@pytest.mark.parametrize("code", FAILURES)
def test_verify_names_the_failed_check_and_exits_1(
    code: str, issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, output = run("verify", FAILURES[code](issuer))

    assert status == 1
    assert output == ""
    assert f"invalid token: {code}: " in capsys.readouterr().err


@pytest.mark.usefixtures("cognito_env")
def test_verify_with_unreachable_keys_exits_1(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COGNITO_JWKS_URL", closed_port_url())

    status, output = run("verify", issuer.access_token())

    assert status == 1
    assert output == ""
    assert "keys unavailable: keys_unavailable: " in capsys.readouterr().err


@pytest.mark.usefixtures("cognito_env")
def test_verify_client_id_flag_overrides_the_environment(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_CLIENT_IDS", "someone-else")

    status, _ = run("verify", issuer.access_token(), "--client-id", issuer.client_id)

    assert status == 0


@pytest.mark.usefixtures("cognito_env")
def test_verify_jwks_url_flag_overrides_the_environment(
    issuer: LocalIssuer, jwks_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_JWKS_URL", closed_port_url())

    status, _ = run("verify", issuer.access_token(), "--jwks-url", jwks_url)

    assert status == 0


@pytest.mark.usefixtures("cognito_env")
def test_verify_token_use_flag_overrides_the_environment(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_TOKEN_USE", "access")

    status, output = run("verify", issuer.id_token(), "--token-use", "id")

    assert status == 0
    assert output.startswith("verified: id token")


def test_verify_without_a_user_pool_id_exits_2_naming_it(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run("verify", issuer.access_token(), "--client-id", issuer.client_id)

    assert status == 2
    assert "user_pool_id (COGNITO_USER_POOL_ID): Field required" in capsys.readouterr().err


@pytest.mark.usefixtures("cognito_env")
@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("COGNITO_USER_POOL_ID", "not-a-pool", "user_pool_id"),
        ("COGNITO_JWKS_URL", "http://example.com/jwks.json", "jwks_url"),
        ("COGNITO_TOKEN_USE", "refresh", "token_use"),
        ("COGNITO_LEEWAY_SECONDS", "-1", "leeway_seconds"),
    ],
)
def test_verify_with_an_invalid_setting_exits_2_naming_the_field_and_its_variable(
    variable: str,
    value: str,
    field: str,
    issuer: LocalIssuer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(variable, value)

    status, output = run("verify", issuer.access_token())

    assert status == 2
    assert output == ""
    err = capsys.readouterr().err
    assert err.startswith("invalid settings")
    assert f"{field} ({variable})" in err


BEARER_FORMS = ["Bearer {}", "bearer   {}", "  BEARER\t{}  ", "Authorization: Bearer {}"]


@pytest.mark.parametrize("pasted", BEARER_FORMS)
def test_inspect_accepts_a_pasted_bearer_header(pasted: str, issuer: LocalIssuer) -> None:
    status, output = run("inspect", pasted.format(issuer.access_token("carol")))

    assert status == 0
    assert '"username": "carol"' in output


@pytest.mark.usefixtures("cognito_env")
@pytest.mark.parametrize("pasted", BEARER_FORMS)
def test_verify_accepts_a_pasted_bearer_header(pasted: str, issuer: LocalIssuer) -> None:
    status, output = run("verify", pasted.format(issuer.access_token()))

    assert status == 0
    assert output.startswith("verified: access token")


def difference(err: str, claim: str) -> tuple[str, str]:
    """The token's and the configured value of ``claim`` as ``verify`` shows them."""
    lines = err.splitlines()
    at = next(i for i, line in enumerate(lines) if line.strip().startswith(f"{claim} "))
    token = lines[at].split("token: ", 1)[1]
    configured = lines[at + 1].split("configured: ", 1)[1]
    return token, configured


@pytest.mark.usefixtures("cognito_env")
def test_verify_shows_the_tokens_issuer_next_to_the_configured_ones(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    run("verify", issuer.access_token(iss=OTHER_POOL_ISSUER))

    token, configured = difference(capsys.readouterr().err, "iss")
    assert token == OTHER_POOL_ISSUER
    assert issuer.issuer in configured.split(" | ")


@pytest.mark.usefixtures("cognito_env")
def test_verify_shows_the_tokens_client_id_next_to_the_configured_ones(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    run("verify", issuer.access_token(client_id="someone-else"))

    assert difference(capsys.readouterr().err, "client_id") == ("someone-else", issuer.client_id)


@pytest.mark.usefixtures("cognito_env")
def test_verify_shows_the_id_tokens_audience_next_to_the_configured_clients(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    run("verify", issuer.id_token(aud="someone-else"), "--token-use", "id")

    assert difference(capsys.readouterr().err, "aud") == ("someone-else", issuer.client_id)


@pytest.mark.usefixtures("cognito_env")
def test_verify_refuses_an_access_token_bound_elsewhere_showing_its_audience(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_AUDIENCES", "https://api.example.com")

    status, _ = run("verify", issuer.access_token(aud="https://other.example.com"))

    err = capsys.readouterr().err
    assert status == 1
    assert "invalid token: wrong_audience: " in err
    assert difference(err, "aud") == ("https://other.example.com", "https://api.example.com")


@pytest.mark.usefixtures("cognito_env")
def test_verify_accepts_an_access_token_bound_to_a_configured_audience(
    issuer: LocalIssuer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_AUDIENCES", "https://api.example.com,urn:example:b")

    status, _ = run("verify", issuer.access_token(aud=["urn:example:b"]))

    assert status == 0


@pytest.mark.usefixtures("cognito_env")
def test_verify_shows_the_tokens_token_use_next_to_the_configured_one(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    run("verify", issuer.id_token())

    assert difference(capsys.readouterr().err, "token_use") == ("id", "access")


@pytest.mark.usefixtures("cognito_env")
def test_verify_shows_no_differences_when_the_token_matches_the_settings(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run("verify", issuer.access_token(expires_in=-3600))

    assert status == 1
    assert "differs" not in capsys.readouterr().err


@pytest.mark.usefixtures("cognito_env")
def test_verify_escapes_control_characters_of_a_shown_claim(
    issuer: LocalIssuer, capsys: pytest.CaptureFixture[str]
) -> None:
    run("verify", issuer.access_token(client_id="\x1b[2J\x1b]0;owned\x07"))

    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert difference(err, "client_id")[0] == "\\u001b[2J\\u001b]0;owned\\u0007"


# -- jwks -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mixed_jwks(served: tuple[LocalIssuer, str]) -> Iterator[JWKSServer]:
    """A JWKS with a usable key, a 1024-bit key and an encryption key."""
    issuer = served[0]
    usable = issuer.jwks()["keys"][0]
    short = {**LocalIssuer(key_bits=1024).jwks()["keys"][0], "kid": "short-key"}
    encryption = {**usable, "kid": "enc-key", "use": "enc"}
    with JWKSServer(issuer) as server:
        server.document = {"keys": [usable, short, encryption]}
        yield server


def key_line(output: str, kid: str) -> str:
    return next(line for line in output.splitlines() if f"kid={kid} " in line)


def test_jwks_lists_each_kid_with_algorithm_and_key_size(
    mixed_jwks: JWKSServer, issuer: LocalIssuer
) -> None:
    status, output = run("jwks", mixed_jwks.url)

    assert status == 0
    assert output.splitlines()[0] == mixed_jwks.url
    line = key_line(output, issuer.kid)
    assert "kty=RSA alg=RS256 use=sig" in line
    assert line.endswith("RSA 2048 bits, used")
    assert len([line for line in output.splitlines() if "kid=" in line]) == 3


def test_jwks_marks_a_1024_bit_key_ignored(mixed_jwks: JWKSServer) -> None:
    _, output = run("jwks", mixed_jwks.url)

    line = key_line(output, "short-key")
    assert "ignored" in line
    assert "2048 bits" in line


def test_jwks_marks_an_encryption_key_ignored(mixed_jwks: JWKSServer) -> None:
    _, output = run("jwks", mixed_jwks.url)

    line = key_line(output, "enc-key")
    assert "use=enc" in line
    assert "ignored" in line


@pytest.mark.usefixtures("cognito_env")
def test_jwks_without_a_url_fetches_the_settings_url(jwks_url: str, issuer: LocalIssuer) -> None:
    status, output = run("jwks")

    assert status == 0
    assert output.splitlines()[0] == jwks_url
    assert key_line(output, issuer.kid).endswith("used")


def test_jwks_unreachable_url_exits_1() -> None:
    url = closed_port_url()

    status, output = run("jwks", url)

    assert status == 1
    assert "fetch failed" in output


def test_jwks_needs_no_client_id(
    issuer: LocalIssuer, jwks_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_USER_POOL_ID", issuer.user_pool_id)
    monkeypatch.setenv("COGNITO_JWKS_URL", jwks_url)

    status, output = run("jwks")

    assert status == 0
    assert key_line(output, issuer.kid).endswith("used")


def test_jwks_survives_deeply_nested_json(
    jwks_server: JWKSServer, capsys: pytest.CaptureFixture[str]
) -> None:
    jwks_server.fault = "deep_json"

    status, output = run("jwks", jwks_server.url)

    assert status == 1
    assert "fetch failed: response is JSON nested too deeply" in output


def test_jwks_never_prints_terminal_escapes_from_the_document(
    jwks_server: JWKSServer, issuer: LocalIssuer
) -> None:
    usable = issuer.jwks()["keys"][0]
    hostile = {**usable, "kid": "\x1b]0;owned\x07\x1b[2J\u202e", "alg": "\x1b[31mRS256"}
    nested = {**usable, "kid": "nested", "use": [[["sig"]]]}
    jwks_server.document = {"keys": [hostile, nested]}

    status, output = run("jwks", jwks_server.url)

    assert status == 0
    assert "\x1b" not in output
    assert "\u202e" not in output
    assert "kid=\\u001b]0;owned\\u0007\\u001b[2J\\u202e " in output
    assert "use=<list>" in key_line(output, "nested")


@pytest.mark.parametrize(
    ("fault", "size"),
    [
        ("huge_chunked", 64 * 1024 * 1024),
        ("gzip_bomb", 32 * 1024 * 1024),  # ~32 KB on the wire, counted once inflated
    ],
)
def test_jwks_reads_no_more_than_64_kib_of_a_hostile_body(
    jwks_server: JWKSServer, fault: str, size: int
) -> None:
    jwks_server.huge_bytes = size
    jwks_server.fault = fault
    script = (
        "import sys, tracemalloc\n"
        "from fastapi_cognito_guard.cli import main\n"
        "tracemalloc.start()\n"
        "status = main(['jwks', sys.argv[1]])\n"
        "print('peak_bytes', tracemalloc.get_traced_memory()[1])\n"
        "sys.exit(status)\n"
    )

    result = run_python("-c", script, jwks_server.url)

    assert result.returncode == 1, result.stderr
    assert "larger than 65536 bytes" in result.stdout
    peak = int(result.stdout.split("peak_bytes ", 1)[1])
    assert peak < 4 * 1024 * 1024  # bytes held: the inflated body never was


@pytest.fixture
def cognito_hosts(monkeypatch: pytest.MonkeyPatch, issuer: LocalIssuer) -> Callable[[str], None]:
    """Fault injection for Cognito's own JWKS URLs: ``refuse(url)`` makes one answer 403;
    the others serve ``issuer``'s JWKS. Nothing leaves the process."""
    refused: set[str] = set()

    def answer(request: httpx.Request) -> httpx.Response:
        if str(request.url) in refused:
            return httpx.Response(403, json={"message": "Forbidden"})
        return httpx.Response(200, json=issuer.jwks())

    client = functools.partial(
        httpx.AsyncClient, transport=httpx.MockTransport(answer), trust_env=False
    )
    monkeypatch.setattr(httpx, "AsyncClient", client)
    monkeypatch.setenv("COGNITO_USER_POOL_ID", issuer.user_pool_id)
    return refused.add


@pytest.mark.parametrize("unused", ["issuer-cognito-idp", "cognito-idp"])
def test_jwks_succeeds_when_the_pools_unused_issuer_form_answers_403(
    unused: str, issuer: LocalIssuer, cognito_hosts: Callable[[str], None]
) -> None:
    region = issuer.user_pool_id.split("_")[0]
    refused = f"https://{unused}.{region}.amazonaws.com/{issuer.user_pool_id}{JWKS_SUFFIX}"
    cognito_hosts(refused)

    status, output = run("jwks")

    assert status == 0
    assert "not served (HTTP 403); not needed: the other issuer form answered" in output
    assert key_line(output, issuer.kid).endswith("used")


def test_jwks_fails_when_both_issuer_forms_fail(
    issuer: LocalIssuer, cognito_hosts: Callable[[str], None]
) -> None:
    region = issuer.user_pool_id.split("_")[0]
    for form in ("cognito-idp", "issuer-cognito-idp"):
        cognito_hosts(f"https://{form}.{region}.amazonaws.com/{issuer.user_pool_id}{JWKS_SUFFIX}")

    status, output = run("jwks")

    assert status == 1
    assert output.count("fetch failed: HTTP 403") == 2


# -- the module entry point -------------------------------------------------------------


def run_module(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_python("-m", "fastapi_cognito_guard", *argv, env=env)


def run_python(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run this Python in the repository with a clean environment plus ``env``."""
    return subprocess.run(
        [sys.executable, *argv],
        cwd=REPO_ROOT,
        env=clean_environment(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_module_entry_point_prints_the_package_version() -> None:
    result = run_module("--version")

    assert result.returncode == 0, result.stderr
    assert result.stdout == f"fastapi-cognito-guard {fastapi_cognito_guard.__version__}\n"


def test_module_entry_point_runs_inspect(issuer: LocalIssuer) -> None:
    result = run_module("inspect", issuer.access_token("carol"))

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("UNVERIFIED")
    assert '"username": "carol"' in result.stdout


def test_module_entry_point_exits_with_the_failed_check(issuer: LocalIssuer, jwks_url: str) -> None:
    env = {
        "COGNITO_USER_POOL_ID": issuer.user_pool_id,
        "COGNITO_CLIENT_IDS": issuer.client_id,
        "COGNITO_JWKS_URL": jwks_url,
    }

    result = run_module("verify", issuer.access_token(expires_in=-3600), env=env)

    assert result.returncode == 1
    assert "invalid token: expired: " in result.stderr


# -- revoke ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["revoke", "--sub", ""],
        ["revoke", "--origin-jti", "two words"],
        ["revoke", "--sub", "x" * 300],
        ["revoke", "--sign-in", "x" * 300],
    ],
)
def test_revoke_refuses_empty_or_malformed_ids_with_usage_status(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_REDIS_URL", "redis://127.0.0.1:9/0")
    assert main(args) == 2
    assert "1-256 visible ASCII characters" in capsys.readouterr().err


@pytest.mark.parametrize("key", ["user-1", "user-1:", ":1700000000", "user-1:17e8", "user-1:-5"])
def test_revoke_sign_in_needs_sub_and_auth_time_in_whole_seconds(
    key: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_REDIS_URL", "redis://127.0.0.1:9/0")
    assert main(["revoke", "--sign-in", key]) == 2
    assert "SUB:AUTH_TIME" in capsys.readouterr().err


def test_revoke_sign_in_writes_the_shared_list(
    redis_server: RedisServer,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("COGNITO_REDIS_URL", redis_server.url)
    assert main(["revoke", "--sign-in", "user-1:1700000000"]) == 0
    assert "revoked sign_in user-1:1700000000" in capsys.readouterr().out
    stored = Redis.from_url(redis_server.url).zrange("fcg:revoked:sign_in", 0, -1)
    assert stored == [b"user-1:1700000000"]


def test_revoke_needs_a_redis_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COGNITO_REDIS_URL", raising=False)
    assert main(["revoke", "--sub", "user-1"]) == 2
    assert "COGNITO_REDIS_URL" in capsys.readouterr().err


def test_revoke_with_an_unparsable_redis_url_names_the_setting(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COGNITO_REDIS_URL", "http://not-redis")
    assert main(["revoke", "--sub", "user-1"]) == 2
    assert "COGNITO_REDIS_URL" in capsys.readouterr().err


def test_revoke_with_redis_down_fails_without_claiming_success(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, closed_jwks_url: str
) -> None:
    port = closed_jwks_url.split(":")[2].split("/")[0]
    monkeypatch.setenv("COGNITO_REDIS_URL", f"redis://127.0.0.1:{port}/0")
    assert main(["revoke", "--sub", "user-1"]) == 1
    assert "nothing was revoked" in capsys.readouterr().err


def test_revoke_requires_exactly_one_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["revoke", "--sub", "a", "--origin-jti", "b"])
    assert exited.value.code == 2


# -- routes: the route map --------------------------------------------------------------


def test_routes_prints_a_table_of_what_protects_each_route() -> None:
    status, output = run("routes", "tests.route_map_app:app")
    lines = {line.split()[1]: line for line in output.splitlines()[1:]}

    assert status == 0
    assert output.splitlines()[0].split() == ["ROUTE", "STATUS", "AUTH", "POOLS", "REQUIRES"]
    assert "guarded" in lines["/shop/staff"]
    assert "group staff and admin" in lines["/shop/staff"]
    assert "unknown" in lines["/tenant"]
    assert "excluded by /public/*" in lines["/svc/public/catalog"]


def test_routes_json_is_the_route_map() -> None:
    from fastapi_cognito_guard.route_records import route_map_json
    from tests.route_map_app import app

    status, output = run("routes", "tests.route_map_app:app", "--json")

    assert status == 0
    assert json.loads(output) == route_map_json(app)


@pytest.mark.parametrize(
    "spec", ["tests.route_map_app", "tests.no_such_module:app", "tests.route_map_app:nope"]
)
def test_routes_with_an_app_it_cannot_load_is_a_usage_error(
    spec: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run("routes", spec)

    assert status == 2
    assert spec.split(":")[0] in capsys.readouterr().err


def test_routes_runs_as_a_module_from_the_project_directory() -> None:
    result = run_module("routes", "tests.route_map_app:app")

    assert result.returncode == 0, result.stderr
    assert "/admin/whoami" in result.stdout


def test_routes_calls_an_app_factory(capsys: pytest.CaptureFixture[str]) -> None:
    status, output = run("routes", "tests.route_map_app:build()")

    assert status == 0
    assert "/admin/whoami" in output


def test_routes_factory_without_settings_names_the_variables(
    no_cognito_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _ = run("routes", "example_app:create_app()")

    assert status == 2
    assert "COGNITO_USER_POOL_ID" in capsys.readouterr().err
