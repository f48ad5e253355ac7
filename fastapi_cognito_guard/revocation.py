"""Sign-out that takes effect: the revocation list and Cognito's sign-out calls.

Offline verification cannot see a sign-out, so the verifier asks a
``RevocationList`` after every verification (result-cache hits too): a session
is revoked by its ``origin_jti`` (every token minted from one sign-in shares it),
a user by ``sub`` and a time in whole seconds (tokens whose ``auth_time``, else
``iat``, is at or before it). Lookups are two dict probes; the network is never
on that path. ``Revoker`` adds entries (locally first, then to the shared list)
and talks to Cognito: ``GlobalSignOut`` for sign-out everywhere, ``GetUser`` for
the online session check of sensitive routes.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple

import httpx
from cachetools import TTLCache

from .awshttp import CallFailed, post
from .claims import CognitoUser, TokenClaims
from .errors import CognitoUnavailableError, InvalidTokenError
from .settings import CognitoSettings
from .singleflight import SingleFlight
from .stores import MAX_AHEAD_SECONDS, RedisLink, RedisMirror, valid_id

__all__ = [
    "ADMIN_SCOPE",
    "MIRROR_NAME",
    "RevocationList",
    "Revoker",
    "SignOutResult",
    "shared_revocations",
]

logger = logging.getLogger("fastapi_cognito_guard")

ADMIN_SCOPE = "aws.cognito.signin.user.admin"
"""The scope an access token needs for Cognito's ``GetUser`` and ``GlobalSignOut``."""

SESSION, USER = "session", "user"
SESSION_ID = "sid"
"""Browser sessions revoked by their session id (server-side sessions, DESIGN §13)."""
KINDS = (SESSION, USER, SESSION_ID)
MIRROR_NAME = "revoked"
"""Redis keys ``{prefix}revoked:session`` / ``:user`` and the channel ``{prefix}revoked``."""

_TARGET_PREFIX = "AWSCognitoIdentityProviderService."
_DEAD_SESSION = frozenset({"NotAuthorizedException", "UserNotFoundException"})
_UNAVAILABLE = frozenset(
    {
        "TooManyRequestsException",
        "LimitExceededException",
        "InternalErrorException",
        "ThrottlingException",
        "ServiceUnavailableException",
    }
)
CALL_TIMEOUT_SECONDS = 5.0
"""Whole-call deadline for ``GetUser`` and ``GlobalSignOut``."""

CHECK_CACHE_SIZE = 10000
"""Tokens whose online session check is remembered per process."""


class RevocationList:
    """Revoked sessions (``origin_jti``) and users (``sub`` + time), in memory.

    Implements the verifier's ``RevocationCheck`` and the ``MirroredMaps`` that a
    ``RedisMirror`` shares. Entries live ``ttl_seconds`` from their revocation
    (a refresh token's validity); expired ones are pruned on writes and merges.
    """

    __slots__ = ("_clock", "_maps", "_pruned_at", "_sessions", "_users", "listeners", "ttl_seconds")

    def __init__(self, ttl_seconds: int, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._maps: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._sessions = self._maps[SESSION]
        self._users = self._maps[USER]
        self._pruned_at = 0.0
        self.listeners: list[Callable[[str, str], None]] = []
        # called with (kind, id) when an entry is new or later (e.g. to drop cached credentials)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._maps.values())

    def is_revoked(self, claims: TokenClaims) -> bool:
        """True when the token's session or user was revoked: two dict probes, no I/O."""
        sessions, users = self._sessions, self._users
        if sessions and claims.origin_jti in sessions:  # claims are read only when needed
            return True
        if not users:
            return False
        revoked_at = users.get(claims.sub)
        if revoked_at is None:
            return False
        issued = claims.auth_time
        if issued is None:
            issued = claims.iat
        return issued is None or issued <= revoked_at

    def revoke_session(self, origin_jti: str) -> int:
        """Revoke every token of one sign-in; returns the revocation time."""
        return self._add(SESSION, origin_jti)

    def revoke_user(self, sub: str) -> int:
        """Revoke every token of ``sub`` signed in up to now; returns the revocation time."""
        return self._add(USER, sub)

    def _add(self, kind: str, member: str) -> int:
        if not valid_id(member):
            raise ValueError(f"a {kind} id must be 1-256 visible ASCII characters")
        at = int(self._clock())
        self.merge(kind, member, at)
        return at

    def merge(self, kind: str, member: str, at: int) -> None:
        """Add an entry unless an equal or later one is known (or it has expired)."""
        entries = self._maps[kind]
        now = self._clock()
        if at + self.ttl_seconds <= now or entries.get(member, -1) >= at:
            return
        entries[member] = at
        for listener in self.listeners:
            listener(kind, member)
        if now - self._pruned_at >= 60:
            self._prune(now)

    def session_id_revoked(self, sid: str) -> bool:
        """True when the browser session ``sid`` was signed out (one dict probe)."""
        return sid in self._maps[SESSION_ID]

    def snapshot(self, kind: str) -> dict[str, int]:
        """The live entries of ``kind`` (a copy)."""
        self._prune(self._clock())
        return dict(self._maps[kind])

    def _prune(self, now: float) -> None:
        self._pruned_at = now
        oldest = now - self.ttl_seconds
        for entries in self._maps.values():
            expired = [member for member, at in entries.items() if at <= oldest]
            for member in expired:
                del entries[member]


@dataclass(frozen=True)
class SignOutResult:
    """What ``sign_out`` did. ``cognito`` says whether Cognito was told:
    ``"not_asked"`` (a local sign-out), ``"signed_out"`` (``GlobalSignOut`` done),
    ``"no_admin_scope"`` (the token cannot call it: revoked here only) or
    ``"failed"`` (the call failed; logged, revoked here anyway)."""

    sub: str
    origin_jti: str | None
    everywhere: bool
    cognito: Literal["not_asked", "signed_out", "no_admin_scope", "failed"]

    @property
    def cognito_told(self) -> bool:
        return self.cognito == "signed_out"


Publish = Callable[[str, str, int], Awaitable[bool]]


class _Answer(NamedTuple):
    """Cognito's answer: success, or the HTTP status and the short AWS error name."""

    ok: bool
    status: int
    error_type: str
    retry_after: float


class Revoker:
    """Revokes sessions and users (locally, then on the shared list) and asks Cognito
    (each pool's ``idp_url``) about the sessions of verified users.

    ``publish`` writes an entry to the shared list (the ``RedisMirror``), if any.
    """

    def __init__(
        self,
        settings: Sequence[CognitoSettings],
        revocations: RevocationList,
        *,
        http_client: httpx.AsyncClient | None = None,
        publish: Publish | None = None,
    ) -> None:
        self._idp_urls = {s.user_pool_id: s.idp_url for s in settings}
        self.revocations = revocations
        self.publish = publish
        self._client = http_client
        self._owns_client = http_client is None
        ttl = min(s.revocation_check_seconds for s in settings)
        self._checked: TTLCache[str, bool] | None = (
            TTLCache(CHECK_CACHE_SIZE, ttl) if ttl > 0 else None
        )
        self._checks = SingleFlight()

    async def revoke_session(self, origin_jti: str) -> None:
        """Revoke every token of one sign-in, here at once and on the shared list."""
        at = self.revocations.revoke_session(origin_jti)
        await self._share(SESSION, origin_jti, at)

    async def revoke_user(self, sub: str) -> None:
        """Revoke every token of ``sub`` issued up to now; later sign-ins work."""
        at = self.revocations.revoke_user(sub)
        await self._share(USER, sub, at)

    async def _share(self, kind: str, member: str, at: int) -> None:
        if self.publish is not None:
            await self.publish(kind, member, at)

    async def revoke_session_id(self, sid: str) -> bool | None:
        """Revoke a browser session by its session id, here at once and on the shared
        list: True when the entry reached Redis, False when it could not (the mirror
        writes it back when Redis returns), None without a shared list."""
        if not valid_id(sid):
            raise ValueError("a session id must be 1-256 visible ASCII characters")
        at = int(time.time())
        self.revocations.merge(SESSION_ID, sid, at)
        return None if self.publish is None else await self.publish(SESSION_ID, sid, at)

    async def sign_out(
        self, token: str, user: CognitoUser, *, everywhere: bool = False
    ) -> SignOutResult:
        """Revoke the session of ``user``'s verified ``token`` (and with ``everywhere``
        the user, telling Cognito with ``GlobalSignOut``). Cognito failures are logged
        and reported in the result, never raised."""
        origin_jti = _origin_jti(user)
        if origin_jti is not None:
            await self.revoke_session(origin_jti)
        if not everywhere:
            return SignOutResult(user.sub, origin_jti, False, "not_asked")
        await self.revoke_user(user.sub)
        cognito: Literal["signed_out", "no_admin_scope", "failed"] = "no_admin_scope"
        if _has_admin_scope(user):
            signed_out = await self._global_sign_out(token, user.user_pool_id)
            cognito = "signed_out" if signed_out else "failed"
        return SignOutResult(user.sub, origin_jti, True, cognito)

    async def _global_sign_out(self, token: str, user_pool_id: str) -> bool:
        try:
            answer = await self._call("GlobalSignOut", token, user_pool_id)
        except CallFailed as exc:
            logger.warning("Cognito GlobalSignOut failed (%s); revoked locally only", exc)
            return False
        if answer.status == 200 or answer.error_type == "NotAuthorizedException":
            return True  # NotAuthorized: that session is already signed out at Cognito
        logger.warning(
            "Cognito GlobalSignOut failed (HTTP %s %s); revoked locally only",
            answer.status,
            answer.error_type or "unknown error",
        )
        return False

    async def check_session(self, token: str, user: CognitoUser) -> None:
        """Ask Cognito (``GetUser``) whether the token's session is alive, at most once
        per token per ``revocation_check_seconds``. A dead one is revoked and raises
        ``revoked``; an unreachable Cognito raises ``CognitoUnavailableError``.
        Tokens without the admin scope rely on the revocation list alone."""
        if not _has_admin_scope(user):
            return
        checked = self._checked
        if checked is not None and token in checked:
            return
        await self._checks.run(token, lambda: self._check(token, user))

    async def _check(self, token: str, user: CognitoUser) -> None:
        try:
            answer = await self._call("GetUser", token, user.user_pool_id)
        except CallFailed as exc:
            logger.warning("Cognito GetUser failed (%s): session check unavailable", exc)
            raise CognitoUnavailableError("Cognito could not confirm the session") from None
        if answer.ok:
            if self._checked is not None:
                self._checked[token] = True
            return
        if answer.error_type in _DEAD_SESSION:
            origin_jti = _origin_jti(user)
            if origin_jti is not None:
                await self.revoke_session(origin_jti)
            else:
                await self.revoke_user(user.sub)
            raise InvalidTokenError("revoked", "the session was signed out at Cognito")
        unavailable = answer.error_type in _UNAVAILABLE or answer.status in (200, 429)
        logger.warning(
            "Cognito GetUser answered HTTP %s %s: session check unavailable%s",
            answer.status,
            answer.error_type or "unknown error",
            "" if unavailable or answer.status >= 500 else " (check COGNITO_IDP_ENDPOINT)",
        )
        raise CognitoUnavailableError(
            "Cognito could not confirm the session", retry_after=answer.retry_after
        )

    async def _call(self, action: str, token: str, user_pool_id: str) -> _Answer:
        """One JSON 1.1 call with the access token as its only authorization."""
        if self._client is None or (self._owns_client and self._client.is_closed):
            self._client = httpx.AsyncClient(follow_redirects=False)
        answer = await post(
            self._client,
            self._idp_urls[user_pool_id],
            content=json.dumps({"AccessToken": token}),
            headers={
                "Content-Type": "application/x-amz-json-1.1",
                "X-Amz-Target": _TARGET_PREFIX + action,
            },
            timeout=CALL_TIMEOUT_SECONDS,
        )
        try:
            body = json.loads(answer.content)  # any content type: the body decides
        except (ValueError, RecursionError):
            body = None
        kind = str(body.get("__type") or "") if isinstance(body, dict) else ""
        kind = kind or answer.headers.get("x-amzn-errortype", "")
        return _Answer(
            ok=answer.status == 200 and isinstance(body, dict),
            status=answer.status,
            error_type=kind.rsplit("#", 1)[-1].split(":", 1)[0],
            retry_after=answer.retry_after,
        )

    async def aclose(self) -> None:
        """Close the HTTP client this revoker created."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()


def _has_admin_scope(user: CognitoUser) -> bool:
    return user.token_use == "access" and ADMIN_SCOPE in user.scopes


def _origin_jti(user: CognitoUser) -> str | None:
    value = user.claims.get("origin_jti")
    return value if isinstance(value, str) else None


def shared_revocations(
    link: RedisLink, revocations: RevocationList, *, leeway_seconds: int = MAX_AHEAD_SECONDS
) -> RedisMirror:
    """The Redis mirror of a revocation list (entries live as long as the list's).
    Entries from Redis dated more than ``leeway_seconds`` (the largest configured
    leeway) ahead are refused."""
    return RedisMirror(
        link,
        revocations,
        name=MIRROR_NAME,
        kinds=KINDS,
        ttl_seconds=revocations.ttl_seconds,
        max_ahead_seconds=leeway_seconds,
    )
