"""One POST to an AWS endpoint, bounded in time and size, never redirected.

The identity pool's JSON 1.1 calls, STS's Query API, the user-pool API and
Cognito's OAuth2 endpoints all carry a token (or a client secret) in the request,
so a redirect must never be followed (a ``307`` would resend it to wherever the
answer points), whatever the caller's HTTP client is configured to do. Every call
has a whole-call deadline (connect, send and the whole answer) and reads at most
``MAX_ANSWER_BYTES``.

The cap counts the bytes *after* decompression, as they arrive (``read_capped``,
which the JWKS download shares): httpx would inflate each network chunk whole, so
a few kilobytes of gzip could be held as megabytes before any size check ran.
Only ``gzip`` and ``deflate`` are asked for, and inflated at most one byte past the
cap; any other encoding is a failed call.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = [
    "ACCEPT_ENCODING",
    "MAX_ANSWER_BYTES",
    "Answer",
    "AnswerTooLarge",
    "CallFailed",
    "post",
    "read_capped",
]

MAX_ANSWER_BYTES = 64 * 1024
"""An answer larger than this (decompressed) is a failed call."""

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings ``read_capped`` can inflate within its cap."""

_ZLIB_ANY_HEADER = 32 + zlib.MAX_WBITS
"""``wbits`` that accept a gzip or a zlib header (``deflate`` as sent in practice)."""


class CallFailed(Exception):
    """No answer: a network error, the deadline, or an oversized body. The message
    names the reason, never the request."""


class AnswerTooLarge(CallFailed):
    """The endpoint answered, but with more than ``MAX_ANSWER_BYTES``."""


@dataclass(frozen=True)
class Answer:
    """What the endpoint answered (its body already read, within the size limit)."""

    status: int
    headers: httpx.Headers
    content: bytes

    @property
    def retry_after(self) -> float:
        """The ``Retry-After`` seconds the endpoint asked for, else 1."""
        value = self.headers.get("retry-after", "")
        return float(value) if value.isdigit() else 1.0


async def post(
    client: httpx.AsyncClient,
    url: str,
    *,
    content: str | bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Answer:
    """POST ``content`` to ``url``; raises ``CallFailed`` when no usable answer came
    (a closed ``client`` too: the caller's own client may have been closed)."""
    if client.is_closed:
        raise CallFailed("the HTTP client is closed")
    try:
        return await asyncio.wait_for(_post(client, url, content, headers), timeout)
    except asyncio.TimeoutError:
        raise CallFailed("timed out") from None
    except httpx.HTTPError as exc:
        raise CallFailed(type(exc).__name__) from None


async def _post(
    client: httpx.AsyncClient, url: str, content: str | bytes, headers: Mapping[str, str]
) -> Answer:
    request = client.build_request(
        "POST", url, content=content, headers={"Accept-Encoding": ACCEPT_ENCODING, **headers}
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        body = await read_capped(response, MAX_ANSWER_BYTES)
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers, body)


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed ``response``, decompressed, at most ``limit`` bytes.

    Reads the raw bytes and inflates them here, never more than one byte past
    ``limit`` at a time: raises ``AnswerTooLarge`` as soon as the decompressed body
    passes ``limit``, and ``CallFailed`` for an encoding other than ``gzip`` or
    ``deflate`` (or a corrupt one).
    """
    if response.is_stream_consumed:  # built in memory (a mock transport): decoded already
        return _capped(response.content, limit)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        inflater = None
    elif encoding in ("gzip", "x-gzip", "deflate"):
        inflater = zlib.decompressobj(_ZLIB_ANY_HEADER)
    else:
        raise CallFailed(f"unsupported content-encoding {encoding[:20]!r}")
    body = bytearray()
    try:
        async for raw in response.aiter_raw():
            pending = raw
            while pending:
                room = limit + 1 - len(body)
                if inflater is None:
                    body += pending[:room]
                    pending = pending[room:]
                else:
                    body += inflater.decompress(pending, room)
                    pending = inflater.unconsumed_tail
                if len(body) > limit:
                    raise AnswerTooLarge(f"answer larger than {limit} bytes")
        if inflater is not None:
            body += inflater.flush()  # input all consumed: at most what zlib buffered
    except zlib.error:
        raise CallFailed(f"corrupt {encoding} body") from None
    return _capped(bytes(body), limit)


def _capped(body: bytes, limit: int) -> bytes:
    if len(body) > limit:
        raise AnswerTooLarge(f"answer larger than {limit} bytes")
    return body
