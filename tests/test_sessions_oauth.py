"""Calls to Cognito's OAuth2 endpoints (``sessions.oauth``): the form carries the
authorization code, refresh tokens and the client secret, so a redirect is never
followed, whatever the HTTP client passed in is configured to do."""

from __future__ import annotations

import httpx
import pytest

from fastapi_cognito_guard.sessions.oauth import OAuthClient, TokenEndpointError
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
