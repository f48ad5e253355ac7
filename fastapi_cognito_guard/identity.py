"""Identity-pool credentials: ID tokens (or guests) exchanged for temporary AWS keys.

Two flows, as Cognito names them. The enhanced flow: ``GetId`` then
``GetCredentialsForIdentity``. The basic flow: ``GetId``, ``GetOpenIdToken``,
then STS ``AssumeRoleWithWebIdentity`` (``sts.py``). Every call is unsigned
(JSON 1.1 for Cognito, the Query API for STS), made with httpx through
``awshttp.post``: bounded in time and size, never redirected.

ID tokens are verified first, so the caches can be keyed by their claims:
identity ids per user; credentials until five minutes before they expire, keyed
by everything that decides the role (``sub``, ``aud``, the requested role,
``cognito:roles``, ``cognito:preferred_role``, ``cognito:groups``), one exchange
in flight per key. Identity ids live in a ``KeyValueStore`` (process memory by
default); credentials live in process memory and, when the store is shared and
``session_secret`` is set, sealed in the store too. Secret keys and session
tokens never appear in reprs or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from cachetools import LRUCache

from . import awshttp
from .claims import IdTokenClaims
from .credentials import AwsCredentials
from .errors import (
    CredentialsDeniedError,
    CredentialsUnavailableError,
    IdentityPoolConfigError,
)
from .sealing import Sealer
from .settings import CognitoSettings
from .stores import KeyValueStore, MemoryStore
from .sts import StsWebIdentity
from .verifier import CognitoVerifier

__all__ = [
    "AwsCredentials",
    "IdentityPoolClient",
    "check_groups_to_roles",
    "check_role_arn",
]

logger = logging.getLogger("fastapi_cognito_guard")

REFRESH_MARGIN_SECONDS = 300
"""Cached credentials are replaced this long before they expire."""

IDENTITY_ID_TTL_SECONDS = 30 * 86400
"""How long an identity id is remembered (ids never change; ``GetId`` has a low quota)."""

MAX_ANSWER_BYTES = awshttp.MAX_ANSWER_BYTES
FLOWS = ("enhanced", "basic")
SEAL_PURPOSE = "identity-credentials"

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
_ROLE_ARN = re.compile(r"arn:aws(-[a-z]+)*:iam::\d{12}:role/[\w+=,.@/-]{1,512}", re.ASCII)

V = TypeVar("V")


def check_role_arn(role_arn: str, argument: str = "role_arn") -> str:
    """``role_arn`` when it is an IAM role ARN; otherwise a ``ValueError`` naming ``argument``."""
    if not isinstance(role_arn, str) or not _ROLE_ARN.fullmatch(role_arn):
        raise ValueError(f"{argument} must be an IAM role ARN (arn:aws:iam::<account>:role/<name>)")
    return role_arn


def check_groups_to_roles(groups_to_roles: Mapping[str, str]) -> dict[str, str]:
    """A non-empty group -> role ARN mapping, in order; otherwise a ``ValueError``."""
    if not isinstance(groups_to_roles, Mapping) or not groups_to_roles:
        raise ValueError("groups_to_roles must map at least one group to a role ARN")
    for group, role in groups_to_roles.items():
        if not isinstance(group, str) or not group:
            raise ValueError("groups_to_roles keys must be non-empty group names")
        check_role_arn(role, "groups_to_roles")
    return dict(groups_to_roles)


Key = tuple[Any, ...]
"""An in-process cache key: a kind, then the values that decide the entry (hashable)."""


class _SingleFlight:
    """At most one computation in flight per key; concurrent callers share its result."""

    def __init__(self) -> None:
        self._inflight: dict[Key, asyncio.Future[Any]] = {}

    async def run(self, key: Key, compute: Callable[[], Awaitable[V]]) -> V:
        future = self._inflight.get(key)
        if future is None:
            future = asyncio.ensure_future(compute())
            self._inflight[key] = future
            future.add_done_callback(lambda _: self._inflight.pop(key, None))
        result: V = await asyncio.shield(future)
        return result


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


class IdentityPoolClient:
    """Exchanges verified ID tokens (or nothing, for guests) for identity-pool credentials.

    Needs ``identity_pool_id`` in the settings. ID tokens are verified with
    ``verifier`` (by default one for this pool that accepts ID tokens). ``flow``
    is ``"enhanced"`` or ``"basic"`` (default: ``settings.identity_flow``).
    ``store`` keeps identity ids (and sealed credentials when it is shared);
    by default a ``MemoryStore`` in this process.
    """

    def __init__(
        self,
        settings: CognitoSettings,
        *,
        verifier: CognitoVerifier | None = None,
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        cache_size: int = 10000,
        flow: str | None = None,
        store: KeyValueStore | None = None,
    ) -> None:
        if not settings.identity_pool_id:
            raise ValueError("IdentityPoolClient needs settings.identity_pool_id")
        flow = settings.identity_flow if flow is None else flow
        if flow not in FLOWS:
            raise ValueError("flow must be 'enhanced' or 'basic'")
        self.settings = settings
        self.identity_pool_id = settings.identity_pool_id
        self.flow = flow
        self._owns_verifier = verifier is None
        self.verifier = verifier or CognitoVerifier(
            settings.model_copy(update={"token_use": "id"}), http_client=http_client
        )
        self._client = http_client
        self._owns_client = http_client is None
        self._timeout = timeout
        self._sts = StsWebIdentity(settings.sts_url, timeout)
        self._store: KeyValueStore = store if store is not None else MemoryStore(cache_size)
        secrets = [secret.get_secret_value() for secret in settings.session_secret]
        shared = store is not None and not isinstance(store, MemoryStore)
        self._sealer = Sealer(secrets, SEAL_PURPOSE) if shared and secrets else None
        if shared and not secrets:
            logger.warning(
                "identity-pool credentials stay in each process: a shared store needs "
                "COGNITO_SESSION_SECRET to encrypt them (identity ids are shared)"
            )
        self._credentials: LRUCache[Key, AwsCredentials] = LRUCache(cache_size)
        self._flights = _SingleFlight()
        self._guest_identity_id: str | None = None
        self._misconfigured_logged = False

    # -- signed-in users ---------------------------------------------------------------

    async def credentials_for(
        self,
        id_token: str,
        role_arn: str | None = None,
        *,
        groups_to_roles: Mapping[str, str] | None = None,
    ) -> AwsCredentials:
        """Temporary AWS credentials for the user of ``id_token`` (verified first).

        ``role_arn`` asks for one of the token's ``cognito:roles``;
        ``groups_to_roles`` picks the role of the first listed group the user is in.
        Otherwise the enhanced flow lets the identity pool choose, and the basic
        flow takes ``cognito:preferred_role``.
        """
        claims = await self.verifier.verify(id_token)
        if not isinstance(claims, IdTokenClaims):
            raise CredentialsDeniedError("identity-pool credentials need an ID token")
        return await self.credentials_for_claims(
            id_token, claims, role_arn, groups_to_roles=groups_to_roles
        )

    async def credentials_for_claims(
        self,
        id_token: str,
        claims: IdTokenClaims,
        role_arn: str | None = None,
        *,
        groups_to_roles: Mapping[str, str] | None = None,
    ) -> AwsCredentials:
        """Like ``credentials_for`` for a token whose ``claims`` the caller already verified."""
        role = self._choose_role(claims, role_arn, groups_to_roles)
        key = (
            "credentials",
            self.flow,
            claims.sub,
            claims.aud,
            role,
            tuple(claims.roles),
            claims.preferred_role,
            tuple(claims.groups),
        )
        return await self._cached(key, lambda: self._exchange(id_token, claims.sub, role))

    def _choose_role(
        self,
        claims: IdTokenClaims,
        role_arn: str | None,
        groups_to_roles: Mapping[str, str] | None,
    ) -> str | None:
        """The role to ask for, checked against the token's ``cognito:roles`` before any
        call to AWS (the role is named in the log, not in the error)."""
        role = role_arn
        if role is None and groups_to_roles is not None:
            held = set(claims.groups)
            role = next((r for group, r in groups_to_roles.items() if group in held), None)
            if role is None:
                raise CredentialsDeniedError("the user is in none of the groups mapped to roles")
        if role is None and self.flow == "basic":
            role = claims.preferred_role
            if role is None:
                raise CredentialsDeniedError("the token names no role to assume")
        if role is not None and role not in claims.roles:
            logger.info("credentials denied: role %s is not in the token's cognito:roles", role)
            raise CredentialsDeniedError(
                "the requested role is not one of the token's cognito:roles"
            )
        return role

    async def _exchange(self, id_token: str, sub: str, role: str | None) -> AwsCredentials:
        logins = {self.settings.provider_name: id_token}
        id_key = self._store_key(("identity-id", self.settings.provider_name, sub))
        identity_id = await self._identity_id(id_key, {"Logins": logins})
        request: dict[str, Any] = {"IdentityId": identity_id, "Logins": logins}
        try:
            if self.flow == "basic":
                answer = await self._call("GetOpenIdToken", request)
                token = answer.get("Token")
                if not isinstance(token, str) or role is None:
                    raise CredentialsUnavailableError(
                        "the identity pool answered GetOpenIdToken without a token"
                    )
                return await self._sts.assume_role(self._http(), role, token, identity_id)
            if role is not None:
                request["CustomRoleArn"] = role
            answer = await self._call("GetCredentialsForIdentity", request)
        except (CredentialsDeniedError, IdentityPoolConfigError):
            await self._store.delete(id_key)  # the identity may be gone: ask GetId again
            raise
        return _parse_credentials(answer, identity_id, role)

    # -- guests ------------------------------------------------------------------------

    async def guest_credentials(self, identity_id: str | None = None) -> AwsCredentials:
        """Credentials of the pool's unauthenticated role (always the enhanced flow).

        ``identity_id`` is a guest identity from an earlier call (kept, for example,
        in the visitor's session); without it, this process's guest identity is
        used, created with ``GetId`` on first use. A pool without guest access
        answers ``NotAuthorizedException``: ``CredentialsDeniedError``.
        """
        if identity_id is None:
            identity_id = self._guest_identity_id
            if identity_id is None:
                identity_id = await self._flights.run(("guest-id",), self._new_guest_identity)
        guest = identity_id
        key = ("guest-credentials", guest)
        return await self._cached(key, lambda: self._guest_exchange(guest))

    async def new_guest_identity(self) -> str:
        """A new guest identity id (``GetId`` without logins), e.g. for a new session."""
        answer = await self._call("GetId", {"IdentityPoolId": self.identity_pool_id})
        return _identity_id_of(answer)

    async def _new_guest_identity(self) -> str:
        identity_id = await self.new_guest_identity()
        self._guest_identity_id = identity_id
        return identity_id

    async def _guest_exchange(self, identity_id: str) -> AwsCredentials:
        answer = await self._call("GetCredentialsForIdentity", {"IdentityId": identity_id})
        return _parse_credentials(answer, identity_id, None)

    # -- caches --------------------------------------------------------------------------

    def _store_key(self, key: Key) -> str:
        """The name of ``key`` in the store: its kind and a digest of its values and
        this identity pool (computed only when the store is consulted)."""
        return f"identity:{key[0]}:{_digest(self.identity_pool_id, *key[1:])}"

    async def _identity_id(self, key: str, logins: dict[str, Any]) -> str:
        stored = await self._store.get(key)
        if stored is not None:
            return stored.decode()
        return await self._flights.run((key,), lambda: self._get_id(key, logins))

    async def _get_id(self, key: str, logins: dict[str, Any]) -> str:
        answer = await self._call("GetId", {"IdentityPoolId": self.identity_pool_id, **logins})
        identity_id = _identity_id_of(answer)
        await self._store.set(key, identity_id.encode(), IDENTITY_ID_TTL_SECONDS)
        return identity_id

    async def _cached(
        self, key: Key, exchange: Callable[[], Awaitable[AwsCredentials]]
    ) -> AwsCredentials:
        """Fresh cached credentials for ``key``, else the result of one shared ``exchange``;
        credentials that failed to refresh early are served while they still work."""
        cached = self._credentials.get(key) or await self._load(key)
        if cached is not None and _seconds_left(cached) > REFRESH_MARGIN_SECONDS:
            return cached
        try:
            return await self._flights.run(key, lambda: self._exchange_and_keep(key, exchange))
        except CredentialsUnavailableError:
            if cached is not None and _seconds_left(cached) > 0:
                return cached
            raise

    async def _exchange_and_keep(
        self, key: Key, exchange: Callable[[], Awaitable[AwsCredentials]]
    ) -> AwsCredentials:
        credentials = await exchange()
        self._misconfigured_logged = False  # a later misconfiguration is a new incident
        self._credentials[key] = credentials
        ttl = _seconds_left(credentials) - REFRESH_MARGIN_SECONDS
        if self._sealer is not None and ttl > 0:
            name = self._store_key(key)
            sealed = self._sealer.seal(credentials.to_bytes(), name.encode())
            await self._store.set(name, sealed.encode(), ttl)
        return credentials

    async def _load(self, key: Key) -> AwsCredentials | None:
        """Credentials another process sealed into the shared store, if any."""
        if self._sealer is None:
            return None
        name = self._store_key(key)
        stored = await self._store.get(name)
        opened = (
            self._sealer.open(stored.decode("ascii", "replace"), name.encode()) if stored else None
        )
        credentials = AwsCredentials.from_bytes(opened) if opened is not None else None
        if credentials is not None:
            self._credentials[key] = credentials
        return credentials

    # -- calls ---------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient()
        return self._client

    async def _call(self, action: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": _TARGET_PREFIX + action,
        }
        try:
            answer = await awshttp.post(
                self._http(),
                self.settings.identity_url,
                content=json.dumps(body),
                headers=headers,
                timeout=self._timeout,
            )
        except awshttp.CallFailed as exc:
            logger.warning("identity pool %s failed: %s", action, exc)
            raise CredentialsUnavailableError("the identity pool could not be reached") from None
        try:
            parsed = json.loads(answer.content)  # any content type: the body decides
        except (ValueError, RecursionError):
            parsed = None
        if answer.status == 200 and isinstance(parsed, dict):
            return parsed
        raise self._error(action, answer, parsed)

    def _error(
        self, action: str, answer: awshttp.Answer, parsed: Any
    ) -> CredentialsDeniedError | CredentialsUnavailableError | IdentityPoolConfigError:
        kind = _error_type(answer, parsed)
        status = answer.status
        if kind in _DENIED:
            return CredentialsDeniedError("the identity pool refused credentials for this user")
        if kind in _UNAVAILABLE or status in (200, 429) or status >= 500:
            logger.warning("identity pool %s unavailable: HTTP %s %s", action, status, kind or "")
            return CredentialsUnavailableError(
                "the identity pool is unavailable", retry_after=answer.retry_after
            )
        if not self._misconfigured_logged:
            self._misconfigured_logged = True
            logger.error(
                "identity pool %s rejected %s as misconfigured (HTTP %s %s): check "
                "COGNITO_IDENTITY_POOL_ID, COGNITO_IDENTITY_ENDPOINT and the pool's "
                "authentication providers",
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

    def __repr__(self) -> str:
        return f"IdentityPoolClient({self.identity_pool_id!r}, flow={self.flow!r})"


def _error_type(answer: awshttp.Answer, parsed: Any) -> str:
    kind = ""
    if isinstance(parsed, dict):
        kind = str(parsed.get("__type") or parsed.get("code") or "")
    kind = kind or answer.headers.get("x-amzn-errortype", "")
    return kind.rsplit("#", 1)[-1].split(":", 1)[0]


def _identity_id_of(answer: dict[str, Any]) -> str:
    identity_id = answer.get("IdentityId")
    if not isinstance(identity_id, str) or not identity_id:
        raise CredentialsUnavailableError("the identity pool answered GetId without an IdentityId")
    return identity_id


def _parse_credentials(
    answer: dict[str, Any], identity_id: str, role_arn: str | None
) -> AwsCredentials:
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
            role_arn=role_arn,
        )
    except (KeyError, TypeError, ValueError, OverflowError):
        raise CredentialsUnavailableError(
            "the identity pool answered without usable credentials"
        ) from None


def _seconds_left(credentials: AwsCredentials) -> float:
    return credentials.expiration.timestamp() - time.time()
