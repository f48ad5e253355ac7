"""``AwsCredentials``: temporary AWS keys, and their byte form for shared caches.

The secret key and session token never appear in reprs; the byte form is only
ever stored sealed (``sealing.Sealer``) outside the process.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone

__all__ = ["AwsCredentials"]


@dataclass(frozen=True)
class AwsCredentials:
    """Temporary AWS credentials for one identity; the secret parts stay out of reprs.

    ``role_arn`` is the IAM role the credentials are for when it is known (a role
    asked for, or any basic-flow role); None when the identity pool chose it.
    """

    access_key_id: str
    secret_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime
    identity_id: str
    role_arn: str | None = None

    def boto3_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(...)`` / ``boto3.Session(...)``."""
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_key,
            "aws_session_token": self.session_token,
        }

    def to_bytes(self) -> bytes:
        """The credentials as JSON bytes, secrets included: seal before storing."""
        return json.dumps(
            [
                self.access_key_id,
                self.secret_key,
                self.session_token,
                self.expiration.timestamp(),
                self.identity_id,
                self.role_arn,
            ]
        ).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> AwsCredentials | None:
        """Credentials from ``to_bytes`` output, or None when ``data`` is not that."""
        try:
            access_key_id, secret_key, session_token, expires, identity_id, role = json.loads(data)
            values = (access_key_id, secret_key, session_token, identity_id)
            if not all(isinstance(value, str) for value in values):
                return None
            if role is not None and not isinstance(role, str):
                return None
            expiration = datetime.fromtimestamp(float(expires), tz=timezone.utc)
        except (ValueError, TypeError, OverflowError):
            return None
        return cls(access_key_id, secret_key, session_token, expiration, identity_id, role)
