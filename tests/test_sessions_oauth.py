"""Calls to Cognito's OAuth2 endpoints (``sessions.oauth``): the form carries the
authorization code, refresh tokens and the client secret, so a redirect is never
followed, whatever the HTTP client passed in is configured to do."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from fastapi_cognito_guard.sessions.oauth import OAuthClient, TokenEndpointError
from fastapi_cognito_guard.testing import LocalIssuer
from tests.identity_server import IdentityServer


async def test_token_calls_never_follow_a_redirect_even_when_the_client_would() -> None:
    with IdentityServer() as elsewhere, IdentityServer(redirect_to=elsewhere.url) as cognito:
        cognito.fault = "redirect"
        async with httpx.AsyncClient(follow_redirects=True) as http:
            client = OAuthClient(cognito.base_url, "app-client", "the-secret", http_client=http)
            with pytest.raises(TokenEndpointError):
                await client.token({"grant_type": "refresh_token", "refresh_token": "r"})
            assert await client.revoke("r") is False
        assert cognito.requests == 2
        assert elsewhere.requests == 0  # neither the refresh token nor the secret was resent


# -- client authentication (RFC 6749 §2.3.1) and secret rotation ---------------------

AWKWARD_SECRET = "a+b/c=d%e"


@pytest.fixture
def served_issuer() -> Iterator[LocalIssuer]:
    issuer = LocalIssuer()
    with issuer.serve():
        yield issuer


def client_for(issuer: LocalIssuer, secrets: str | list[str]) -> OAuthClient:
    assert issuer.url is not None
    return OAuthClient(issuer.url, issuer.client_id, secrets)


async def refresh_once(client: OAuthClient) -> None:
    """A refresh of an unknown token: the client got past authentication when the
    answer is ``invalid_grant``."""
    with pytest.raises(TokenEndpointError) as caught:
        await client.token({"grant_type": "refresh_token", "refresh_token": "unknown"})
    assert caught.value.error == "invalid_grant"


async def test_a_secret_with_plus_slash_equals_and_percent_reaches_an_rfc_6749_server(
    served_issuer: LocalIssuer,
) -> None:
    served_issuer.client_secret = AWKWARD_SECRET
    client = client_for(served_issuer, AWKWARD_SECRET)

    answer = await client.token({"grant_type": "client_credentials", "scope": "orders/read"})

    assert isinstance(answer["access_token"], str)
    assert served_issuer.calls["auth:client_secret_basic"] == 1
    await client.aclose()


async def test_a_refused_first_secret_is_retried_exactly_once_with_the_second(
    served_issuer: LocalIssuer,
) -> None:
    served_issuer.client_secret = "new-secret"
    client = client_for(served_issuer, ["old-secret", "new-secret"])

    await refresh_once(client)

    assert served_issuer.calls["token"] == 2
    await client.aclose()


async def test_the_accepted_second_secret_is_tried_first_from_then_on(
    served_issuer: LocalIssuer,
) -> None:
    served_issuer.client_secret = "new-secret"
    client = client_for(served_issuer, ["old-secret", "new-secret"])
    await refresh_once(client)

    await refresh_once(client)
    assert await client.revoke("unknown-refresh-token") is True

    assert served_issuer.calls["token"] == 3
    assert served_issuer.calls["revoke"] == 1
    await client.aclose()


async def test_both_secrets_refused_is_invalid_client_after_two_calls(
    served_issuer: LocalIssuer,
) -> None:
    served_issuer.client_secret = "third-secret"
    client = client_for(served_issuer, ["old-secret", "new-secret"])

    with pytest.raises(TokenEndpointError) as caught:
        await client.token({"grant_type": "client_credentials"})

    assert caught.value.error == "invalid_client"
    assert served_issuer.calls["token"] == 2
    await client.aclose()


async def test_an_accepted_first_secret_makes_one_call(served_issuer: LocalIssuer) -> None:
    served_issuer.client_secret = ["old-secret", "new-secret"]
    client = client_for(served_issuer, ["old-secret", "new-secret"])

    await refresh_once(client)

    assert served_issuer.calls["token"] == 1
    await client.aclose()


async def test_other_errors_are_not_retried_with_the_second_secret(
    served_issuer: LocalIssuer,
) -> None:
    served_issuer.client_secret = "old-secret"
    client = client_for(served_issuer, ["old-secret", "new-secret"])

    with pytest.raises(TokenEndpointError):
        await client.token({"grant_type": "password"})

    assert served_issuer.calls["token"] == 1
    await client.aclose()


def test_the_secrets_stay_out_of_the_repr() -> None:
    client = OAuthClient("https://auth.example.com", "app", ["old-secret", "new-secret"])

    assert "secret" not in repr(client).replace("client_id", "")
