"""Calls to Cognito's OAuth2 endpoints: ``/oauth2/token`` and ``/oauth2/revoke``.

The app client authenticates with HTTP Basic when it has a secret (Cognito's
``client_secret_basic``, encoded per RFC 6749 §2.3.1; with two secrets during a
rotation, a call refused ``invalid_client`` is retried once with the other: see
``clientauth``), and names itself with ``client_id`` either way. Every
call is ``awshttp.post``: never redirected (the form carries codes, refresh
tokens and the client secret), a whole-call deadline, at most 64 KiB read; an
unreachable endpoint, a timeout or a server error is ``OAuthUnavailableError``,
an answer that is an OAuth error, not a token response or too large is
``TokenEndpointError``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from .. import telemetry
from ..awshttp import MAX_ANSWER_BYTES, AnswerTooLarge, CallFailed, post
from ..clientauth import ClientSecrets
from ..errors import OAuthUnavailableError

__all__ = ["OAuthClient", "TokenEndpointError"]

logger = logging.getLogger(__name__)


class TokenEndpointError(Exception):
    """The token endpoint refused the grant (``error`` is Cognito's OAuth error, e.g.
    ``invalid_grant``) or answered with something that is not a token response
    (``error`` None)."""

    def __init__(self, error: str | None) -> None:
        super().__init__(error or "not a token response")
        self.error = error


class OAuthClient:
    """One app client talking to one OAuth2 base URL."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        client_secret: str | SecretStr | Sequence[str | SecretStr] | None,
        *,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        if client_secret is None:
            client_secret = ()
        elif isinstance(client_secret, (str, SecretStr)):
            client_secret = (client_secret,)
        self._secrets = ClientSecrets(client_id, client_secret)
        self._client = http_client
        self._owns_client = http_client is None
        self._timeout = timeout

    def __repr__(self) -> str:
        return f"OAuthClient(base_url={self.base_url!r}, client_id={self.client_id!r})"

    def authorize_url(self, params: dict[str, str]) -> str:
        return f"{self.base_url}/oauth2/authorize?{urlencode(params)}"

    def logout_url(self, logout_uri: str) -> str:
        query = urlencode({"client_id": self.client_id, "logout_uri": logout_uri})
        return f"{self.base_url}/logout?{query}"

    async def token(self, form: dict[str, str]) -> dict[str, Any]:
        """POST a grant to ``/oauth2/token``; the answer has at least an ``access_token``."""
        status, answer = await self._call("/oauth2/token", form)
        if (
            status == 200
            and isinstance(answer, dict)
            and isinstance(answer.get("access_token"), str)
        ):
            return answer
        error = answer.get("error") if isinstance(answer, dict) else None
        raise TokenEndpointError(error if isinstance(error, str) and error.isidentifier() else None)

    async def revoke(self, refresh_token: str) -> bool:
        """Revoke a refresh token (and the tokens minted from it); failures are logged."""
        try:
            status, answer = await self._call("/oauth2/revoke", {"token": refresh_token})
        except OAuthUnavailableError:
            return False
        if status != 200:
            error = answer.get("error") if isinstance(answer, dict) else None
            logger.warning(
                "refresh token revocation refused: HTTP %s %s",
                status,
                error or "",
                extra=telemetry.log_extra("revocation_refused"),
            )
            return False
        return True

    async def aclose(self) -> None:
        if self._owns_client and self._client is not None:
            await self._client.aclose()

    async def _call(self, path: str, form: dict[str, str]) -> tuple[int, Any]:
        """POST ``form``, authenticated with the preferred secret, and once more with the
        other when Cognito answers ``invalid_client``."""
        content = urlencode({**form, "client_id": self.client_id})
        status, answer = 0, None
        for index, auth_headers in self._secrets.attempts():
            status, answer = await self._post(path, content, auth_headers)
            if self._secrets.settled(index, status, answer):
                break
        return status, answer

    async def _post(self, path: str, content: str, auth_headers: dict[str, str]) -> tuple[int, Any]:
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient()
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
            **auth_headers,
        }
        try:
            answer = await post(
                self._client,
                self.base_url + path,
                content=content,
                headers=headers,
                timeout=self._timeout,
            )
        except AnswerTooLarge:
            logger.warning(
                "Cognito %s answered more than %d bytes",
                path,
                MAX_ANSWER_BYTES,
                extra=telemetry.log_extra("oauth_unavailable"),
            )
            return 200, None
        except CallFailed as exc:
            logger.warning(
                "Cognito %s failed: %s", path, exc, extra=telemetry.log_extra("oauth_unavailable")
            )
            raise OAuthUnavailableError("Cognito's OAuth2 endpoint could not be reached") from None
        status = answer.status
        if status >= 500 or status == 429:
            logger.warning(
                "Cognito %s unavailable: HTTP %s",
                path,
                status,
                extra=telemetry.log_extra("oauth_unavailable"),
            )
            raise OAuthUnavailableError("Cognito's OAuth2 endpoint is unavailable")
        try:
            return status, json.loads(answer.content)
        except (ValueError, RecursionError):
            return status, None
