"""Answers read within a size cap counted *after* decompression, as bytes arrive.

httpx inflates each network chunk whole, so a few kilobytes of gzip could be held
as megabytes before a size check on the decoded body ran. ``read_capped`` reads the
raw bytes and inflates them itself, never more than one byte past the cap at a
time. Only ``gzip`` and ``deflate`` are asked for (``ACCEPT_ENCODING``); any other
encoding is a failed call. Every answer the library reads goes through it: the
AWS and OAuth2 POSTs (``awshttp``), the JWKS download and the CLI's.
"""

from __future__ import annotations

import zlib

import httpx

__all__ = ["ACCEPT_ENCODING", "BodyTooLarge", "UnreadableBody", "read_capped", "read_capped_sync"]

ACCEPT_ENCODING = "gzip, deflate"
"""The encodings ``read_capped`` can inflate within its cap."""

_ZLIB_ANY_HEADER = 32 + zlib.MAX_WBITS
"""``wbits`` that accept a gzip or a zlib header (``deflate`` as sent in practice)."""


class UnreadableBody(Exception):
    """The body cannot be read within the cap: an encoding that cannot be bounded, a
    corrupt one, or too many bytes. The message names the reason."""


class BodyTooLarge(UnreadableBody):
    """The body, decompressed, passes the cap."""


async def read_capped(response: httpx.Response, limit: int) -> bytes:
    """The body of a streamed ``response``, decompressed, at most ``limit`` bytes.

    Reads the raw bytes and inflates them here, never more than one byte past
    ``limit`` at a time: raises ``BodyTooLarge`` as soon as the decompressed body
    passes ``limit``, and ``UnreadableBody`` for an encoding other than ``gzip`` or
    ``deflate`` (or a corrupt one).
    """
    if response.is_stream_consumed:  # built in memory (a mock transport): decoded already
        return _within(response.content, limit)
    body = _Body(response, limit)
    async for raw in response.aiter_raw():
        body.feed(raw)
    return body.finish()


def read_capped_sync(response: httpx.Response, limit: int) -> bytes:
    """``read_capped`` for a synchronous client's streamed ``response``."""
    if response.is_stream_consumed:
        return _within(response.content, limit)
    body = _Body(response, limit)
    for raw in response.iter_raw():
        body.feed(raw)
    return body.finish()


class _Body:
    """One answer's body, inflated as its raw bytes arrive, within ``limit``."""

    def __init__(self, response: httpx.Response, limit: int) -> None:
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding in ("", "identity"):
            self._inflater = None
        elif encoding in ("gzip", "x-gzip", "deflate"):
            self._inflater = zlib.decompressobj(_ZLIB_ANY_HEADER)
        else:
            raise UnreadableBody(f"unsupported content-encoding {encoding[:20]!r}")
        self._encoding = encoding
        self._limit = limit
        self._body = bytearray()

    def feed(self, raw: bytes) -> None:
        """Add raw bytes; ``BodyTooLarge`` as soon as the inflated body passes the cap."""
        body, inflater, pending = self._body, self._inflater, raw
        try:
            while pending:
                room = self._limit + 1 - len(body)
                if inflater is None:
                    body += pending[:room]
                    pending = pending[room:]
                else:
                    body += inflater.decompress(pending, room)
                    pending = inflater.unconsumed_tail
                self._check()
        except zlib.error:
            raise UnreadableBody(f"corrupt {self._encoding} body") from None

    def finish(self) -> bytes:
        """The whole body, within the cap."""
        if self._inflater is not None:
            try:
                self._body += self._inflater.flush()  # input consumed: what zlib buffered
            except zlib.error:
                raise UnreadableBody(f"corrupt {self._encoding} body") from None
        return _within(bytes(self._body), self._limit)

    def _check(self) -> None:
        _within(self._body, self._limit)


def _within(body: bytes | bytearray, limit: int) -> bytes:
    if len(body) > limit:
        raise BodyTooLarge(f"answer larger than {limit} bytes")
    return bytes(body)
