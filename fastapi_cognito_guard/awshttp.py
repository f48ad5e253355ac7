"""One POST to an AWS endpoint, bounded in time and size, never redirected.

The identity pool's JSON 1.1 calls, STS's Query API, the user-pool API and
Cognito's OAuth2 endpoints all carry a token (or a client secret) in the request,
so a redirect must never be followed (a ``307`` would resend it to wherever the
answer points), whatever the caller's HTTP client is configured to do. Every call
has a whole-call deadline (connect, send and the whole answer) and reads at most
``MAX_ANSWER_BYTES``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

__all__ = ["MAX_ANSWER_BYTES", "Answer", "AnswerTooLarge", "CallFailed", "post", "post_sync"]

MAX_ANSWER_BYTES = 64 * 1024
"""An answer larger than this is a failed call."""


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
    """POST ``content`` to ``url``; raises ``CallFailed`` when no usable answer came."""
    try:
        return await asyncio.wait_for(_post(client, url, content, headers), timeout)
    except asyncio.TimeoutError:
        raise CallFailed("timed out") from None
    except httpx.HTTPError as exc:
        raise CallFailed(type(exc).__name__) from None


async def _post(
    client: httpx.AsyncClient, url: str, content: str | bytes, headers: Mapping[str, str]
) -> Answer:
    request = client.build_request("POST", url, content=content, headers=dict(headers))
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_ANSWER_BYTES:
                raise AnswerTooLarge(f"answer larger than {MAX_ANSWER_BYTES} bytes")
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers, bytes(body))


def post_sync(
    client: httpx.Client,
    url: str,
    *,
    content: str | bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Answer:
    """``post`` for synchronous callers: the same size limit and no redirects; the
    deadline is httpx's per-phase ``timeout`` (a thread cannot be cancelled midway)."""
    request = client.build_request(
        "POST", url, content=content, headers=dict(headers), timeout=timeout
    )
    try:
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > MAX_ANSWER_BYTES:
                    raise AnswerTooLarge(f"answer larger than {MAX_ANSWER_BYTES} bytes")
        finally:
            response.close()
    except httpx.HTTPError as exc:
        raise CallFailed(type(exc).__name__) from None
    return Answer(response.status_code, response.headers, bytes(body))
