"""``BrowserSessions``: browser sign-in for one ``CognitoAuth``.

Holds what the routes and the middleware share: the sealers (one key per
purpose, from ``session_secret``), the OAuth2 client of the sign-in app client
(the first of ``client_ids``), a verifier that accepts both token types of the
first user pool, and the single-flight refresher (with ``redis_url``, one refresh
per session across the fleet).

Server-side sessions tell "unreachable" from "absent": while Redis cannot be
read, requests with a session cookie get 503 ``sessions_unavailable`` and keep
their cookie; ``end`` (sign-out) then revokes the session id through the
revocation list, and a revoked session met later has its refresh token revoked
at Cognito and its stored entry deleted.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import httpx
from starlette.requests import cookie_parser
from starlette.types import Scope

from .. import telemetry
from ..claims import AccessTokenClaims, IdTokenClaims
from ..errors import (
    CsrfRejectedError,
    InvalidTokenError,
    OAuthUnavailableError,
    ServiceUnavailableError,
    SessionsUnavailableError,
    SignInError,
)
from ..revocation import SESSION_ID, RevocationList
from ..sealing import Sealer
from ..settings import CognitoSettings, is_loopback_host
from ..stores import StoreUnreachableError, StrictStore
from ..verifier import CognitoVerifier
from .context import SessionContext
from .cookies import ChunkedCookie
from .csrf import needs_origin_check, rejection_message, trusted_request
from .guests import SessionGuestIdentities
from .oauth import OAuthClient, TokenEndpointError
from .refresh import SessionEndedError, SharedRefreshes, SingleFlightRefresher
from .session import Session, SessionCodec, new_session_id
from .store import ServerSideSessions
from .transient import SignInState, SignInStates

if TYPE_CHECKING:
    from ..revocation import Revoker

__all__ = ["REFRESH_MARGIN_SECONDS", "SESSION_COOKIE", "BrowserSessions", "SessionEnd"]

logger = logging.getLogger(__name__)

REFRESH_MARGIN_SECONDS = 60
"""Refresh when the session's access token expires within this many seconds."""

SESSION_COOKIE = "fcg_session"

_TEST_CLIENT_HOST = "testserver"

KNOWN_HEADERS = 1024
"""Recently seen ``Cookie`` headers kept parsed and opened (the hot path skips both)."""


def _requirements(settings: CognitoSettings) -> list[str]:
    missing = []
    if not settings.session_secret:
        missing.append("session_secret (COGNITO_SESSION_SECRET)")
    if settings.oauth_base_url is None:
        missing.append("domain (COGNITO_DOMAIN) or oauth_url (COGNITO_OAUTH_URL)")
    return missing


@dataclass(frozen=True)
class SessionEnd:
    """What ``BrowserSessions.end`` did. ``sid`` is the ended session's id (now on the
    revocation list); ``deleted`` whether its stored entry (server-side sessions) is
    gone already (False: Redis is unreachable, it is deleted when next seen);
    ``shared`` whether the revocation reached the shared list (None without one,
    False while Redis is unreachable: written back when it returns)."""

    sid: str
    deleted: bool
    shared: bool | None


def sessions_configured(settings: CognitoSettings) -> bool:
    """True when the settings turn browser sign-in on."""
    return not _requirements(settings)


class BrowserSessions:
    """Browser sign-in and cookie sessions over the first configured user pool.

    Raises ``ValueError`` naming the missing settings when ``session_secret`` or
    the OAuth2 URL (``domain`` / ``oauth_url``) is not set.
    """

    def __init__(
        self,
        settings: CognitoSettings,
        *,
        verifier: CognitoVerifier,
        http_client: httpx.AsyncClient | None = None,
        store: StrictStore | None = None,
        revoker: Revoker | None = None,
    ) -> None:
        missing = _requirements(settings)
        if missing:
            raise ValueError("browser sign-in needs " + " and ".join(missing))
        if settings.session_store == "redis" and store is None:
            raise ValueError(
                "session_store (COGNITO_SESSION_STORE) 'redis' needs redis_url (COGNITO_REDIS_URL)"
            )
        assert settings.oauth_base_url is not None
        self.settings = settings
        self.client_id = settings.client_ids[0]
        keys = [secret.get_secret_value() for secret in settings.session_secret]
        cookie_sealer = Sealer(keys, "session-cookie")
        self.codec = SessionCodec(cookie_sealer)
        self.server_side = (
            ServerSideSessions(store, cookie_sealer, Sealer(keys, "session-store"))
            if settings.session_store == "redis" and store is not None
            else None
        )
        self.states = SignInStates(Sealer(keys, "signin-state"))
        self.guest_identities = SessionGuestIdentities(
            Sealer(keys, "guest-identity"), settings.session_max_age_seconds
        )
        """Keeps a visitor's identity-pool guest identity id in a sealed cookie."""
        self.cookie = ChunkedCookie(SESSION_COOKIE)
        self.oauth = OAuthClient(
            settings.oauth_base_url,
            self.client_id,
            settings.client_secrets,
            http_client=http_client,
        )
        self._main_verifier = verifier
        self.verifier = CognitoVerifier(
            settings.model_copy(update={"token_use": "any"}), http_client=http_client
        )
        self.trusted_origins = frozenset(settings.trusted_origins)
        self.max_age = settings.session_max_age_seconds
        self._offers_id_token = settings.token_use == "id"
        self._https_behind_proxy = bool(
            settings.redirect_uri and settings.redirect_uri.startswith("https:")
        )
        shared = SharedRefreshes(store, Sealer(keys, "session-refresh")) if store else None
        self._refresher = SingleFlightRefresher(self._refresh_and_store, shared=shared)
        self.revoker = revoker
        """Publishes session-id revocations to the shared list (set by ``CognitoAuth``);
        without it they are kept in the verifier's list, which the Redis mirror writes
        back at its next merge."""
        self._known_headers: OrderedDict[tuple[bytes, bool], tuple[dict[str, str], Session]] = (
            OrderedDict()
        )
        """Cookie headers seen recently, parsed, with the session they opened (cookie
        store only: a server-side session is read from the store every time)."""

    def __repr__(self) -> str:
        return f"BrowserSessions(client_id={self.client_id!r}, oauth={self.oauth.base_url!r})"

    async def aclose(self) -> None:
        await self.oauth.aclose()
        await self.verifier.aclose()

    # -- transport -------------------------------------------------------------

    def is_secure(self, scope: Scope) -> bool:
        """Whether the browser reaches the app over https (then cookies are
        ``Secure`` and ``__Host-`` prefixed)."""
        return scope.get("scheme") in ("https", "wss") or self._https_behind_proxy

    def transport_allowed(self, scope: Scope) -> bool:
        """Sessions over plain http only on loopback (or Starlette's ``TestClient``
        host, ``testserver``), or with ``allow_insecure_http``. The ``Host`` header is
        the client's word: this catches a deployment without TLS (or without proxy
        headers) loudly; it is no defence against a client."""
        if self.is_secure(scope) or self.settings.allow_insecure_http:
            return True
        server = scope.get("server")
        host = next((v for k, v in scope.get("headers", ()) if k == b"host"), b"")
        hostname = host.decode("latin-1").rsplit(":", 1)[0].strip("[]") if host else None
        return (
            hostname == _TEST_CLIENT_HOST
            or is_loopback_host(hostname)
            or (hostname is None and server is not None and is_loopback_host(server[0]))
        )

    # -- per request -----------------------------------------------------------

    async def load(self, scope: Scope, *, explicit_credentials: bool) -> SessionContext:
        """The request's session: opened, checked, refreshed when about to expire,
        and offered to the dependencies unless the origin check fails."""
        header = _cookie_header(scope)
        secure = self.is_secure(scope)
        known = self._known_headers.get((header, secure)) if header else None
        if known is not None:  # a browser repeating its Cookie header: parsed and opened
            cookies, session = known
        else:
            cookies = cookie_parser(header.decode("latin-1")) if header else {}
            session = None
        context = SessionContext(cookies, secure=secure, explicit=explicit_credentials)
        if explicit_credentials or not cookies:
            return context
        if session is None:
            sealed = self.cookie.read(cookies, secure=secure)
            if sealed is None:
                return context
            try:
                session = await self._open(sealed, context)
            except StoreUnreachableError:
                return self._unavailable(scope, context)
            if session is not None and self.server_side is None and header:
                self._remember_header((header, secure), cookies, session)
        now = time.time()
        if session is None or now >= session.started_at + self.max_age:
            logger.info("session cookie unreadable, ended or past its lifetime: signed out")
            context.session = session
            context.end()
            return context
        if self._sid_revoked(session.sid):
            await self._finish_revoked(session)
            context.session = session
            self._signed_out(context)
            return context
        if session.expires_at - now <= REFRESH_MARGIN_SECONDS:
            current = session
            try:
                session = await self._refresher.refresh(session, wait=session.expires_at <= now)
            except SessionEndedError:
                context.session = session
                context.end()
                return context
            except StoreUnreachableError:
                return self._unavailable(scope, context)
            except ServiceUnavailableError as exc:
                if session.expires_at <= now:
                    context.session, context.error = session, exc
                    return context
            else:
                if self.server_side is None and session is not current:
                    context.store(session)  # the new tokens travel in the cookie
        context.session = session
        if needs_origin_check(scope) and not trusted_request(scope, self.trusted_origins):
            message = rejection_message(scope, self.trusted_origins)
            logger.warning("csrf_rejected: %s", message)
            context.error = CsrfRejectedError(message)
            return context
        context.token = session.id_token if self._offers_id_token else session.access_token
        return context

    @staticmethod
    def _signed_out(context: SessionContext) -> None:
        """A cookie whose session was signed out (a copy kept from before, or a tab on
        another device): cleared, and the request answered 401 ``revoked``."""
        context.end()
        context.error = InvalidTokenError("revoked", "this session was signed out")

    def _unavailable(self, scope: Scope, context: SessionContext) -> SessionContext:
        """The store cannot say whether the session exists: 503, the cookie kept (the
        origin check still comes first, so a forged sign-out is refused as one). A
        session signed out by id is signed out, Redis or not."""
        if context.sid is not None and self._sid_revoked(context.sid):
            self._signed_out(context)
        elif needs_origin_check(scope) and not trusted_request(scope, self.trusted_origins):
            context.error = CsrfRejectedError("the request's origin is not trusted")
        else:
            context.error = SessionsUnavailableError(
                "the session store cannot be reached; try again shortly"
            )
        return context

    def _remember_header(
        self, key: tuple[bytes, bool], cookies: dict[str, str], session: Session
    ) -> None:
        known = self._known_headers
        if len(known) >= KNOWN_HEADERS:
            known.popitem(last=False)  # the oldest
        known[key] = (cookies, session)

    async def _open(self, sealed: str, context: SessionContext) -> Session | None:
        """The cookie's session (server-side: from the store, ``StoreUnreachableError``
        when it cannot be read; ``context.sid`` is set first either way)."""
        if self.server_side is None:
            return self.codec.open(sealed)
        sid = self.server_side.reference(sealed)
        if sid is None:
            return None
        context.sid = sid
        return await self.server_side.load(sid)

    # -- revoked session ids -------------------------------------------------------

    def _revocations(self) -> RevocationList | None:
        revocations = self._main_verifier.revocation
        return revocations if isinstance(revocations, RevocationList) else None

    def _sid_revoked(self, sid: str) -> bool:
        revocations = self._revocations()
        return revocations is not None and revocations.session_id_revoked(sid)

    async def _revoke_sid(self, sid: str) -> bool | None:
        """Put ``sid`` on the revocation list: here at once, shared when possible.
        Raises ``SessionsUnavailableError`` when there is no list to put it on."""
        if self.revoker is not None:
            return await self.revoker.revoke_session_id(sid)
        revocations = self._revocations()
        if revocations is None:
            raise SessionsUnavailableError("the session could not be signed out; try again")
        revocations.merge(SESSION_ID, sid, int(time.time()))
        return None

    async def _finish_revoked(self, session: Session) -> None:
        """A session signed out while its tokens could not be reached (Redis was
        down): revoke its refresh token at Cognito and delete the stored entry."""
        if self.server_side is None:
            return  # a cookie session's sign-out had its tokens: revoked then
        logger.info("a session signed out during a store outage is ended now")
        if session.refresh_token is not None:
            await self.oauth.revoke(session.refresh_token)
        with contextlib.suppress(StoreUnreachableError):  # revoked by id: next time
            await self.server_side.delete(session.sid)

    async def end(self, context: SessionContext) -> SessionEnd | None:
        """Sign the request's browser session out at the session level: its id joins
        the revocation list (here at once, on the shared list now or when Redis
        returns), its stored entry is deleted (server-side sessions; while Redis is
        unreachable, when the session is next seen, with its refresh token revoked
        at Cognito) and the cookie is cleared on the response. Works while the store
        cannot be read (``context.sid``). None when the request has no session.
        Raises ``SessionsUnavailableError`` (the cookie kept) when the session could
        be neither deleted nor revoked. Revoking the tokens (refresh token,
        ``origin_jti``) is the caller's part."""
        session = context.session
        sid = session.sid if session is not None else context.sid
        if sid is None:
            return None
        shared = await self._revoke_sid(sid)
        deleted = True
        if self.server_side is not None:
            try:
                await self.server_side.delete(sid)
            except StoreUnreachableError:
                deleted = False
                logger.warning(
                    "signed out during a Redis outage: session revoked by id; its stored "
                    "entry and refresh token are ended when it is next seen"
                )
        context.end()
        context.ended = None  # deleted (or revoked) here: nothing left for the response
        context.error = None
        return SessionEnd(sid, deleted, shared)

    async def response_cookies(self, context: SessionContext) -> list[bytes]:
        """The ``Set-Cookie`` values the response must carry for ``context`` (and, for
        server-side sessions, an ended session deleted from the store)."""
        headers = list(context.extra_cookies)
        if not context.changed:
            return headers
        secure = context.secure
        present = self.cookie.present(context.cookies, secure=secure)
        session, ended = context.session, context.ended
        if self.server_side is not None and ended is not None and ended != session:
            try:
                await self.server_side.delete(ended.sid)
            except StoreUnreachableError:
                with contextlib.suppress(SessionsUnavailableError):  # logged by the link
                    await self._revoke_sid(ended.sid)  # dead everywhere once written back
        if session is None:
            return headers + self.cookie.clear(present, secure=secure)
        max_age = int(session.started_at + self.max_age - time.time())
        if self.server_side is not None:
            sealed = self.server_side.cookie_value(session)
        else:
            sealed = self.codec.seal(session)
        return headers + self.cookie.write(sealed, secure=secure, max_age=max_age, present=present)

    # -- sign-in ---------------------------------------------------------------

    async def complete_sign_in(self, signin: SignInState, code: str) -> Session:
        """Exchange the code (with the PKCE verifier) and verify both tokens."""
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": signin.redirect_uri,
            "code_verifier": signin.code_verifier,
        }
        if self.settings.login_resource is not None:
            form["resource"] = self.settings.login_resource  # RFC 8707 §2.2
        try:
            answer = await self.oauth.token(form)
        except TokenEndpointError as exc:
            logger.info("sign-in code exchange refused: %s", exc.error or "not a token response")
            raise SignInError(
                "token_exchange_failed", "Cognito did not accept the sign-in; please sign in again"
            ) from None
        id_token = answer.get("id_token")
        if not isinstance(id_token, str):
            raise SignInError("token_exchange_failed", "Cognito's answer has no ID token")
        try:
            access = await self._verified(answer["access_token"], id_token, nonce=signin.nonce)
        except InvalidTokenError as exc:
            logger.warning(
                "sign-in tokens refused: %s", exc.code, extra=telemetry.log_extra(exc.code)
            )
            raise SignInError(exc.code, exc.message, status_code=401) from None
        refresh = answer.get("refresh_token")
        session = Session(
            sid=new_session_id(),
            sub=access.sub,
            id_token=id_token,
            access_token=answer["access_token"],
            refresh_token=refresh if isinstance(refresh, str) else None,
            expires_at=access.exp,
            started_at=int(time.time()),
        )
        if self.server_side is not None:
            try:
                await self.server_side.create(session, self.max_age)
            except StoreUnreachableError:
                raise SessionsUnavailableError(
                    "the session store cannot be reached; sign in again shortly"
                ) from None
        return session

    async def _refresh_and_store(self, session: Session) -> Session:
        """Refresh, then (server-side sessions) write the new tokens only while the
        session is still stored: a refresh finishing after a sign-out ends instead
        of bringing the session back."""
        refreshed = await self._refresh(session)
        if self._sid_revoked(session.sid):
            raise SessionEndedError
        if self.server_side is not None:
            ttl = int(session.started_at + self.max_age - time.time())
            try:
                stored = ttl > 0 and await self.server_side.update(refreshed, ttl)
            except StoreUnreachableError:  # the grant is spent: never retried as unreached
                raise SessionsUnavailableError(
                    "the session store cannot be reached; try again shortly"
                ) from None
            if not stored:
                logger.info("session signed out while its refresh ran: not written back")
                raise SessionEndedError
        return refreshed

    async def _refresh(self, session: Session) -> Session:
        """The ``refresh_token`` grant; a refused grant or bad tokens end the session."""
        if session.refresh_token is None:
            raise SessionEndedError
        try:
            answer = await self.oauth.token(
                {"grant_type": "refresh_token", "refresh_token": session.refresh_token}
            )
        except TokenEndpointError as exc:
            if exc.error is None:
                raise OAuthUnavailableError(
                    "Cognito answered the refresh with something that is not tokens"
                ) from None
            logger.info("session refresh refused (%s): signed out", exc.error)
            raise SessionEndedError from None
        new_id = answer.get("id_token")
        try:
            access = await self._verified(
                answer["access_token"], new_id if isinstance(new_id, str) else None, sub=session.sub
            )
        except InvalidTokenError as exc:
            logger.warning(
                "refreshed tokens refused (%s): signed out",
                exc.code,
                extra=telemetry.log_extra(exc.code),
            )
            raise SessionEndedError from None
        rotated = answer.get("refresh_token")
        return session.refreshed(
            id_token=new_id if isinstance(new_id, str) else session.id_token,
            access_token=answer["access_token"],
            refresh_token=rotated if isinstance(rotated, str) else session.refresh_token,
            expires_at=access.exp,
        )

    async def _verified(
        self,
        access_token: str,
        id_token: str | None,
        *,
        nonce: str | None = None,
        sub: str | None = None,
    ) -> AccessTokenClaims:
        """Verify the access token and (when given) the ID token of one sign-in: the
        sign-in app client, the same ``sub`` (``sub`` too when given) and, for a
        fresh sign-in, the ``nonce``."""
        self.verifier.revocation = self._main_verifier.revocation
        access = await self.verifier.verify(access_token)
        if not isinstance(access, AccessTokenClaims):
            raise InvalidTokenError("wrong_token_use", "the access token is not an access token")
        if access.client_id != self.client_id:
            raise InvalidTokenError("wrong_client", "the access token is for another app client")
        if sub is not None and access.sub != sub:
            raise InvalidTokenError("sub_mismatch", "the tokens name another user")
        if id_token is None:
            return access
        claims = await self.verifier.verify(id_token)
        if not isinstance(claims, IdTokenClaims):
            raise InvalidTokenError("wrong_token_use", "the ID token is not an ID token")
        if not _audience_includes(claims.to_dict().get("aud"), self.client_id):
            raise InvalidTokenError("wrong_audience", "the ID token is for another app client")
        if nonce is not None and not SignInStates.nonce_matches(
            nonce, claims.to_dict().get("nonce")
        ):
            raise InvalidTokenError(
                "nonce_mismatch", "the ID token was not issued for this sign-in"
            )
        if claims.sub != access.sub:
            raise InvalidTokenError("sub_mismatch", "the ID and access tokens name different users")
        return access


def _audience_includes(aud: Any, client_id: str) -> bool:
    return aud == client_id or (isinstance(aud, list) and client_id in aud)


def _cookie_header(scope: Scope) -> bytes:
    """The request's ``Cookie`` header (several, as HTTP/2 may send, joined)."""
    values = [value for name, value in scope.get("headers", ()) if name == b"cookie"]
    return values[0] if len(values) == 1 else b"; ".join(values)


def sessions_for(
    settings: Sequence[CognitoSettings],
    verifier: CognitoVerifier,
    http_client: httpx.AsyncClient | None,
    store: StrictStore | None,
    *,
    revoker: Revoker | None = None,
) -> BrowserSessions | None:
    """Browser sessions when the first pool's settings turn them on, else None."""
    if not sessions_configured(settings[0]):
        return None
    return BrowserSessions(
        settings[0], verifier=verifier, http_client=http_client, store=store, revoker=revoker
    )
