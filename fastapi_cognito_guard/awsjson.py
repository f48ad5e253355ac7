"""Unsigned AWS JSON 1.1 calls: Cognito's user-pool APIs that take an access token.

``GetUser`` and ``GlobalSignOut`` are authorized by the access token in the body,
not by SigV4, so a plain HTTPS POST with ``X-Amz-Target`` is the whole protocol.
Every call has a whole-call deadline, never follows a redirect and reads at most
``MAX_ANSWER_BYTES`` of the answer.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any

import httpx

__all__ = ["MAX_ANSWER_BYTES", "AwsAnswer", "CallFailed", "call"]

MAX_ANSWER_BYTES = 64 * 1024
"""An answer larger than this is a failed call."""


class CallFailed(Exception):
    """The call produced no answer (network error, timeout, oversized answer); the
    message names the reason and never the request body."""


@dataclass(frozen=True)
class AwsAnswer:
    """What the service answered: the HTTP status, its error type (``""`` on success)
    and the JSON object it sent (None when the body was not one)."""

    status: int
    error_type: str
    body: dict[str, Any] | None
    retry_after: float

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.body is not None


async def call(
    client: httpx.AsyncClient, url: str, target: str, body: dict[str, Any], timeout: float
) -> AwsAnswer:
    """POST ``body`` to ``url`` as ``X-Amz-Target: target``; raises ``CallFailed``."""
    try:
        return await asyncio.wait_for(_post(client, url, target, body), timeout)
    except asyncio.TimeoutError:
        raise CallFailed("timed out") from None
    except httpx.HTTPError as exc:
        raise CallFailed(type(exc).__name__) from None


async def _post(
    client: httpx.AsyncClient, url: str, target: str, body: dict[str, Any]
) -> AwsAnswer:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target}
    request = client.build_request("POST", url, content=json.dumps(body), headers=headers)
    response = await client.send(request, stream=True, follow_redirects=False)
    try:
        content = bytearray()
        async for chunk in response.aiter_bytes():
            content += chunk
            if len(content) > MAX_ANSWER_BYTES:
                raise CallFailed(f"answer larger than {MAX_ANSWER_BYTES} bytes")
    finally:
        await response.aclose()
    try:
        parsed = json.loads(content)  # any content type: the body decides
    except (ValueError, RecursionError):
        parsed = None
    answer = parsed if isinstance(parsed, dict) else None
    retry = response.headers.get("retry-after", "")
    return AwsAnswer(
        status=response.status_code,
        error_type=_error_type(response, answer),
        body=answer,
        retry_after=float(retry) if retry.isdigit() else 1.0,
    )


def _error_type(response: httpx.Response, answer: dict[str, Any] | None) -> str:
    """The short AWS error name (``NotAuthorizedException``), or ``""``."""
    kind = ""
    if answer is not None:
        kind = str(answer.get("__type") or answer.get("code") or "")
    kind = kind or response.headers.get("x-amzn-errortype", "")
    return kind.rsplit("#", 1)[-1].split(":", 1)[0]
