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

    @property
    def sub(self) -> str:
        return sub_for(self.username)
