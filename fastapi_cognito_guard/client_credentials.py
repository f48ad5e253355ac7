"""``CognitoClientCredentials``: an ``httpx.Auth`` for a service's outgoing calls.

A microservice calling another one sends a ``client_credentials`` access token of its
own app client. This auth gets that token from the pool's token endpoint, keeps it
until 60 s before it expires, lets one token request run at a time (concurrent calls
wait for it and share its token) and, when the called service answers 401 (the token
was revoked, or the keys rotated), fetches a fresh token and sends the call once more.

The token requests do not go through the caller's client: they carry the client secret,
so they are sent by ``awshttp`` (never redirected, bounded in time and size) whatever
the caller's client is configured to do. The secret is sent with HTTP Basic per RFC
6749 §2.3.1, with the second secret of a rotation tried once on ``invalid_client``
(``clientauth``); it never appears in a repr, a log line or an error.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx
from pydantic import SecretStr

from . import telemetry
from .awshttp import Answer, CallFailed, post, post_sync
from .clientauth import ClientSecrets
from .errors import ClientCredentialsError, OAuthUnavailableError
from .settings import CognitoSettings, is_absolute_uri, is_allowed_url

if TYPE_CHECKING:
    import anyio

__all__ = ["CognitoClientCredentials"]

logger = logging.getLogger(__name__)

REFRESH_BEFORE_EXPIRY_SECONDS = 60
"""A token is replaced this long before it expires (a call must not arrive with a token
that expires on the way)."""

_TIMEOUT_SECONDS = 5.0


class CognitoClientCredentials(httpx.Auth):
    """Authenticates outgoing httpx calls with the app client's ``client_credentials``
    tokens: ``httpx.AsyncClient(auth=CognitoClientCredentials(settings, scopes=[...]))``.

    ``client_id`` and ``client_secret`` default to the settings' first client and its
    secret(s); ``token_url`` to ``{oauth_url}/oauth2/token``. ``resource`` (RFC 8707)
    asks for tokens whose ``aud`` names the service called.
    """

    def __init__(
        self,
        settings: CognitoSettings,
        *,
        scopes: Sequence[str] = (),
        client_id: str | None = None,
        client_secret: str | SecretStr | Sequence[str | SecretStr] | None = None,
        token_url: str | None = None,
        resource: str | None = None,
    ) -> None:
        client_id = client_id or settings.client_ids[0]
        if client_secret is None:
            secrets: Sequence[str | SecretStr] = settings.client_secrets
        elif isinstance(client_secret, (str, SecretStr)):
            secrets = (client_secret,)
        else:
            secrets = tuple(client_secret)
        if not secrets:
            raise ValueError(
                "CognitoClientCredentials needs a confidential app client: set "
                "COGNITO_CLIENT_SECRET (or pass client_secret)"
            )
        if token_url is None:
            if settings.oauth_base_url is None:
                raise ValueError(
                    "CognitoClientCredentials needs the token endpoint: set COGNITO_DOMAIN "
                    "(or COGNITO_OAUTH_URL, or pass token_url)"
                )
            token_url = f"{settings.oauth_base_url}/oauth2/token"
        elif not is_allowed_url(token_url, allow_http=settings.allow_insecure_http):
            raise ValueError(
                "token_url must be an https URL (plain http only for loopback hosts, or "
                "with COGNITO_ALLOW_INSECURE_HTTP=true): it receives the client secret"
            )
        if resource is not None and not is_absolute_uri(resource):
            raise ValueError("resource must be an absolute URI, like 'https://api.example.com'")
        if any(not scope or " " in scope for scope in scopes):
            raise ValueError("scopes must be non-empty scope names without spaces")
        self.client_id = client_id
        self.token_url = token_url
        self.scopes = tuple(scopes)
        form = {"grant_type": "client_credentials"}
        if self.scopes:
            form["scope"] = " ".join(self.scopes)
        if resource is not None:
            form["resource"] = resource
        self._form = urlencode(form)
        self._secrets = ClientSecrets(client_id, secrets)
        self._token: str | None = None
        self._good_until = 0.0  # time.monotonic() after which the token is replaced
        self._thread_lock = threading.Lock()
        self._task_lock: anyio.Lock | None = None

    def __repr__(self) -> str:
        return (
            f"CognitoClientCredentials(client_id={self.client_id!r}, "
            f"token_url={self.token_url!r}, scopes={self.scopes!r})"
        )

    # -- httpx.Auth ----------------------------------------------------------------

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        request.read()  # a 401 resends it
        with self._thread_lock:
            token = self._valid_token() or self._fetch_sync()
        response = yield _with_token(request, token)
        if response.status_code == 401:
            with self._thread_lock:
                token = self._fresher_than(token) or self._fetch_sync()
            yield _with_token(request, token)

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        await request.aread()  # a 401 resends it
        lock = self._async_lock()
        async with lock:
            token = self._valid_token() or await self._fetch_async()
        response = yield _with_token(request, token)
        if response.status_code == 401:
            async with lock:
                token = self._fresher_than(token) or await self._fetch_async()
            yield _with_token(request, token)

    # -- the token -----------------------------------------------------------------

    def _async_lock(self) -> anyio.Lock:
        """One lock for every task (asyncio or trio, as httpx runs on both); anyio loads
        on first async use, so the synchronous core does not pay for importing it."""
        if self._task_lock is None:
            import anyio

            self._task_lock = anyio.Lock()
        return self._task_lock

    def _valid_token(self) -> str | None:
        if self._token is not None and time.monotonic() < self._good_until:
            return self._token
        return None

    def _fresher_than(self, refused: str) -> str | None:
        """A valid token other than the one the service refused (another call got it)."""
        token = self._valid_token()
        return token if token is not None and token != refused else None

    def _fetch_sync(self) -> str:
        with httpx.Client() as client:
            for index, headers in self._secrets.attempts():
                try:
                    answer = post_sync(
                        client,
                        self.token_url,
                        content=self._form,
                        headers=_headers(headers),
                        timeout=_TIMEOUT_SECONDS,
                    )
                except CallFailed as exc:
                    raise _unreachable(exc) from None
                if self._secrets.settled(index, answer.status, answer.content):
                    break
        return self._keep(answer)

    async def _fetch_async(self) -> str:
        async with httpx.AsyncClient() as client:
            for index, headers in self._secrets.attempts():
                try:
                    answer = await post(
                        client,
                        self.token_url,
                        content=self._form,
                        headers=_headers(headers),
                        timeout=_TIMEOUT_SECONDS,
                    )
                except CallFailed as exc:
                    raise _unreachable(exc) from None
                if self._secrets.settled(index, answer.status, answer.content):
                    break
        return self._keep(answer)

    def _keep(self, answer: Answer) -> str:
        """The token of a token-endpoint answer, kept until 60 s before it expires."""
        if answer.status >= 500 or answer.status == 429:
            logger.warning(
                "client credentials: token endpoint unavailable: HTTP %s",
                answer.status,
                extra=telemetry.log_extra("oauth_unavailable"),
            )
            raise OAuthUnavailableError(
                "the token endpoint is unavailable", retry_after=answer.retry_after
            )
        document = _json(answer.content)
        token = document.get("access_token")
        expires_in = document.get("expires_in")
        if answer.status != 200 or not isinstance(token, str) or not token:
            error = document.get("error")
            code = error if isinstance(error, str) and error.isidentifier() else None
            logger.warning(
                "client credentials refused for app client %s: HTTP %s %s",
                self.client_id,
                answer.status,
                code or "(not a token response)",
                extra=telemetry.log_extra("client_credentials_refused"),
            )
            raise ClientCredentialsError(
                f"the token endpoint refused the client_credentials grant ({code or 'no token'})",
                code=code,
            )
        lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else 0
        self._token = token
        self._good_until = time.monotonic() + lifetime - REFRESH_BEFORE_EXPIRY_SECONDS
        return token


def _headers(auth: dict[str, str]) -> dict[str, str]:
    return {
        "Accept": "application/json",
        "Content-Type": "application/x-www-form-urlencoded",
        **auth,
    }


def _with_token(request: httpx.Request, token: str) -> httpx.Request:
    request.headers["Authorization"] = f"Bearer {token}"
    return request


def _json(content: bytes) -> dict[str, Any]:
    try:
        document = json.loads(content)
    except (ValueError, RecursionError):
        return {}
    return document if isinstance(document, dict) else {}


def _unreachable(exc: CallFailed) -> OAuthUnavailableError:
    logger.warning(
        "client credentials: token endpoint unreachable: %s",
        exc,
        extra=telemetry.log_extra("oauth_unavailable"),
    )
    return OAuthUnavailableError("the token endpoint could not be reached")
