"""Specification of ``python -m fastapi_cognito_guard dev-issuer`` (DESIGN.md §12).

Proves that the command, run as a real process, binds loopback, prints the
``COGNITO_*`` lines that point an app at it (tokens minted by its
``/dev/token`` verify with exactly those settings, and its hosted UI shows the
sign-in page), and stops cleanly on SIGTERM; that ``env_lines`` adds
``COGNITO_ALLOW_INSECURE_HTTP=true`` only for a non-loopback URL and the client
secret only for a confidential client, and a fresh ``COGNITO_SESSION_SECRET``
always; that ``/dev/token`` exists only when asked for, honours ``expires_in``
(out of range: 400) and answers only a loopback ``Host`` or its public URL's
host (others: 421, nothing minted).
"""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from fastapi_cognito_guard import CognitoSettings, CognitoVerifier
from fastapi_cognito_guard.testing import LocalIssuer
from fastapi_cognito_guard.testing.dev_issuer import env_lines
from tests.example_server import free_port


@pytest.fixture(scope="module")
def dev_issuer() -> Iterator[tuple[dict[str, str], subprocess.Popen[str]]]:
    """The command running on a free loopback port, and the settings it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fastapi_cognito_guard", "dev-issuer", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    settings: dict[str, str] = {}
    for line in process.stdout:
        if line.startswith("COGNITO_"):
            name, _, value = line.strip().partition("=")
            settings[name] = value
        if line.startswith("# Mint"):
            break
    try:
        yield settings, process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_dev_issuer_prints_the_settings_of_a_loopback_issuer(
    dev_issuer: tuple[dict[str, str], subprocess.Popen[str]],
) -> None:
    settings, _ = dev_issuer

    assert settings["COGNITO_USER_POOL_ID"] == "eu-central-1_Local"
    assert settings["COGNITO_CLIENT_IDS"] == "local-client"
    assert settings["COGNITO_OAUTH_URL"].startswith("http://127.0.0.1:")
    assert settings["COGNITO_JWKS_URL"].startswith(settings["COGNITO_OAUTH_URL"] + "/")
    assert "COGNITO_ALLOW_INSECURE_HTTP" not in settings
    assert "COGNITO_CLIENT_SECRET" not in settings


async def test_dev_issuer_tokens_verify_with_the_printed_settings(
    dev_issuer: tuple[dict[str, str], subprocess.Popen[str]],
) -> None:
    printed, _ = dev_issuer
    base = printed["COGNITO_OAUTH_URL"]
    async with httpx.AsyncClient() as http:
        minted = await http.get(
            f"{base}/dev/token", params={"username": "alice", "groups": "premium"}
        )
        settings = CognitoSettings(
            **{name.removeprefix("COGNITO_").lower(): value for name, value in printed.items()}
        )
        verifier = CognitoVerifier(settings, http_client=http)
        claims = await verifier.verify(minted.json()["token"])

    assert (claims.username, claims.groups) == ("alice", ["premium"])


def test_dev_issuer_serves_the_sign_in_page(
    dev_issuer: tuple[dict[str, str], subprocess.Popen[str]],
) -> None:
    settings, _ = dev_issuer
    params = {
        "response_type": "code",
        "client_id": "local-client",
        "redirect_uri": "http://127.0.0.1:8000/auth/callback",
    }

    response = httpx.get(f"{settings['COGNITO_OAUTH_URL']}/oauth2/authorize", params=params)

    assert response.status_code == 200
    assert "<form" in response.text


def test_dev_issuer_prints_a_session_secret_the_settings_accept(
    dev_issuer: tuple[dict[str, str], subprocess.Popen[str]],
) -> None:
    printed, _ = dev_issuer

    settings = CognitoSettings(
        user_pool_id=printed["COGNITO_USER_POOL_ID"],
        client_ids=printed["COGNITO_CLIENT_IDS"],
        session_secret=printed["COGNITO_SESSION_SECRET"],
    )

    assert len(settings.session_secret) == 1


def test_dev_issuer_stops_cleanly_on_sigterm(
    dev_issuer: tuple[dict[str, str], subprocess.Popen[str]],
) -> None:
    _, process = dev_issuer

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=10) == 0


def test_env_lines_for_a_non_loopback_url_allow_insecure_http() -> None:
    issuer = LocalIssuer(key_bits=1024, client_secret="dev-secret")
    with issuer.serve(public_url="http://issuer:8001"):  # still bound to loopback
        lines = env_lines(issuer)

    assert "COGNITO_OAUTH_URL=http://issuer:8001" in lines
    assert "COGNITO_ALLOW_INSECURE_HTTP=true" in lines
    assert "COGNITO_CLIENT_SECRET=dev-secret" in lines


def test_env_lines_need_a_serving_issuer() -> None:
    with pytest.raises(RuntimeError, match="not serving"):
        env_lines(LocalIssuer(key_bits=1024))


def test_dev_token_endpoint_exists_only_when_asked_for() -> None:
    issuer = LocalIssuer(key_bits=1024)
    with issuer.serve():
        plain = httpx.get(f"{issuer.url}/dev/token")
    with issuer.serve(mint_endpoint=True):
        minting = httpx.get(f"{issuer.url}/dev/token", params={"token_use": "id"})
        refused = httpx.get(f"{issuer.url}/dev/token", params={"token_use": "refresh"})

    assert plain.status_code == 404
    assert minting.json()["token_use"] == "id"
    assert refused.status_code == 400


def test_env_lines_give_each_run_its_own_session_secret() -> None:
    issuer = LocalIssuer(key_bits=1024)
    with issuer.serve():
        first = [line for line in env_lines(issuer) if line.startswith("COGNITO_SESSION_SECRET=")]
        second = [line for line in env_lines(issuer) if line.startswith("COGNITO_SESSION_SECRET=")]

    assert len(first) == len(second) == 1
    assert first != second


@pytest.fixture(scope="module")
def minting() -> Iterator[LocalIssuer]:
    """An issuer serving ``/dev/token`` in process, as ``dev-issuer`` does."""
    issuer = LocalIssuer(key_bits=1024)
    with issuer.serve(mint_endpoint=True):
        yield issuer


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


@pytest.mark.parametrize("token_use", ["access", "id"])
def test_dev_token_honours_expires_in(minting: LocalIssuer, token_use: str) -> None:
    answer = httpx.get(
        f"{minting.url}/dev/token", params={"expires_in": "120", "token_use": token_use}
    ).json()
    claims = claims_of(answer["token"])

    assert answer["expires_in"] == 120
    assert claims["exp"] - claims["iat"] == 120


@pytest.mark.parametrize("expires_in", ["0", "86401", "-5", "soon"])
def test_dev_token_refuses_expires_in_out_of_range(minting: LocalIssuer, expires_in: str) -> None:
    response = httpx.get(f"{minting.url}/dev/token", params={"expires_in": expires_in})

    assert response.status_code == 400
    assert "expires_in" in response.json()["error_description"]


@pytest.mark.parametrize("host", ["rebind.example", "rebind.example:{port}", "127.0.0.1.nip.io"])
def test_dev_token_refuses_a_host_that_is_not_loopback(minting: LocalIssuer, host: str) -> None:
    port = str(httpx.URL(minting.url or "").port)
    minted_before = minting.calls["dev_token"]

    response = httpx.get(f"{minting.url}/dev/token", headers={"Host": host.format(port=port)})

    assert response.status_code == 421
    assert "token" not in response.json()
    assert minting.calls["dev_token"] == minted_before


@pytest.mark.parametrize(
    "host", ["localhost:{port}", "127.0.0.1:{port}", "[::1]:{port}", "localhost"]
)
def test_dev_token_answers_loopback_host_names(minting: LocalIssuer, host: str) -> None:
    port = str(httpx.URL(minting.url or "").port)

    response = httpx.get(f"{minting.url}/dev/token", headers={"Host": host.format(port=port)})

    assert response.status_code == 200


def test_dev_issuer_answers_the_host_of_its_public_url() -> None:
    issuer = LocalIssuer(key_bits=1024)
    port = free_port()
    with issuer.serve(port=port, mint_endpoint=True, public_url="http://issuer:8001"):
        served = httpx.get(f"http://127.0.0.1:{port}/dev/token", headers={"Host": "issuer:8001"})
        other = httpx.get(f"http://127.0.0.1:{port}/dev/token", headers={"Host": "other:8001"})

    assert (served.status_code, other.status_code) == (200, 421)
