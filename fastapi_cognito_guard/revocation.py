"""Sign-out that takes effect: the revocation list and Cognito's sign-out calls.

Offline verification cannot see a sign-out, so the verifier asks a
``RevocationList`` after every verification (result-cache hits too): a session
is revoked by its ``origin_jti`` (every token minted from one sign-in shares it)
or, for tokens without one (app clients with token revocation off), by its
sign-in key ``sub:auth_time``, which every token of one sign-in shares; a user by
``sub`` and a time in whole seconds (tokens whose ``auth_time``, else ``iat``, is
at or before it). Lookups are a few dict probes; the network is never on that
path. ``Revoker`` adds entries (locally first, then to the shared list) and talks
to Cognito: ``GlobalSignOut`` for sign-out everywhere, ``GetUser`` for the online
session check of sensitive routes.
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

from . import telemetry
from .awshttp import CallFailed, post
from .claims import AccessTokenClaims, ClaimsParser, TokenClaims, bind_user_pool
from .errors import CognitoUnavailableError, InvalidTokenError
from .jwt import parse
from .settings import CognitoSettings
from .singleflight import SingleFlight
from .stores import MAX_AHEAD_SECONDS, RedisLink, RedisMirror, valid_id

__all__ = [
    "ADMIN_SCOPE",
    "MIRROR_NAME",
    "RevocationList",
    "Revoker",
    "SignOutResult",
    "revocable_sub",
    "session_entry",
    "shared_revocations",
    "sign_in_key",
    "trusted_claims",
]

logger = logging.getLogger(__name__)

ADMIN_SCOPE = "aws.cognito.signin.user.admin"
"""The scope an access token needs for Cognito's ``GetUser`` and ``GlobalSignOut``."""

SESSION, USER, SIGN_IN = "session", "user", "sign_in"
SESSION_ID = "sid"
"""Browser sessions revoked by their session id (server-side sessions, DESIGN §13)."""
KINDS = (SESSION, USER, SIGN_IN, SESSION_ID)
MIRROR_NAME = "revoked"
"""Redis keys ``{prefix}revoked:session`` / ``:user`` / ``:sign_in`` and the channel
``{prefix}revoked``."""

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

_ACCESS_ONLY = ClaimsParser(frozenset({"access"}))


def sign_in_key(sub: str, auth_time: int | None) -> str | None:
    """The key every token of one sign-in shares when it has no ``origin_jti``:
    ``sub:auth_time`` (Cognito keeps ``auth_time`` across refreshes). None without
    an ``auth_time``, or when the key would not be a valid list entry."""
    if auth_time is None:
        return None
    key = f"{sub}:{auth_time}"
    return key if valid_id(key) else None


def session_entry(claims: TokenClaims) -> tuple[str, str]:
    """The list entry that revokes the sign-in behind ``claims``: its ``origin_jti``,
    else its sign-in key, else (a token with neither, or whose ``origin_jti`` the list
    cannot hold) its user. A token whose ``sub`` the list cannot hold either (over
    256 characters) is ``InvalidTokenError("unrevocable")``: never a sign-out without
    an entry that rejects it."""
    origin_jti = claims.origin_jti
    if origin_jti is not None:  # the list never reads such a token's sign-in key
        if valid_id(origin_jti):
            return SESSION, origin_jti
        return USER, revocable_sub(claims.sub)
    key = sign_in_key(claims.sub, claims.auth_time)
    if key is not None:
        return SIGN_IN, key
    return USER, revocable_sub(claims.sub)


def revocable_sub(sub: str) -> str:
    """``sub`` when the list can hold it, else ``InvalidTokenError("unrevocable")``."""
    if valid_id(sub):
        return sub
    logger.warning("sign-out refused: the token's sub is not an id the revocation list can hold")
    raise InvalidTokenError(
        "unrevocable", "the token names no session or user the revocation list can hold"
    )


def trusted_claims(access_token: str, user_pool_id: str) -> AccessTokenClaims | None:
    """The claims of an access token this app verified before and kept sealed since (a
    browser session's), read without verifying again: its signature was checked at
    sign-in or refresh, and an expired one must still be revocable. Never use this on
    a token a request presents. None when it is not a readable access token."""
    try:
        claims = _ACCESS_ONLY.parse(parse(access_token).payload)
    except InvalidTokenError:
        return None
    if not isinstance(claims, AccessTokenClaims):  # pragma: no cover - the parser's rule
        return None
    bind_user_pool(claims, user_pool_id)
    return claims


class RevocationList:
    """Revoked sessions (``origin_jti``), sign-ins (``sub:auth_time``, for tokens
    without ``origin_jti``) and users (``sub`` + time), in memory.

    Implements the verifier's ``RevocationCheck`` and the ``MirroredMaps`` that a
    ``RedisMirror`` shares. Entries live ``ttl_seconds`` from their revocation
    (a refresh token's validity); expired ones are pruned on writes and merges.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_empty",
        "_maps",
        "_pruned_at",
        "_sessions",
        "_sign_in_times",
        "_sign_ins",
        "_users",
        "listeners",
        "ttl_seconds",
    )

    def __init__(self, ttl_seconds: int, *, clock: Callable[[], float] = time.time) -> None:
        self.ttl_seconds = ttl_seconds
        self._clock = clock
        self._maps: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        self._sessions = self._maps[SESSION]
        self._sign_ins = self._maps[SIGN_IN]
        self._sign_in_times: dict[str, set[int]] = {}
        """The sign-in keys by ``sub``: a probe without building the key string."""
        self._users = self._maps[USER]
        self._empty = True
        """No entry of any kind: the verifier's check is one attribute read."""
        self._pruned_at = 0.0
        self.listeners: list[Callable[[str, str], None]] = []
        # called with (kind, id) when an entry is new or later (e.g. to drop cached credentials)
        telemetry.watch_revocations(self)

    def __len__(self) -> int:
        return sum(len(entries) for entries in self._maps.values())

    def is_revoked(self, claims: TokenClaims) -> bool:
        """True when the token's session, sign-in or user was revoked: a few dict
        probes, no I/O. Only tokens without ``origin_jti`` pay for the sign-in key."""
        if self._empty:
            return False
        sessions, sign_ins = self._sessions, self._sign_ins
        if sessions or sign_ins:  # claims are read only when needed
            origin_jti = claims.origin_jti
            if origin_jti is not None:
                if origin_jti in sessions:
                    return True
            elif sign_ins:
                times = self._sign_in_times.get(claims.sub)
                if times is not None and claims.auth_time in times:
                    return True
        users = self._users
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
        return self.add(SESSION, origin_jti)

    def revoke_sign_in(self, key: str) -> int:
        """Revoke every token of one sign-in by its ``sign_in_key`` (tokens without
        ``origin_jti``); returns the revocation time."""
        return self.add(SIGN_IN, key)

    def revoke_user(self, sub: str) -> int:
        """Revoke every token of ``sub`` signed in up to now; returns the revocation time."""
        return self.add(USER, sub)

    def add(self, kind: str, member: str) -> int:
        """Revoke ``member`` of ``kind`` as of now; returns the time. ``ValueError``
        for a malformed id."""
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
        self._empty = False
        if kind == SIGN_IN:
            self._index_sign_in(member)
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
        for kind, entries in self._maps.items():
            expired = [member for member, at in entries.items() if at <= oldest]
            for member in expired:
                del entries[member]
            if expired and kind == SIGN_IN:
                self._sign_in_times = {}
                for member in entries:
                    self._index_sign_in(member)
        self._empty = not any(self._maps.values())

    def _index_sign_in(self, key: str) -> None:
        """Index a ``sub:auth_time`` key (one that is not, e.g. from Redis, matches no
        token and is left out)."""
        sub, _, stamp = key.rpartition(":")
        if sub and stamp.isascii() and stamp.isdigit():
            self._sign_in_times.setdefault(sub, set()).add(int(stamp))


CognitoOutcome = Literal[
    "not_asked", "signed_out", "no_access_token", "token_expired", "no_admin_scope", "failed"
]


@dataclass(frozen=True)
class SignOutResult:
    """What ``sign_out`` did; every sign-out leaves at least one entry in the list.

    The sign-in was revoked by ``origin_jti``, else by ``sign_in_key``
    (``sub:auth_time``), else (a token with neither) by revoking the user;
    ``user_revoked`` is true for that and for ``everywhere``. ``shared`` says whether
    the entries reached the shared list (Redis): None without one, False while Redis
    is unreachable (they are written back when it returns). ``cognito`` says whether
    Cognito was told: ``"not_asked"`` (a local sign-out), ``"signed_out"``
    (``GlobalSignOut`` done), ``"no_access_token"`` (an ID token cannot call it),
    ``"token_expired"``, ``"no_admin_scope"`` (the access token lacks
    ``aws.cognito.signin.user.admin``) or ``"failed"`` (logged); in each of the
    last four the user is revoked here only."""

    sub: str
    origin_jti: str | None
    sign_in_key: str | None
    user_revoked: bool
    everywhere: bool
    cognito: CognitoOutcome
    shared: bool | None

    @property
    def session_key(self) -> str | None:
        """The entry that revoked this sign-in (None when only the user was revoked)."""
        return self.origin_jti or self.sign_in_key

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


def _both(first: bool | None, second: bool | None) -> bool | None:
    return None if first is None or second is None else first and second


class Revoker:
    """Revokes sessions and users (locally, then on the shared list) and asks Cognito
    (each pool's ``idp_url``) about the sessions of verified users.

    ``publish`` writes an entry to the shared list (the ``RedisMirror``), if any;
    without one, the first revocation logs that other processes will not see it.
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
        self._login_scopes = tuple(settings[0].login_scopes)
        self.revocations = revocations
        self.publish = publish
        self._client = http_client
        self._owns_client = http_client is None
        ttl = min(s.revocation_check_seconds for s in settings)
        self._checked: TTLCache[str, bool] | None = (
            TTLCache(CHECK_CACHE_SIZE, ttl) if ttl > 0 else None
        )
        self._checks = SingleFlight()
        self.unchecked_sessions = 0
        """Session checks that could not ask Cognito (no admin scope): the list alone."""
        self._said: set[str] = set()

    def _once(self, topic: str, message: str, *args: object) -> None:
        """Log a warning about ``topic`` the first time only."""
        if topic not in self._said:
            self._said.add(topic)
            logger.warning(message, *args)

    # -- the list ------------------------------------------------------------------

    async def revoke_session(self, origin_jti: str) -> bool | None:
        """Revoke every token of one sign-in, here at once and on the shared list."""
        return await self._revoke(SESSION, origin_jti)

    async def revoke_sign_in(self, key: str) -> bool | None:
        """Revoke every token of one sign-in by its ``sign_in_key``."""
        return await self._revoke(SIGN_IN, key)

    async def revoke_user(self, sub: str) -> bool | None:
        """Revoke every token of ``sub`` issued up to now; later sign-ins work."""
        return await self._revoke(USER, sub)

    async def _revoke(self, kind: str, member: str) -> bool | None:
        """Add an entry here, then share it: True when it reached the shared list,
        False when Redis could not take it (written back later), None without one."""
        at = self.revocations.add(kind, member)
        if self.publish is None:
            self._once(
                "unshared",
                "revocation kept in this process only: other workers and replicas do not "
                "see it and keep accepting the revoked tokens; set COGNITO_REDIS_URL to "
                "share the revocation list",
            )
            return None
        return await self.publish(kind, member, at)

    async def revoke_session_id(self, sid: str) -> bool | None:
        """Revoke a browser session by its session id, here at once and on the shared
        list (see ``_revoke`` for the answer); ``ValueError`` when malformed."""
        return await self._revoke(SESSION_ID, sid)

    # -- sign-out ------------------------------------------------------------------

    async def sign_out(
        self, claims: TokenClaims, token: str, *, everywhere: bool = False
    ) -> SignOutResult:
        """Revoke the sign-in behind ``claims`` (those of ``token``, verified now or
        when a session stored it), and with ``everywhere`` the user too, telling
        Cognito with ``GlobalSignOut`` when ``token`` is a live access token with the
        admin scope. Cognito failures are logged and reported, never raised."""
        kind, member = session_entry(claims)
        if everywhere:
            revocable_sub(claims.sub)  # before any entry: all or nothing
        shared = await self._revoke(kind, member)
        origin_jti = member if kind == SESSION else None
        key = member if kind == SIGN_IN else None
        user_revoked = kind == USER
        cognito: CognitoOutcome = "not_asked"
        if everywhere:
            if not user_revoked:
                shared = _both(shared, await self.revoke_user(claims.sub))
                user_revoked = True
            cognito = await self._tell_cognito(claims, token)
        return telemetry.signed_out(
            SignOutResult(claims.sub, origin_jti, key, user_revoked, everywhere, cognito, shared)
        )

    async def sign_out_session(
        self, access_token: str, *, sub: str, user_pool_id: str, everywhere: bool = False
    ) -> SignOutResult:
        """Sign a browser session out through its own access token, whatever the
        app's ``token_use`` and even once it has expired (see ``trusted_claims``).
        A session whose token cannot be read revokes its user."""
        claims = trusted_claims(access_token, user_pool_id)
        if claims is None or claims.sub != sub:
            logger.warning("a session's access token is unreadable: its user is revoked")
            shared = await self.revoke_user(revocable_sub(sub))
            return telemetry.signed_out(
                SignOutResult(sub, None, None, True, everywhere, "not_asked", shared)
            )
        return await self.sign_out(claims, access_token, everywhere=everywhere)

    async def _tell_cognito(self, claims: TokenClaims, token: str) -> CognitoOutcome:
        if claims.token_use != "access":
            outcome: CognitoOutcome = "no_access_token"
        elif claims.exp <= time.time():
            outcome = "token_expired"
        elif ADMIN_SCOPE not in claims.scopes:
            outcome = "no_admin_scope"
        else:
            return "signed_out" if await self._global_sign_out(token, claims) else "failed"
        self._once(
            outcome,
            "sign-out everywhere revoked the user here but could not tell Cognito (%s): "
            "GlobalSignOut needs a live access token with the %s scope; for browser "
            "sessions add it to COGNITO_LOGIN_SCOPES",
            outcome,
            ADMIN_SCOPE,
        )
        return outcome

    async def _global_sign_out(self, token: str, claims: TokenClaims) -> bool:
        try:
            answer = await self._call("GlobalSignOut", token, claims.user_pool_id)
        except CallFailed as exc:
            logger.warning(
                "Cognito GlobalSignOut failed (%s); revoked locally only",
                exc,
                extra=telemetry.log_extra("cognito_unavailable", claims.user_pool_id),
            )
            return False
        if answer.status == 200 or answer.error_type == "NotAuthorizedException":
            return True  # NotAuthorized: that session is already signed out at Cognito
        logger.warning(
            "Cognito GlobalSignOut failed (HTTP %s %s); revoked locally only",
            answer.status,
            answer.error_type or "unknown error",
            extra=telemetry.log_extra("cognito_unavailable", claims.user_pool_id),
        )
        return False

    # -- the online session check ----------------------------------------------------

    def warn_about_login_scopes(self, use: str) -> None:
        """One start-up warning when browser sign-in's scopes lack the admin scope, so
        ``use`` (the login router, ``require_active_session``) cannot reach Cognito."""
        if ADMIN_SCOPE in self._login_scopes:
            return
        self._once(
            "login_scopes",
            "%s: COGNITO_LOGIN_SCOPES (%s) lacks %s, so browser sessions' access tokens "
            "cannot ask Cognito: require_active_session relies on the revocation list "
            "alone and sign-out everywhere does not call GlobalSignOut; add the scope to "
            "COGNITO_LOGIN_SCOPES (and allow it on the app client)",
            use,
            " ".join(self._login_scopes),
            ADMIN_SCOPE,
        )

    async def check_session(self, token: str, claims: TokenClaims) -> None:
        """Ask Cognito (``GetUser``) whether the sign-in behind ``token`` (an access
        token whose ``claims`` were verified now or when a session stored it) is
        alive, at most once per token per ``revocation_check_seconds``. A dead one is
        revoked and raises ``revoked``; an unreachable Cognito raises
        ``CognitoUnavailableError``. A token that cannot ask (an ID token, no admin
        scope) relies on the revocation list alone: counted, logged once."""
        if claims.token_use != "access" or ADMIN_SCOPE not in claims.scopes:
            self.unchecked_sessions += 1
            self._once(
                "unchecked",
                "require_active_session cannot ask Cognito about a session whose token "
                "is not an access token with the %s scope: it relies on the revocation "
                "list alone (browser sessions: add the scope to COGNITO_LOGIN_SCOPES)",
                ADMIN_SCOPE,
            )
            return
        checked = self._checked
        if checked is not None and token in checked:
            return
        await self._checks.run(token, lambda: self._check(token, claims))

    async def _check(self, token: str, claims: TokenClaims) -> None:
        try:
            answer = await self._call("GetUser", token, claims.user_pool_id)
        except CallFailed as exc:
            logger.warning(
                "Cognito GetUser failed (%s): session check unavailable",
                exc,
                extra=telemetry.log_extra("cognito_unavailable", claims.user_pool_id),
            )
            raise CognitoUnavailableError("Cognito could not confirm the session") from None
        if answer.ok:
            if self._checked is not None:
                self._checked[token] = True
            return
        if answer.error_type in _DEAD_SESSION:
            await self._revoke(*session_entry(claims))
            raise InvalidTokenError("revoked", "the session was signed out at Cognito")
        unavailable = answer.error_type in _UNAVAILABLE or answer.status in (200, 429)
        logger.warning(
            "Cognito GetUser answered HTTP %s %s: session check unavailable%s",
            answer.status,
            answer.error_type or "unknown error",
            "" if unavailable or answer.status >= 500 else " (check COGNITO_IDP_ENDPOINT)",
            extra=telemetry.log_extra("cognito_unavailable", claims.user_pool_id),
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


def shared_revocations(
    link: RedisLink, revocations: RevocationList, *, leeway_seconds: int = MAX_AHEAD_SECONDS
) -> RedisMirror:
    """The Redis mirror of a revocation list (entries live as long as the list's).
    Entries from Redis dated more than ``leeway_seconds`` (the largest configured
    leeway) ahead are refused."""
    mirror = RedisMirror(
        link,
        revocations,
        name=MIRROR_NAME,
        kinds=KINDS,
        ttl_seconds=revocations.ttl_seconds,
        max_ahead_seconds=leeway_seconds,
    )
    telemetry.watch_mirror(mirror)
    return mirror
