"""One POST to an AWS endpoint, bounded in time and size, never redirected.

The identity pool's JSON 1.1 calls, STS's Query API, the user-pool API and
Cognito's OAuth2 endpoints all carry a token (or a client secret) in the request,
so a redirect must never be followed (a ``307`` would resend it to wherever the
answer points), whatever the caller's HTTP client is configured to do. Every call
has a whole-call deadline (connect, send and the whole answer) and reads at most
``MAX_ANSWER_BYTES``, counted after decompression as the bytes arrive (``capped``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

from . import telemetry
from .capped import ACCEPT_ENCODING, BodyTooLarge, UnreadableBody, read_capped, read_capped_sync

__all__ = [
    "MAX_ANSWER_BYTES",
    "Answer",
    "AnswerTooLarge",
    "CallFailed",
    "CallTimedOut",
    "post",
    "post_sync",
]

MAX_ANSWER_BYTES = 64 * 1024
"""An answer larger than this is a failed call."""


class CallFailed(Exception):
    """No answer: a network error, the deadline, or an oversized body. The message
    names the reason, never the request; ``outcome`` names it for telemetry."""

    outcome = "unreachable"


class CallTimedOut(CallFailed):
    """The whole-call deadline passed."""

    outcome = "timeout"


class AnswerTooLarge(CallFailed):
    """The endpoint answered, but with more than ``MAX_ANSWER_BYTES``."""

    outcome = "too_large"


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
    started = telemetry.clock()
    try:
        answer = await _bounded_post(client, url, content, headers, timeout)
    except CallFailed as exc:
        telemetry.aws_called(started, url, headers, content, exc.outcome)
        raise
    telemetry.aws_called(started, url, headers, content, telemetry.aws_outcome(answer.status))
    return answer


async def _bounded_post(
    client: httpx.AsyncClient,
    url: str,
    content: str | bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Answer:
    try:
        return await asyncio.wait_for(_post(client, url, content, headers), timeout)
    except asyncio.TimeoutError:
        raise CallTimedOut("timed out") from None
    except httpx.HTTPError as exc:
        raise CallFailed(type(exc).__name__) from None


async def _post(
    client: httpx.AsyncClient, url: str, content: str | bytes, headers: Mapping[str, str]
) -> Answer:
    if client.is_closed:  # the caller's own client may have been closed
        raise CallFailed("the HTTP client is closed")
    request = client.build_request(
        "POST", url, content=content, headers={"Accept-Encoding": ACCEPT_ENCODING, **headers}
    )
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        with _failed_calls():
            body = await read_capped(response, MAX_ANSWER_BYTES)
    finally:
        await response.aclose()
    return Answer(response.status_code, response.headers, body)


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
    started = telemetry.clock()
    try:
        answer = _bounded_post_sync(client, url, content, headers, timeout)
    except CallFailed as exc:
        telemetry.aws_called(started, url, headers, content, exc.outcome)
        raise
    telemetry.aws_called(started, url, headers, content, telemetry.aws_outcome(answer.status))
    return answer


def _bounded_post_sync(
    client: httpx.Client,
    url: str,
    content: str | bytes,
    headers: Mapping[str, str],
    timeout: float,
) -> Answer:
    if client.is_closed:
        raise CallFailed("the HTTP client is closed")
    request = client.build_request(
        "POST",
        url,
        content=content,
        headers={"Accept-Encoding": ACCEPT_ENCODING, **headers},
        timeout=timeout,
    )
    try:
        response = client.send(request, stream=True, follow_redirects=False)
        try:
            with _failed_calls():
                body = read_capped_sync(response, MAX_ANSWER_BYTES)
        finally:
            response.close()
    except httpx.TimeoutException:
        raise CallTimedOut("timed out") from None
    except httpx.HTTPError as exc:
        raise CallFailed(type(exc).__name__) from None
    return Answer(response.status_code, response.headers, body)


@contextmanager
def _failed_calls() -> Iterator[None]:
    """A body that cannot be read within the cap is a failed call."""
    try:
        yield
    except BodyTooLarge as exc:
        raise AnswerTooLarge(str(exc)) from None
    except UnreadableBody as exc:
        raise CallFailed(str(exc)) from None
