"""Dev mode's token minting and its ``Host`` rule, shared by the example app and ``dev-issuer``.

``GET /dev/token`` mints a token for anyone who reaches it, so both places that serve
it (the example app in dev mode and ``python -m fastapi_cognito_guard dev-issuer``)
take the same documented parameters (:data:`DEV_TOKEN_PARAMETERS`) and answer only
requests whose ``Host`` names loopback (:func:`is_loopback_authority`): a DNS-rebinding
page reaches a loopback port under its own name, and must not mint tokens there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol
from urllib.parse import urlsplit

from ..settings import is_loopback_host

__all__ = [
    "DEV_TOKEN_DESCRIPTION",
    "DEV_TOKEN_PARAMETERS",
    "MAX_EXPIRES_IN",
    "DevTokenError",
    "is_loopback_authority",
    "mint_dev_token",
]

MAX_EXPIRES_IN = 86400
"""The longest lifetime ``/dev/token`` mints, in seconds (Cognito's limit for access
and ID tokens: one day)."""

DEFAULT_EXPIRES_IN = 3600

DEV_TOKEN_PARAMETERS: Mapping[str, str] = {
    "username": "the user's name (`username` / `cognito:username`; `sub` is derived "
    "from it); default `alice`",
    "groups": "Cognito groups (`cognito:groups`), comma- or space-separated; default none",
    "scopes": "OAuth scopes of an access token, comma- or space-separated, added to "
    "`aws.cognito.signin.user.admin`; ignored for ID tokens",
    "token_use": "`access` (default) or `id` (an ID token with `email` `<username>@example.com`)",
    "expires_in": f"the token's lifetime in seconds, 1 to {MAX_EXPIRES_IN}; default "
    f"{DEFAULT_EXPIRES_IN}",
}
"""Every parameter ``GET /dev/token`` takes, with what it does."""

DEV_TOKEN_DESCRIPTION = (
    "Mint a token signed by the local dev issuer (dev mode only; answers only a "
    "loopback `Host`). The answer is `{token, token_type, token_use, expires_in}`.\n\n"
    + "\n".join(f"- `{name}`: {text}" for name, text in DEV_TOKEN_PARAMETERS.items())
)
"""The endpoint's description (OpenAPI, ``--help``-like text)."""


class Minter(Protocol):
    """What minting needs of a ``LocalIssuer``."""

    def access_token(self, username: str = ..., /, **claims: Any) -> str: ...
    def id_token(self, username: str = ..., /, **claims: Any) -> str: ...


class DevTokenError(ValueError):
    """A ``/dev/token`` parameter out of its documented range (a 400)."""


def _names(text: str) -> list[str]:
    return [part for part in text.replace(",", " ").split() if part]


def mint_dev_token(
    issuer: Minter,
    *,
    username: str = "alice",
    groups: str = "",
    scopes: str = "",
    token_use: str = "access",  # noqa: S107  # a token type, not a secret
    expires_in: int | str = DEFAULT_EXPIRES_IN,
) -> dict[str, Any]:
    """The ``/dev/token`` answer for these parameters; ``DevTokenError`` naming the
    parameter when one is out of range."""
    try:
        lifetime = int(expires_in)
    except ValueError:
        raise DevTokenError("expires_in must be a whole number of seconds") from None
    if not 1 <= lifetime <= MAX_EXPIRES_IN:
        raise DevTokenError(f"expires_in must be between 1 and {MAX_EXPIRES_IN} seconds")
    username = username.strip() or "alice"
    if token_use == "id":
        token = issuer.id_token(
            username, email=f"{username}@example.com", groups=_names(groups), expires_in=lifetime
        )
    elif token_use == "access":
        token = issuer.access_token(
            username,
            groups=_names(groups),
            scopes=["aws.cognito.signin.user.admin", *_names(scopes)],
            expires_in=lifetime,
        )
    else:
        raise DevTokenError("token_use must be access or id")
    return {"token": token, "token_type": "Bearer", "token_use": token_use, "expires_in": lifetime}


def is_loopback_authority(host: str | None, *also: str | None) -> bool:
    """Whether a ``Host`` header names loopback (``127.0.0.1``, ``localhost``, ``[::1]``,
    with or without a port), or one of the host names in ``also``."""
    if not host or any(char in host for char in "/?#@\\ "):
        return False
    try:
        name = urlsplit(f"//{host}").hostname
    except ValueError:  # a malformed port or bracket
        return False
    return is_loopback_host(name) or (name is not None and name in also)
