"""How an app client proves itself to Cognito's token endpoint, with one or two secrets.

HTTP Basic (``client_secret_basic``) with the client id and secret each
form-urlencoded before base64, as RFC 6749 §2.3.1 asks: a secret with ``+``, ``/``,
``=`` or ``%`` reaches a server that decodes per the RFC unchanged (encoded raw, a
``+`` would come back as a space).

While Cognito rotates an app client's secret the client holds two. Every call uses
the one that worked last; answered ``invalid_client`` (Cognito: HTTP 400) it is
retried once with the other, which, when accepted, is tried first from then on. The
secrets are kept as ``SecretStr`` and never appear in a repr, a log line or an error.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator, Sequence
from urllib.parse import quote_plus, unquote_plus

from pydantic import SecretStr

__all__ = ["ClientSecrets", "basic_authorization", "is_invalid_client", "parse_basic_authorization"]


def basic_authorization(client_id: str, secret: str) -> str:
    """RFC 6749 §2.3.1's ``Authorization``: ``Basic base64(urlenc(id) ":" urlenc(secret))``."""
    pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
    return "Basic " + base64.b64encode(pair).decode("ascii")


def parse_basic_authorization(value: str) -> tuple[str, str] | None:
    """``(client_id, secret)`` of an RFC 6749 §2.3.1 ``Basic`` credential (after the
    scheme), each form-urldecoded; None when it is not valid base64 of UTF-8 with a
    colon. A secret sent without the encoding decodes to something else (``+`` becomes a
    space), as it does at a server that follows the RFC."""
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            return None
        return (
            unquote_plus(client_id, errors="strict"),
            unquote_plus(secret, errors="strict"),
        )
    except (binascii.Error, UnicodeDecodeError):
        return None


def is_invalid_client(status: int, body: bytes | object) -> bool:
    """Whether an answer refuses the client's credentials (``invalid_client``; HTTP 400 as
    Cognito sends it, or 401 as RFC 6749 §5.2 allows)."""
    if status not in (400, 401):
        return False
    if isinstance(body, (bytes, str)):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):
            return False
    return isinstance(body, dict) and body.get("error") == "invalid_client"


class ClientSecrets:
    """An app client's secrets (none for a public client), in the order to try them."""

    def __init__(self, client_id: str, secrets: Sequence[SecretStr | str] = ()) -> None:
        self.client_id = client_id
        self._secrets = [s if isinstance(s, SecretStr) else SecretStr(s) for s in secrets]
        self._first = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ClientSecrets(client_id={self.client_id!r}, secrets={len(self._secrets)})"

    def attempts(self) -> Iterator[tuple[int, dict[str, str]]]:
        """``(index, headers)`` for each try: the preferred secret, then the other. A public
        client gets one try without ``Authorization``."""
        if not self._secrets:
            yield -1, {}
            return
        first = self._first
        order = [first] + [i for i in range(len(self._secrets)) if i != first]
        for index in order:
            secret = self._secrets[index].get_secret_value()
            yield index, {"Authorization": basic_authorization(self.client_id, secret)}

    def settled(self, index: int, status: int, body: bytes | object) -> bool:
        """Whether an answer to the try with the secret at ``index`` settles the call:
        anything but ``invalid_client`` does (and that secret is tried first from now
        on); ``invalid_client`` means try the next secret."""
        if is_invalid_client(status, body):
            return False
        self.accepted(index)
        return True

    def accepted(self, index: int) -> None:
        """The secret at ``index`` was accepted: it is tried first from now on."""
        if index >= 0:
            with self._lock:
                self._first = index
