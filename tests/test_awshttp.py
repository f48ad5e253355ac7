"""``awshttp.post``: the one bounded, never-redirected POST of every AWS and OAuth2
call, against a real loopback server: the size cap counts decompressed bytes as
they arrive, and a closed caller's client is a failed call, not a crash."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import httpx
import pytest

from fastapi_cognito_guard.awshttp import (
    MAX_ANSWER_BYTES,
    AnswerTooLarge,
    CallFailed,
    post,
    post_sync,
)
from tests.loopback_server import LoopbackHandler, LoopbackServer, gzip_bomb

BODY = b'{"ok": true}'


class _Handler(LoopbackHandler["GzipServer"]):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        owner = self.owner
        self.send(200, owner.packed, headers={"Content-Encoding": owner.encoding})
        self.close_connection = True


class GzipServer(LoopbackServer):
    """Answers every POST with ``BODY`` padded to ``size`` bytes, gzip-compressed."""

    handler_class = _Handler

    def __init__(self) -> None:
        super().__init__()
        self.encoding = "gzip"
        self.packed = b""

    def inflating_to(self, size: int) -> None:
        self.packed = gzip_bomb(BODY, size)  # built before any measurement


@pytest.fixture
def server() -> Iterator[GzipServer]:
    with GzipServer() as running:
        yield running


async def call(server: GzipServer) -> bytes:
    async with httpx.AsyncClient() as client:
        answer = await post(client, server.base_url, content="{}", headers={}, timeout=5)
    return answer.content


async def test_a_gzip_answer_inflating_to_exactly_the_cap_is_read(server: GzipServer) -> None:
    server.inflating_to(MAX_ANSWER_BYTES)

    content = await call(server)

    assert len(content) == MAX_ANSWER_BYTES
    assert content.endswith(BODY)


async def test_a_gzip_answer_one_byte_over_the_cap_once_inflated_fails(
    server: GzipServer,
) -> None:
    server.inflating_to(MAX_ANSWER_BYTES + 1)

    with pytest.raises(AnswerTooLarge):
        await call(server)


async def test_a_gzip_bomb_is_refused_before_it_is_held_in_memory(server: GzipServer) -> None:
    server.inflating_to(100 * 1024 * 1024)  # 100 MB inflated, ~100 KB on the wire
    tracemalloc.start()
    try:
        with pytest.raises(AnswerTooLarge):
            await call(server)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024  # bytes held: about the cap, never the inflated body


def test_the_synchronous_post_refuses_a_gzip_bomb_before_holding_it(server: GzipServer) -> None:
    server.inflating_to(100 * 1024 * 1024)
    tracemalloc.start()
    try:
        with httpx.Client() as client, pytest.raises(AnswerTooLarge):
            post_sync(client, server.base_url, content="{}", headers={}, timeout=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert peak < 4 * 1024 * 1024


async def test_an_encoding_it_cannot_bound_is_a_failed_call(server: GzipServer) -> None:
    server.inflating_to(1024)
    server.encoding = "br"

    with pytest.raises(CallFailed, match="content-encoding"):
        await call(server)


async def test_a_closed_client_is_a_failed_call_not_a_runtime_error(server: GzipServer) -> None:
    client = httpx.AsyncClient()
    await client.aclose()

    with pytest.raises(CallFailed, match="closed"):
        await post(client, server.base_url, content="{}", headers={}, timeout=5)
