"""Identity-pool credentials: the caller's ID token exchanged for temporary AWS keys.

``GetId`` then ``GetCredentialsForIdentity`` are unauthenticated Cognito calls
(JSON 1.1 protocol, no SigV4), made with httpx. The ID token is verified first,
so the caches can be keyed by its ``sub``: identity ids per user, credentials
per (user, role) until five minutes before they expire, one exchange in flight
per key. Secret keys and session tokens never appear in reprs or logs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from cachetools import LRUCache

from .claims import IdTokenClaims
from .errors import (
    CredentialsDeniedError,
    CredentialsUnavailableError,
    IdentityPoolConfigError,
)
from .settings import CognitoSettings
from .verifier import CognitoVerifier

__all__ = ["AwsCredentials", "IdentityPoolClient"]

logger = logging.getLogger("fastapi_cognito_guard")

REFRESH_MARGIN_SECONDS = 300
"""Cached credentials are replaced this long before they expire."""

MAX_ANSWER_BYTES = 64 * 1024
"""An identity-pool answer larger than this is treated as a failure."""

_TARGET_PREFIX = "AWSCognitoIdentityService."
_UNAVAILABLE = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalErrorException",
        "ExternalServiceException",
        "ThrottlingException",
        "ServiceUnavailableException",
    }
)
_DENIED = frozenset({"NotAuthorizedException"})

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class AwsCredentials:
    """Temporary AWS credentials for one identity; the secret parts stay out of reprs."""

    access_key_id: str
    secret_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    identity_id: str

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)`` / ``boto3.Session(...)``."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_key,
            "aws_session_token": self.session_token,
        }


class _TooLarge(Exception):
    """The identity pool's answer exceeded ``MAX_ANSWER_BYTES``."""


class _SingleFlight:
    """At most one computation in flight per key; concurrent callers share its result."""

    def __init__(self) -> None:
        self._inflight: dict[Any, asyncio.Future[Any]] = {}

    async def run(self, key: K, compute: Callable[[], Awaitable[V]]) -> V:
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(compute())
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        result: V = await asyncio.shield(future)
        return result


class IdentityPoolClient:
    """Exchanges verified ID tokens for identity-pool credentials, with caching.

    Needs ``identity_pool_id`` in the settings. ID tokens are verified with
    ``verifier`` (by default one for this pool that accepts ID tokens).
    """

    def __init__(
        self,
        settings: CognitoSettings,
        *,
        verifier: CognitoVerifier | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        cache_size: int = 10000,
    ) -> None:
        if not settings.identity_pool_id:
            raise ValueError("IdentityPoolClient needs settings.identity_pool_id")
        self.settings = settings
        self.identity_pool_id = settings.identity_pool_id
        self._owns_verifier = verifier is None
        self.verifier = verifier or CognitoVerifier(
            settings.model_copy(update={"token_use": "id"}), http_client=http_client
        )
        self._client = http_client
        self._owns_client = http_client is None
        self._timeout = timeout
        self._identity_ids: LRUCache[str, str] = LRUCache(cache_size)
        self._credentials: LRUCache[tuple[str, str | None], AwsCredentials] = LRUCache(cache_size)
        self._id_flights = _SingleFlight()
        self._credential_flights = _SingleFlight()
        self._misconfigured_logged = False

    async def credentials_for(self, id_token: str, role_arn: str | None = None) -> AwsCredentials:
        """Temporary AWS credentials for the user of ``id_token`` (verified first).

        ``role_arn`` asks for one of the token's ``cognito:roles`` (the enhanced
        flow's ``CustomRoleArn``); otherwise the identity pool chooses.
        """
        claims = await self.verifier.verify(id_token)
        if not isinstance(claims, IdTokenClaims):
            raise CredentialsDeniedError("identity-pool credentials need an ID token")
        return await self.credentials_for_claims(id_token, claims, role_arn)

    async def credentials_for_claims(
        self, id_token: str, claims: IdTokenClaims, role_arn: str | None = None
    ) -> AwsCredentials:
        """Like ``credentials_for`` for a token whose ``claims`` the caller already verified."""
        if role_arn is not None and role_arn not in claims.roles:
            raise CredentialsDeniedError(
                "the requested role is not one of the token's cognito:roles"
            )
        key = (claims.sub, role_arn)
        cached = self._credentials.get(key)
        if cached is not None and _seconds_left(cached) > REFRESH_MARGIN_SECONDS:
            return cached
        try:
            return await self._credential_flights.run(
                key, lambda: self._exchange(id_token, claims.sub, role_arn)
            )
        except CredentialsUnavailableError:
            if cached is not None and _seconds_left(cached) > 0:
                return cached  # an early refresh failed; the old credentials still work
            raise

    async def _exchange(self, id_token: str, sub: str, role_arn: str | None) -> AwsCredentials:
        logins = {self.settings.provider_name: id_token}
        identity_id = self._identity_ids.get(sub)
        if identity_id is None:
            identity_id = await self._id_flights.run(sub, lambda: self._get_id(sub, logins))
        request: dict[str, Any] = {"IdentityId": identity_id, "Logins": logins}
        if role_arn is not None:
            request["CustomRoleArn"] = role_arn
        try:
            answer = await self._call("GetCredentialsForIdentity", request)
        except (CredentialsDeniedError, IdentityPoolConfigError):
            self._identity_ids.pop(sub, None)  # the identity may be gone: ask GetId again
            raise
        credentials = _parse_credentials(answer, identity_id)
        self._misconfigured_logged = False  # a later misconfiguration is a new incident
        self._credentials[(sub, role_arn)] = credentials
        return credentials

    async def _get_id(self, sub: str, logins: dict[str, str]) -> str:
        answer = await self._call(
            "GetId", {"IdentityPoolId": self.identity_pool_id, "Logins": logins}
        )
        identity_id = answer.get("IdentityId")
        if not isinstance(identity_id, str):
            raise CredentialsUnavailableError(
                "the identity pool answered GetId without an IdentityId"
            )
        self._identity_ids[sub] = identity_id
        return identity_id

    async def _call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        try:
            response, content = await asyncio.wait_for(self._post(action, body), self._timeout)
        except (httpx.HTTPError, _TooLarge, asyncio.TimeoutError) as exc:
            logger.warning("identity pool %s failed: %s", action, type(exc).__name__)
            raise CredentialsUnavailableError("the identity pool could not be reached") from None
        try:
            answer = json.loads(content)  # any content type: the body decides
        except (ValueError, RecursionError):
            answer = None
        if response.status_code == 200 and isinstance(answer, dict):
            return answer
        raise self._error(action, response, answer)

    async def _post(self, action: str, body: dict[str, Any]) -> tuple[httpx.Response, bytes]:
        """POST one JSON 1.1 call and read at most ``MAX_ANSWER_BYTES`` of the answer."""
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient()
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": _TARGET_PREFIX + action,
        }
        request = self._client.build_request(
            "POST", self.settings.identity_url, content=json.dumps(body), headers=headers
        )
        response = await self._client.send(request, stream=True)
        try:
            content = bytearray()
            async for chunk in response.aiter_bytes():
                content += chunk
                if len(content) > MAX_ANSWER_BYTES:
                    raise _TooLarge
        finally:
            await response.aclose()
        return response, bytes(content)

    def _error(
        self, action: str, response: httpx.Response, answer: Any
    ) -> CredentialsDeniedError | CredentialsUnavailableError | IdentityPoolConfigError:
        kind = _error_type(response, answer)
        status = response.status_code
        if kind in _DENIED:
            return CredentialsDeniedError("the identity pool refused credentials for this user")
        if kind in _UNAVAILABLE or status in (200, 429) or status >= 500:
            retry_after = _retry_after(response)
            logger.warning("identity pool %s unavailable: HTTP %s %s", action, status, kind or "")
            return CredentialsUnavailableError(
                "the identity pool is unavailable", retry_after=retry_after
            )
        if not self._misconfigured_logged:
            self._misconfigured_logged = True
            logger.error(
                "identity pool %s rejected %s as misconfigured (HTTP %s %s): check "
                "COGNITO_IDENTITY_POOL_ID and the pool's authentication providers",
                self.identity_pool_id,
                action,
                status,
                kind or "unknown error",
            )
        return IdentityPoolConfigError("the identity pool is misconfigured")

    async def aclose(self) -> None:
        """Close the HTTP client and verifier this client created."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
        if self._owns_verifier:
            await self.verifier.aclose()


def _error_type(response: httpx.Response, answer: Any) -> str:
    kind = ""
    if isinstance(answer, dict):
        kind = str(answer.get("__type") or answer.get("code") or "")
    kind = kind or response.headers.get("x-amzn-errortype", "")
    return kind.rsplit("#", 1)[-1].split(":", 1)[0]


def _retry_after(response: httpx.Response) -> float:
    value = response.headers.get("retry-after", "")
    return float(value) if value.isdigit() else 1.0


def _parse_credentials(answer: dict[str, Any], identity_id: str) -> AwsCredentials:
    values = answer.get("Credentials")
    try:
        if not isinstance(values, dict):
            raise TypeError("Credentials is not an object")
        expiration = values["Expiration"]
        return AwsCredentials(
            access_key_id=str(values["AccessKeyId"]),
            secret_key=str(values["SecretKey"]),
            session_token=str(values["SessionToken"]),
            expiration=datetime.fromtimestamp(float(expiration), tz=timezone.utc),
            identity_id=str(answer.get("IdentityId") or identity_id),
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CredentialsUnavailableError(
            "the identity pool answered without usable credentials"
        ) from None


def _seconds_left(credentials: AwsCredentials) -> float:
    return credentials.expiration.timestamp() - time.time()
