"""Shared state on a real ``redis-server`` (``stores.py``, DESIGN §15).

Each test gets its own empty Redis on a free 127.0.0.1 port (no persistence);
"another process" is a second ``RedisLink`` with its own connections and its
own in-memory list, as a second worker would have.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from fastapi_cognito_guard import RevocationList
from fastapi_cognito_guard.revocation import shared_revocations
from fastapi_cognito_guard.stores import (
    RedisLink,
    RedisMirror,
    RedisStore,
    StoreUnreachableError,
)
from tests.redis_server import RedisServer, redis_server  # noqa: F401 - fixture

PREFIX = "test:"
SESSIONS_KEY, USERS_KEY, CHANNEL = "test:revoked:session", "test:revoked:user", "test:revoked"


class Worker:
    """One process's view: its Redis link, its revocation list and the list's mirror."""

    def __init__(self, url: str) -> None:
        self.link = RedisLink(url, PREFIX)
        self.revocations = RevocationList(3600)
        self.mirror = shared_revocations(self.link, self.revocations)

    async def revoke_session(self, origin_jti: str) -> bool:
        at = self.revocations.revoke_session(origin_jti)
        return await self.mirror.publish("session", origin_jti, at)

    async def close(self) -> None:
        await self.mirror.stop()
        await self.link.aclose()


@pytest.fixture
async def workers(redis_server: RedisServer) -> AsyncIterator[Callable[[], Awaitable[Worker]]]:  # noqa: F811
    made: list[Worker] = []

    async def start() -> Worker:
        worker = Worker(redis_server.url)
        made.append(worker)
        await worker.mirror.start()
        return worker

    yield start
    for worker in made:
        await worker.close()


async def eventually(check: Callable[[], bool], within: float = 5.0) -> float:
    """Poll ``check`` until true; returns the seconds it took (fails after ``within``)."""
    started = time.monotonic()
    while not check():
        assert time.monotonic() - started < within, "condition not reached in time"
        await asyncio.sleep(0.005)
    return time.monotonic() - started


# -- the key-value store ---------------------------------------------------------------


async def test_redis_store_prefixes_every_key_and_gives_it_a_ttl(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    link = RedisLink(redis_server.url, PREFIX)
    store = RedisStore(link)
    await store.set("identity:abc", b"value", 60)
    assert await store.get("identity:abc") == b"value"
    assert await link.client.get("test:identity:abc") == b"value"
    assert 0 < await link.client.pttl("test:identity:abc") <= 60_000
    await store.delete("identity:abc")
    assert await store.get("identity:abc") is None
    await link.aclose()


async def test_redis_store_falls_back_to_process_memory_with_one_warning(
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    link = RedisLink(redis_server.url, PREFIX)
    store = RedisStore(link)
    await store.set("known", b"1", 60)
    redis_server.stop()
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        assert await store.get("known") == b"1"
        await store.set("new", b"2", 60)
        assert await store.get("new") == b"2"
        await store.delete("known")
        assert await store.get("known") is None
    assert caplog.text.count("Redis unreachable") == 1
    assert link.status()["connected"] is False
    await link.aclose()


async def test_a_value_of_another_type_under_our_key_reads_as_absent(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    link = RedisLink(redis_server.url, PREFIX)
    await link.client.rpush("test:identity:abc", b"garbage")
    assert await RedisStore(link).get("identity:abc") is None
    await link.aclose()


@pytest.fixture
async def strict(redis_server: RedisServer) -> AsyncIterator[RedisStore]:  # noqa: F811
    """A ``RedisStore`` on the test's Redis, used through its ``StrictStore`` side."""
    link = RedisLink(redis_server.url, PREFIX)
    yield RedisStore(link)
    await link.aclose()


async def test_strict_reads_tell_unreachable_from_absent(
    redis_server: RedisServer,  # noqa: F811
    strict: RedisStore,
) -> None:
    store = strict
    await store.create("session:known", b"1", 60)
    assert await store.read("session:known") == b"1"
    assert await store.read("session:never") is None  # absent: Redis said so
    redis_server.stop()
    with pytest.raises(StoreUnreachableError):
        await store.read("session:known")  # never this process's memory
    with pytest.raises(StoreUnreachableError):
        await store.remove("session:known")


async def test_replace_writes_only_while_the_key_exists(strict: RedisStore) -> None:
    store = strict
    assert await store.replace("session:gone", b"new", 60) is False
    assert await store.read("session:gone") is None
    await store.create("session:here", b"old", 60)
    assert await store.replace("session:here", b"new", 60) is True
    assert await store.read("session:here") == b"new"


async def test_a_lease_has_one_holder_and_only_its_holder_releases_it(strict: RedisStore) -> None:
    store = strict
    holder = await store.claim("lease", 30)
    assert holder is not None
    assert await store.claim("lease", 30) is None
    await store.release("lease", "not-the-holder")
    assert await store.claim("lease", 30) is None
    await store.release("lease", holder)
    assert await store.claim("lease", 30) is not None


def test_a_missing_redis_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"fastapi-cognito-guard\[redis\]"):
        RedisLink("redis://127.0.0.1:6379/0", PREFIX)


# -- the revocation mirror ----------------------------------------------------------


async def test_a_revocation_reaches_another_process_through_pub_sub(
    workers: Callable[[], Awaitable[Worker]],
) -> None:
    a, b = await workers(), await workers()
    assert await a.revoke_session("sign-in-1")
    delay = await eventually(lambda: "sign-in-1" in b.revocations.snapshot("session"), 1.0)
    assert delay < 1.0


async def test_a_starting_process_loads_the_whole_list(
    workers: Callable[[], Awaitable[Worker]],
) -> None:
    a = await workers()
    await a.revoke_session("sign-in-1")
    at = a.revocations.revoke_user("user-1")
    await a.mirror.publish("user", "user-1", at)
    late = await workers()
    assert late.revocations.snapshot("session") == {"sign-in-1": at}
    assert late.revocations.snapshot("user") == {"user-1": at}


async def test_entries_redis_lacks_are_written_back_and_announced_after_a_restart(
    workers: Callable[[], Awaitable[Worker]],
    redis_server: RedisServer,  # noqa: F811
    tmp_path: Path,
) -> None:
    a, b = await workers(), await workers()
    await a.revoke_session("before-outage")
    await eventually(lambda: "before-outage" in b.revocations.snapshot("session"))
    redis_server.stop()
    assert not await b.revoke_session("during-outage")  # kept locally, reported unshared
    restarted = RedisServer.start(tmp_path / "redis-again", port=redis_server.port)
    try:
        await eventually(lambda: "during-outage" in a.revocations.snapshot("session"), 10)
        members = await a.link.client.zrange(SESSIONS_KEY, 0, -1)
        assert set(members) == {b"before-outage", b"during-outage"}
        assert await a.revoke_session("after-restart")
        await eventually(lambda: "after-restart" in b.revocations.snapshot("session"), 1.0)
    finally:
        restarted.stop()


async def test_every_key_under_the_prefix_has_a_ttl(
    workers: Callable[[], Awaitable[Worker]],
) -> None:
    a = await workers()
    await a.revoke_session("sign-in-1")
    at = a.revocations.revoke_user("user-1")
    await a.mirror.publish("user", "user-1", at)
    await RedisStore(a.link).set("identity:x", b"1", 30)
    keys = [key async for key in a.link.client.scan_iter(match=PREFIX + "*")]
    assert len(keys) == 3
    for key in keys:
        assert await a.link.client.ttl(key) > 0


async def test_garbage_in_redis_is_ignored_and_replaced_never_raised(
    workers: Callable[[], Awaitable[Worker]],
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = await workers()
    client = a.link.client
    now = int(time.time())
    await client.set(SESSIONS_KEY, b"not a sorted set")
    await client.zadd(USERS_KEY, {b"bad member": now, b"\xff\xfe": now, b"ok-user": now})
    b = Worker(redis_server.url)
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        await b.mirror.start()
        for message in (b"session not-a-time x", b"\x00\x01", b"user 5 two words"):
            await client.publish(CHANNEL, message)
        try:
            assert b.revocations.snapshot("user") == {"ok-user": now}
            assert await client.type(SESSIONS_KEY) != b"string"
            assert await a.revoke_session("after-garbage")
            await eventually(lambda: "after-garbage" in b.revocations.snapshot("session"))
            await eventually(lambda: caplog.text.count("malformed message") >= 3)
        finally:
            await b.close()
    assert "holds another type" in caplog.text
    assert "removed 2 malformed entries" in caplog.text
    assert await client.zrange(USERS_KEY, 0, -1) == [b"ok-user"]


async def test_a_lost_message_is_repaired_by_the_periodic_resync(
    redis_server: RedisServer,  # noqa: F811
) -> None:
    link = RedisLink(redis_server.url, PREFIX)
    revocations = RevocationList(3600)
    mirror = RedisMirror(
        link, revocations, name="revoked", kinds=("session", "user"), ttl_seconds=3600,
        resync_seconds=0.2,
    )  # fmt: skip
    await mirror.start()
    try:
        # written without an announcement, as if the message had been lost
        await link.client.zadd(SESSIONS_KEY, {b"silent": int(time.time())})
        await eventually(lambda: "silent" in revocations.snapshot("session"), 2.0)
    finally:
        await mirror.stop()
        await link.aclose()


async def test_a_revocation_written_over_a_foreign_value_replaces_it(
    workers: Callable[[], Awaitable[Worker]],
) -> None:
    a, b = await workers(), await workers()
    await a.link.client.set(SESSIONS_KEY, b"foreign")
    assert await a.revoke_session("sign-in-1")
    assert await a.link.client.zrange(SESSIONS_KEY, 0, -1) == [b"sign-in-1"]
    await eventually(lambda: "sign-in-1" in b.revocations.snapshot("session"), 1.0)


# -- entries from Redis are input -------------------------------------------------------


async def test_an_entry_dated_past_the_leeway_on_the_channel_is_refused_never_written_back(
    workers: Callable[[], Awaitable[Worker]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a, b = await workers(), await workers()
    client = a.link.client
    deadline = time.monotonic() + 5
    while (await client.pubsub_numsub(CHANNEL))[0][1] < 2:  # both listen first
        assert time.monotonic() < deadline, "the mirrors did not subscribe"
        await asyncio.sleep(0.01)
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        await client.publish(CHANNEL, b"user 253402300799 alice")  # the end of year 9999
        assert await a.revoke_session("after-the-forgery")  # travels after it
        await eventually(lambda: "after-the-forgery" in b.revocations.snapshot("session"))
        await eventually(lambda: "after-the-forgery" in a.revocations.snapshot("session"))
        await eventually(lambda: caplog.text.count("refused a user entry dated") == 2)
    assert "alice" not in a.revocations.snapshot("user")
    assert "alice" not in b.revocations.snapshot("user")
    await client.delete(USERS_KEY)
    await a.mirror._sync()  # a resync writes back only what it holds
    assert await client.zrange(USERS_KEY, 0, -1) == []


async def test_an_entry_in_redis_dated_past_the_leeway_is_refused_and_removed(
    workers: Callable[[], Awaitable[Worker]],
    redis_server: RedisServer,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = await workers()
    now = int(time.time())
    await a.link.client.zadd(USERS_KEY, {b"locked-out": now + 3600, b"fair": now + 10})
    b = Worker(redis_server.url)
    with caplog.at_level(logging.WARNING, "fastapi_cognito_guard"):
        await b.mirror.start()
    try:
        assert b.revocations.snapshot("user") == {"fair": now + 10}  # within the leeway
        assert await a.link.client.zrange(USERS_KEY, 0, -1) == [b"fair"]
        assert "refused and removed 1 entries" in caplog.text
    finally:
        await b.close()
