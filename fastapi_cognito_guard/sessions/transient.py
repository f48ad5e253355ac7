"""The state of one sign-in in flight: ``state``, ``nonce``, the PKCE verifier and
where to return.

Each sign-in gets its own short-lived sealed cookie, named after a digest of its
``state``, so several tabs signing in at once do not overwrite each other's. The
callback opens only the cookie its ``state`` names, removes it, and remembers
the ``state`` as used (a replayed callback fails even with the cookie).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cachetools import TTLCache

from ..sealing import Sealer
from .cookies import cookie_name

__all__ = ["SignInState", "SignInStates", "safe_next", "step_up_params"]

LIFETIME_SECONDS = 600
"""How long a sign-in may take between ``/auth/login`` and the callback."""

MAX_IN_FLIGHT = 5
"""Sign-ins kept per browser; starting another drops the oldest."""

_PREFIX = "fcg_signin_"
_MAX_NEXT = 2048


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce_challenge(verifier: str) -> str:
    """The S256 ``code_challenge`` of a PKCE ``code_verifier`` (RFC 7636)."""
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def safe_next(value: str | None) -> str:
    """``value`` when it is a path on this app, else ``/``.

    Refused: anything not starting with one ``/`` (schemes such as ``https:`` or
    ``javascript:``, scheme-relative ``//host``), backslashes (browsers read
    ``/\\host`` as ``//host``), and control characters or spaces (browsers drop tabs
    and newlines, turning ``/\\t/host`` into ``//host``).
    """
    if (
        not value
        or len(value) > _MAX_NEXT
        or not value.startswith("/")
        or value.startswith("//")
        or "\\" in value
        or any(ord(char) <= 0x20 or ord(char) == 0x7F for char in value)
    ):
        return "/"
    return value


_MAX_AGE_LIMIT = 10 * 365 * 24 * 3600
_ACR_VALUE = re.compile(r"[!#-\[\]-~]{1,256}")  # visible ASCII but space, quote, backslash
_MAX_ACR_VALUES = 8


def step_up_params(query: Mapping[str, str]) -> dict[str, str]:
    """The authorize parameters a step-up asked ``/auth/login`` for: ``max_age`` (whole
    seconds; ``0`` also sends ``prompt=login``) and ``acr_values`` (space separated).
    Values that are not well formed are dropped, never forwarded."""
    found: dict[str, str] = {}
    max_age = query.get("max_age", "")
    if max_age.isascii() and max_age.isdigit() and int(max_age) <= _MAX_AGE_LIMIT:
        found["max_age"] = str(int(max_age))
        if int(max_age) == 0:
            found["prompt"] = "login"
    values = query.get("acr_values", "").split(" ")
    if 0 < len(values) <= _MAX_ACR_VALUES and all(_ACR_VALUE.fullmatch(v) for v in values):
        found["acr_values"] = " ".join(values)
    return found


@dataclass(frozen=True, slots=True)
class SignInState:
    """What the callback needs to finish one sign-in."""

    state: str
    nonce: str
    code_verifier: str
    next_path: str
    redirect_uri: str
    created_at: int

    @property
    def code_challenge(self) -> str:
        return pkce_challenge(self.code_verifier)


class SignInStates:
    """Creates, stores (in sealed cookies) and consumes sign-in states."""

    def __init__(self, sealer: Sealer) -> None:
        self._sealer = sealer
        self._used: TTLCache[str, bool] = TTLCache(maxsize=100_000, ttl=LIFETIME_SECONDS)

    @staticmethod
    def cookie_name(state: str, *, secure: bool) -> str:
        digest = hashlib.sha256(state.encode("utf-8", "replace")).hexdigest()[:16]
        return cookie_name(_PREFIX + digest, secure=secure)

    @staticmethod
    def in_flight(cookies: Mapping[str, str], *, secure: bool) -> list[str]:
        """Names of the sign-in cookies the request carried."""
        prefix = cookie_name(_PREFIX, secure=secure)
        return [name for name in cookies if name.startswith(prefix)]

    def start(self, next_path: str, redirect_uri: str) -> tuple[SignInState, str]:
        """A fresh state and its cookie value: the time it was made (in clear, used only
        to drop the oldest sign-ins), a dot, and the sealed state."""
        state = SignInState(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(48),
            next_path=next_path,
            redirect_uri=redirect_uri,
            created_at=int(time.time()),
        )
        payload = {
            "n": state.nonce,
            "v": state.code_verifier,
            "next": state.next_path,
            "r": state.redirect_uri,
            "t": state.created_at,
        }
        sealed = self._sealer.seal(
            json.dumps(payload, separators=(",", ":")).encode(), state.state.encode()
        )
        return state, f"{state.created_at}.{sealed}"

    @classmethod
    def to_drop(cls, cookies: Mapping[str, str], *, secure: bool) -> list[str]:
        """Sign-in cookies to remove so that, with one more, at most ``MAX_IN_FLIGHT``
        remain: the oldest (their values start with the time they were made)."""
        names = cls.in_flight(cookies, secure=secure)
        if len(names) < MAX_IN_FLIGHT:
            return []
        names.sort(key=lambda name: _made_at(cookies[name]))
        return names[: len(names) - MAX_IN_FLIGHT + 1]

    def consume(
        self, state: str, cookies: Mapping[str, str], *, secure: bool
    ) -> SignInState | None:
        """The sign-in ``state`` names, once: None when its cookie is missing,
        tampered, expired or bound to another state, or the state was used before."""
        if not state or len(state) > 128 or state in self._used:
            return None
        value = cookies.get(self.cookie_name(state, secure=secure))
        if value is None:
            return None
        data = self._sealer.open(value.partition(".")[2], state.encode())
        if data is None:
            return None
        try:
            payload = json.loads(data)
            signin = SignInState(
                state=state,
                nonce=str(payload["n"]),
                code_verifier=str(payload["v"]),
                next_path=safe_next(str(payload["next"])),
                redirect_uri=str(payload["r"]),
                created_at=int(payload["t"]),
            )
        except (ValueError, KeyError, TypeError):
            return None
        if time.time() - signin.created_at > LIFETIME_SECONDS:
            return None
        self._used[state] = True
        return signin

    @staticmethod
    def nonce_matches(expected: str, actual: object) -> bool:
        return isinstance(actual, str) and hmac.compare_digest(expected, actual)


def _made_at(value: str) -> int:
    made, _, _ = value.partition(".")
    return int(made) if made.isdigit() and len(made) < 16 else 0
