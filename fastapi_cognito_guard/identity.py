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
``session_secret`` is set, sealed in the store too. Each entry remembers the
session and sign-in time of the token that obtained it: credentials obtained with
a token the revocation list (§14) now rejects are never served, and the list's
listener (``drop_revoked``) drops them at once. An identity the pool no longer
knows (``ResourceNotFoundException``) is forgotten and replaced, once per call.
Secret keys and session tokens never appear in reprs or logs.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

import httpx
from cachetools import LRUCache

from . import awshttp, telemetry
from .claims import IdTokenClaims, decode_claims
from .credentials import AwsCredentials
from .errors import (
    CredentialsDeniedError,
    CredentialsUnavailableError,
    IdentityPoolConfigError,
    InvalidTokenError,
)
from .revocation import SESSION, SIGN_IN, USER, sign_in_key
from .sealing import Sealer
from .settings import CognitoSettings
from .singleflight import SingleFlight
from .stores import KeyValueStore, MemoryStore
from .sts import StsWebIdentity
from .verifier import CognitoVerifier

__all__ = [
    "AwsCredentials",
    "IdentityPoolClient",
    "check_groups_to_roles",
    "check_role_arn",
    "warn_unshared_credentials",
]

logger = logging.getLogger(__name__)

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
_GONE = "ResourceNotFoundException"
"""Cognito's answer for an identity id it no longer knows (deleted, or another pool's)."""
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


def warn_unshared_credentials(settings: Iterable[CognitoSettings]) -> None:
    """Warn (one line) when identity-pool credentials must stay in each process although
    a shared store is configured: sealing them needs ``session_secret``. ``CognitoAuth``
    calls it at construction, so the warning comes at start-up, not on a request."""
    unsealed = [s.identity_pool_id for s in settings if s.identity_pool_id and not s.session_secret]
    if unsealed:
        logger.warning(
            "identity-pool credentials of %s stay in each process: sharing them in Redis "
            "needs COGNITO_SESSION_SECRET to encrypt them (identity ids are shared)",
            ", ".join(unsealed),
        )


Key = tuple[Any, ...]
"""An in-process cache key: a kind, then the values that decide the entry (hashable)."""

Entry = tuple[AwsCredentials, IdTokenClaims | None]
"""Cached credentials and the claims of the token that obtained them (None for guests)."""


class _IdentityGone(IdentityPoolConfigError):
    """The pool no longer knows an identity id (``ResourceNotFoundException``): the
    caller forgets it and retries once with a new one. Twice in a row, the pool is
    misconfigured (``IdentityPoolClient._misconfigured``)."""

    def __init__(self, action: str, status: int) -> None:
        super().__init__("the identity pool is misconfigured")
        self.action = action
        self.status = status


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


_REVOKED_BY: dict[str, Callable[[IdTokenClaims, str], bool]] = {
    USER: lambda claims, sub: claims.sub == sub,
    SESSION: lambda claims, origin_jti: claims.origin_jti == origin_jti,
    SIGN_IN: lambda claims, key: (
        claims.origin_jti is None and sign_in_key(claims.sub, claims.auth_time) == key
    ),
}
"""Whether a revocation entry of each kind covers the token that obtained credentials."""


class IdentityPoolClient:
    """Exchanges verified ID tokens (or nothing, for guests) for identity-pool credentials.

    Needs ``identity_pool_id`` in the settings. ID tokens are verified with
    ``verifier`` (by default one for this pool that accepts ID tokens). ``flow``
    is ``"enhanced"`` or ``"basic"`` (default: ``settings.identity_flow``).
    ``store`` keeps identity ids (and sealed credentials when it is shared and
    ``session_secret`` is set; without it they stay in this process); by default a
    ``MemoryStore`` in this process. Credentials obtained with a token that
    ``verifier.revocation`` now rejects are never served.
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
        self._credentials: LRUCache[Key, Entry] = LRUCache(cache_size)
        self._flights = SingleFlight()
        self._deleting: set[asyncio.Task[None]] = set()
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
        return await self._cached(key, claims, lambda: self._exchange(id_token, claims.sub, role))

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

        async def attempt(again: bool) -> AwsCredentials:
            if again:
                await self._store.delete(id_key)  # forgotten by the pool: ask GetId again
            identity_id = await self._identity_id(id_key, {"Logins": logins})
            return await self._credentials_of(identity_id, logins, role)

        try:
            return await self._once_more_if_gone(attempt, "a user's")
        except (CredentialsDeniedError, IdentityPoolConfigError):
            await self._store.delete(id_key)  # the identity may be gone: ask GetId next time
            raise

    async def _credentials_of(
        self, identity_id: str, logins: dict[str, str], role: str | None
    ) -> AwsCredentials:
        request: dict[str, Any] = {"IdentityId": identity_id, "Logins": logins}
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
        return _parse_credentials(answer, identity_id, role)

    # -- guests ------------------------------------------------------------------------

    async def guest_credentials(self, identity_id: str | None = None) -> AwsCredentials:
        """Credentials of the pool's unauthenticated role (always the enhanced flow).

        ``identity_id`` is a guest identity from an earlier call (kept, for example,
        in the visitor's session); without it, this process's guest identity is
        used, created with ``GetId`` on first use. An identity the pool no longer
        knows is replaced by a new one (the credentials name it: keep
        ``identity_id`` of the result). A pool without guest access answers
        ``NotAuthorizedException``: ``CredentialsDeniedError``.
        """
        guest = identity_id or await self._process_guest()

        async def attempt(again: bool) -> AwsCredentials:
            nonlocal guest
            if again and identity_id is not None:
                guest = await self.new_guest_identity()
            elif again:
                if self._guest_identity_id == guest:  # not yet replaced by a concurrent call
                    self._guest_identity_id = None
                guest = await self._process_guest()
            return await self._guest_cached(guest)

        return await self._once_more_if_gone(attempt, "a guest")

    async def new_guest_identity(self) -> str:
        """A new guest identity id (``GetId`` without logins), e.g. for a new session."""
        answer = await self._call("GetId", {"IdentityPoolId": self.identity_pool_id})
        return _identity_id_of(answer)

    async def _process_guest(self) -> str:
        """This process's guest identity id, made by one ``GetId`` on first use."""
        if self._guest_identity_id is not None:
            return self._guest_identity_id
        return await self._flights.run(("guest-id",), self._new_guest_identity)

    async def _new_guest_identity(self) -> str:
        identity_id = await self.new_guest_identity()
        self._guest_identity_id = identity_id
        return identity_id

    async def _guest_cached(self, identity_id: str) -> AwsCredentials:
        key = ("guest-credentials", identity_id)
        return await self._cached(key, None, lambda: self._guest_exchange(identity_id))

    async def _guest_exchange(self, identity_id: str) -> AwsCredentials:
        answer = await self._call("GetCredentialsForIdentity", {"IdentityId": identity_id})
        return _parse_credentials(answer, identity_id, None)

    # -- revocation ----------------------------------------------------------------------

    def drop_revoked(self, kind: str, member: str) -> None:
        """A ``RevocationList`` listener: drop the credentials obtained with tokens of a
        revoked user (``kind="user"``, ``member`` its ``sub``) or session (``"session"``,
        its ``origin_jti``; ``"sign_in"``, its ``sub:auth_time`` when it has no
        ``origin_jti``), here at once and from the shared store in the background
        (every read checks the list too, so nothing waits on that deletion)."""
        revoked = _REVOKED_BY.get(kind)
        if revoked is None:
            return
        dropped = [
            key
            for key, (_, claims) in list(self._credentials.items())
            if claims is not None and revoked(claims, member)
        ]
        for key in dropped:
            del self._credentials[key]
        if not dropped or self._sealer is None:
            return
        try:
            task = asyncio.get_running_loop().create_task(self._delete_shared(dropped))
        except RuntimeError:  # revoked outside an event loop: the reads' check suffices
            return
        self._deleting.add(task)
        task.add_done_callback(self._deleting.discard)

    async def _delete_shared(self, keys: list[Key]) -> None:
        for key in keys:
            await self._store.delete(self._store_key(key))

    def _revoked(self, claims: IdTokenClaims | None) -> bool:
        """Whether the token that obtained an entry is revoked now (guests never are)."""
        revocation = self.verifier.revocation
        return claims is not None and revocation is not None and revocation.is_revoked(claims)

    async def _once_more_if_gone(
        self, attempt: Callable[[bool], Awaitable[AwsCredentials]], whose: str
    ) -> AwsCredentials:
        """``attempt(False)``; when the pool no longer knows the identity it used,
        ``attempt(True)`` (which replaces it). Twice in a row: a misconfigured pool."""
        try:
            return await attempt(False)
        except _IdentityGone:
            logger.warning(
                "identity pool %s no longer knows %s identity: using a new one",
                self.identity_pool_id,
                whose,
            )
        try:
            return await attempt(True)
        except _IdentityGone as gone:
            raise self._misconfigured(gone.action, gone.status, _GONE) from None

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
        self,
        key: Key,
        claims: IdTokenClaims | None,
        exchange: Callable[[], Awaitable[AwsCredentials]],
    ) -> AwsCredentials:
        """Fresh cached credentials for ``key``, else the result of one shared ``exchange``
        (made with the token of ``claims``); credentials that failed to refresh early are
        served while they still work. Credentials obtained with a token revoked since
        are never served: a shared exchange whose token was revoked meanwhile is made
        again with this caller's token, or refused when that one is revoked too."""
        cached = await self._lookup(key)
        if cached is not None and _seconds_left(cached) > REFRESH_MARGIN_SECONDS:
            return cached

        async def keep() -> Entry:
            return await self._exchange_and_keep(key, claims, exchange)

        try:
            credentials, obtained_by = await self._flights.run(key, keep)
        except CredentialsUnavailableError:
            if cached is not None and _seconds_left(cached) > 0:
                return cached
            raise
        if self._revoked(obtained_by):
            if self._revoked(claims):
                raise InvalidTokenError("revoked", "the session was revoked")
            credentials, _ = await keep()
        return credentials

    async def _exchange_and_keep(
        self,
        key: Key,
        claims: IdTokenClaims | None,
        exchange: Callable[[], Awaitable[AwsCredentials]],
    ) -> Entry:
        credentials = await exchange()
        self._misconfigured_logged = False  # a later misconfiguration is a new incident
        entry = (credentials, claims)
        self._credentials[key] = entry
        ttl = _seconds_left(credentials) - REFRESH_MARGIN_SECONDS
        if self._sealer is not None and ttl > 0:
            name = self._store_key(key)
            sealed = self._sealer.seal(_pack(entry), name.encode())
            await self._store.set(name, sealed.encode(), ttl)
        return entry

    async def _lookup(self, key: Key) -> AwsCredentials | None:
        """Cached credentials for ``key`` (here, else sealed in the shared store by any
        process), unless the token that obtained them is revoked now: then dropped."""
        entry = self._credentials.get(key) or await self._load(key)
        if entry is None:
            return None
        if self._revoked(entry[1]):
            self._credentials.pop(key, None)
            if self._sealer is not None:
                await self._store.delete(self._store_key(key))
            return None
        return entry[0]

    async def _load(self, key: Key) -> Entry | None:
        """Credentials another process sealed into the shared store, if any."""
        if self._sealer is None:
            return None
        name = self._store_key(key)
        stored = await self._store.get(name)
        opened = (
            self._sealer.open(stored.decode("ascii", "replace"), name.encode()) if stored else None
        )
        entry = _unpack(opened) if opened is not None else None
        if entry is not None:
            self._credentials[key] = entry
        return entry

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
            logger.warning(
                "identity pool %s failed: %s",
                action,
                exc,
                extra=telemetry.log_extra("credentials_unavailable", self.settings.user_pool_id),
            )
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
        if kind == _GONE and action != "GetId":  # GetId's: the pool itself is unknown
            return _IdentityGone(action, status)
        if kind in _DENIED:
            return CredentialsDeniedError("the identity pool refused credentials for this user")
        if kind in _UNAVAILABLE or status in (200, 429) or status >= 500:
            logger.warning(
                "identity pool %s unavailable: HTTP %s %s",
                action,
                status,
                kind or "",
                extra=telemetry.log_extra("credentials_unavailable", self.settings.user_pool_id),
            )
            return CredentialsUnavailableError(
                "the identity pool is unavailable", retry_after=answer.retry_after
            )
        return self._misconfigured(action, status, kind)

    def _misconfigured(self, action: str, status: int, kind: str) -> IdentityPoolConfigError:
        """The error for a pool that refuses a call as misconfigured; logged once per
        incident (until an exchange succeeds)."""
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
                extra=telemetry.log_extra(
                    "identity_pool_misconfigured", self.settings.user_pool_id
                ),
            )
        return IdentityPoolConfigError("the identity pool is misconfigured")

    async def aclose(self) -> None:
        """Finish dropping revoked credentials from the store; close the HTTP client and
        verifier this client created."""
        if self._deleting:
            await asyncio.gather(*self._deleting)
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


_PROVENANCE = ("sub", "iss", "exp", "iat", "auth_time", "origin_jti")
"""The claims an entry keeps of the token that obtained it: what the revocation list reads."""


def _pack(entry: Entry) -> bytes:
    """An entry as bytes for the shared store (sealed by the caller)."""
    credentials, claims = entry
    provenance = None
    if claims is not None:
        values = {name: getattr(claims, name) for name in _PROVENANCE}
        provenance = {name: value for name, value in values.items() if value is not None}
    return json.dumps([credentials.to_bytes().decode(), provenance]).encode()


def _unpack(data: bytes) -> Entry | None:
    """An entry from ``_pack`` output, or None when ``data`` is not that."""
    try:
        packed, provenance = json.loads(data)
        credentials = AwsCredentials.from_bytes(packed.encode())
        claims = None
        if provenance is not None:
            # the claims an ID token always carries, for the decode (never read here)
            payload = json.dumps({"token_use": "id", "aud": "", **provenance}).encode()
            decoded = decode_claims(payload)
            claims = decoded if isinstance(decoded, IdTokenClaims) else None
    except (ValueError, TypeError, AttributeError, InvalidTokenError):
        return None
    return None if credentials is None else (credentials, claims)


def _seconds_left(credentials: AwsCredentials) -> float:
    return credentials.expiration.timestamp() - time.time()
