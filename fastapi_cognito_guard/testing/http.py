"""HTTP as the local issuer's server and hosted UI see it: one request, one answer,
and the faults a test can make an endpoint answer with instead."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Fault", "Reply", "Request"]


@dataclass(frozen=True)
class Request:
    """One HTTP request, as the server received it."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes = b""


@dataclass(frozen=True)
class Reply:
    """One HTTP answer."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0

    @classmethod
    def json(cls, status: int, document: Any, **headers: str) -> Reply:
        return cls(
            status,
            json.dumps(document).encode(),
            {"Content-Type": "application/json;charset=UTF-8", "Cache-Control": "no-store"}
            | headers,
        )

    @classmethod
    def page(cls, status: int, title: str, content: str) -> Reply:
        document = (
            "<!doctype html><html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title></head><body>{content}</body></html>"
        )
        return cls(status, document.encode(), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str) -> Reply:
        return cls(302, b"", {"Location": location, "Cache-Control": "no-store"})


@dataclass(frozen=True)
class Fault:
    """A misbehaviour of one endpoint, set with ``LocalIssuer.fail()``."""

    status: int | None = None
    """Answer with this status and ``body`` instead of the real answer (None: real answer)."""
    body: bytes = b""
    content_type: str = "text/plain"
    delay: float = 0.0
    """Seconds to wait before answering (a hang, when longer than the client's timeout)."""
