"""``LocalUser``: who signs in at the local hosted UI, and the stable ``sub`` of a username."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["LocalUser", "sub_for"]


def sub_for(username: str) -> str:
    """The stable ``sub`` of a username (a UUID, like Cognito's)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, username))


@dataclass(frozen=True)
class LocalUser:
    """A user of the local hosted UI: what ``login_as`` and the sign-in page produce."""

    username: str
    groups: Sequence[str] = ()
    email: str | None = None
    custom: Mapping[str, str] = field(default_factory=dict)
    """Custom attributes without the ``custom:`` prefix (``{"tier": "gold"}``): they go
    into ID tokens (and access tokens only with ``custom_in_access_tokens``)."""
    amr: Sequence[str] = ("pwd",)
    """How this user authenticates (the tokens' ``amr``): ``("pwd", "mfa")`` with a second
    factor."""
    acr: str | None = None
    """The authentication level the tokens carry when the sign-in asks for none
    (``acr_values`` asks: the local UI reaches the first value asked)."""
    auth_time: int | None = None
    """With ``login_as``: when this user last authenticated at the hosted UI (an existing
    session, reused as the tokens' ``auth_time``); None signs in afresh. ``max_age`` or
    ``prompt=login`` on the authorize request make an older one authenticate again."""

    @property
    def sub(self) -> str:
        return sub_for(self.username)
