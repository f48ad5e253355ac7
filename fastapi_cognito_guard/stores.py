"""Shared state: the key-value interface the library's caches use, and its back ends.

Without ``redis_url`` every cache lives in process memory (``MemoryStore``);
with it, state that workers and replicas must agree on lives in Redis. Values
are bytes: callers that keep secrets seal them first (``sealing.Sealer``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import secrets
import time
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Protocol

from cachetools import LRUCache

from . import telemetry

if TYPE_CHECKING:
    from redis.asyncio import Redis

__all__ = [
    "KeyValueStore",
    "MemoryStore",
    "MirroredMaps",
    "RedisLink",
    "RedisMirror",
    "RedisStore",
    "StoreUnreachableError",
    "StrictStore",
    "valid_id",
]

logger = logging.getLogger(__name__)


class StoreUnreachableError(Exception):
    """The shared store could not be asked: the answer is unknown, not "absent"."""


class StrictStore(Protocol):
    """A store for callers that must not guess (server-side sessions, refresh leases):
    every operation either happens in the shared store or raises
    ``StoreUnreachableError``; "absent" (None, False) is only ever Redis's answer."""

    async def read(self, key: str) -> bytes | None:
        """The value under ``key``; None only when the store says it is absent."""
        ...

    async def create(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store ``value`` under ``key`` for ``ttl_seconds`` (a new key)."""
        ...

    async def replace(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        """Overwrite ``key`` only while it exists (atomic: ``SET XX``); False when it
        is gone (deleted meanwhile: nothing is written)."""
        ...

    async def remove(self, key: str) -> None:
        """Delete ``key`` (absent keys are fine)."""
        ...

    async def claim(self, key: str, ttl_seconds: float) -> str | None:
        """Take the lease ``key`` for ``ttl_seconds``: a token naming this holder, or
        None while another holder has it."""
        ...

    async def release(self, key: str, token: str) -> None:
        """Give the lease back, if ``token`` still holds it."""
        ...


class KeyValueStore(StrictStore, Protocol):
    """An async key-value store with per-key time to live.

    Keys are the caller's names without the configured prefix; the store adds it.
    ``get``/``set``/``delete`` never fail a request: ``RedisStore`` falls back to
    process memory while Redis cannot be reached, and treats values it cannot read
    as absent (caches that may guess). The ``StrictStore`` operations are for the
    callers that must not.
    """

    async def get(self, key: str) -> bytes | None:
        """The value under ``key``, or None when absent or expired."""
        ...

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        """Store ``value`` under ``key`` for ``ttl_seconds``."""
        ...

    async def delete(self, key: str) -> None:
        """Remove ``key`` (absent keys are fine)."""
        ...


class MemoryStore:
    """The in-process ``KeyValueStore``: a bounded LRU whose entries expire."""

    def __init__(self, max_entries: int = 10000) -> None:
        self._entries: LRUCache[str, tuple[float, bytes]] = LRUCache(max_entries)

    async def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if time.monotonic() >= expires:
            self._entries.pop(key, None)
            return None
        return value

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        self._entries[key] = (time.monotonic() + ttl_seconds, value)

    async def delete(self, key: str) -> None:
        self._entries.pop(key, None)

    # the StrictStore operations: process memory is never unreachable

    read = get

    async def create(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self.set(key, value, ttl_seconds)

    async def replace(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        if await self.get(key) is None:
            return False
        await self.set(key, value, ttl_seconds)
        return True

    remove = delete

    async def claim(self, key: str, ttl_seconds: float) -> str | None:
        if await self.get(key) is not None:
            return None
        token = secrets.token_urlsafe(16)
        await self.set(key, token.encode("ascii"), ttl_seconds)
        return token

    async def release(self, key: str, token: str) -> None:
        if await self.get(key) == token.encode("ascii"):
            await self.delete(key)


# -- Redis -------------------------------------------------------------------------

REDIS_TIMEOUT_SECONDS = 1.0
"""Socket and per-operation deadline for Redis: a slow Redis must not hold a request."""

MAX_AHEAD_SECONDS = 30
"""How far ahead of this clock an entry from Redis may be dated (the default leeway)."""

RESYNC_SECONDS = 30.0
"""The mirror merges with Redis at least this often (bounds staleness if a message is lost)."""

_RECONNECT_SECONDS = (0.2, 2.0)
"""First and longest pause between attempts to reach Redis again."""


class RedisLink:
    """One app's Redis: the client (a connection pool), the key prefix, and whether
    Redis is reachable (one warning when it stops being, one line when it is back).

    redis-py is imported only here (the ``redis`` extra); without it the error
    says how to install it, at start-up rather than on the first request.
    """

    def __init__(self, url: str, prefix: str) -> None:
        try:
            from redis import asyncio as redis_asyncio
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff
            from redis.exceptions import RedisError
        except ImportError:
            raise ImportError(
                "redis_url (COGNITO_REDIS_URL) is set but redis-py is not installed: "
                "pip install 'fastapi-cognito-guard[redis]'"
            ) from None
        try:
            self.client: Redis = redis_asyncio.Redis.from_url(
                url,
                socket_timeout=REDIS_TIMEOUT_SECONDS,
                socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                # one immediate retry replaces a connection Redis dropped (a restart);
                # backing off would outlast the deadline of the operation
                retry=Retry(NoBackoff(), retries=1),
            )
        except (ValueError, TypeError):
            raise ValueError("redis_url (COGNITO_REDIS_URL) is not a usable Redis URL") from None
        self.prefix = prefix
        self.failures: tuple[type[BaseException], ...] = (
            RedisError,
            OSError,
            asyncio.TimeoutError,
        )
        self.up: bool | None = None
        self._error = ""
        self._since = time.time()

    def failed(self, exc: BaseException) -> None:
        """Record a failed operation; warns once per incident."""
        reason = "timed out" if isinstance(exc, asyncio.TimeoutError) else type(exc).__name__
        if self.up is not False:
            logger.warning(
                "Redis unreachable (%s): using process memory until it is back",
                reason,
                extra=telemetry.log_extra("redis_unavailable"),
            )
            self._since = time.time()
        self.up = False
        self._error = reason

    def succeeded(self) -> None:
        """Record a successful operation; ends an incident."""
        if self.up is False:
            logger.warning("Redis reachable again")
        if self.up is not True:
            self._since = time.time()
        self.up = True
        self._error = ""

    def status(self) -> dict[str, Any]:
        """For ``health()``: reachable or not, since when, and the last error's kind."""
        state: dict[str, Any] = {"connected": bool(self.up), "since": round(self._since, 3)}
        if self._error:
            state["error"] = self._error
        return state

    async def aclose(self) -> None:
        await self.client.aclose()


def _wrong_type(exc: BaseException) -> bool:
    """Redis refused the command for the type of value under the key (not ours)."""
    return "WRONGTYPE" in str(exc)


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
"""Delete a lease only while it still holds the releasing holder's token."""


class RedisStore:
    """The Redis ``KeyValueStore``: every key prefixed, every value with a TTL.

    Writes also go to a process-memory copy, so while Redis cannot be reached
    ``get`` falls back to what this process knows (caches that may guess). The
    ``StrictStore`` operations never fall back: they raise
    ``StoreUnreachableError`` instead. A value of the wrong type under one of our
    keys is treated as absent (and logged).
    """

    def __init__(self, link: RedisLink, *, fallback: MemoryStore | None = None) -> None:
        self._link = link
        self._fallback = fallback or MemoryStore()

    async def get(self, key: str) -> bytes | None:
        link = self._link
        try:
            value = await asyncio.wait_for(
                link.client.get(link.prefix + key), REDIS_TIMEOUT_SECONDS
            )
        except link.failures as exc:
            if _wrong_type(exc):
                logger.warning("Redis key %s%s holds another type; ignored", link.prefix, key)
                return None
            link.failed(exc)
            return await self._fallback.get(key)
        link.succeeded()
        return value if isinstance(value, bytes) else None

    async def set(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._fallback.set(key, value, ttl_seconds)
        link = self._link
        await self._run(link.client.set(link.prefix + key, value, px=_ms(ttl_seconds)))

    async def delete(self, key: str) -> None:
        await self._fallback.delete(key)
        await self._run(self._link.client.delete(self._link.prefix + key))

    async def _run(self, command: Awaitable[Any]) -> None:
        # logged (once per incident); process memory has the value
        with contextlib.suppress(StoreUnreachableError, _WrongType):
            await self._strict(command)

    # -- StrictStore: Redis's answer or StoreUnreachableError, never process memory --

    async def read(self, key: str) -> bytes | None:
        try:
            value = await self._strict(self._link.client.get(self._link.prefix + key))
        except _WrongType:
            return None
        return value if isinstance(value, bytes) else None

    async def create(self, key: str, value: bytes, ttl_seconds: float) -> None:
        await self._strict(
            self._link.client.set(self._link.prefix + key, value, px=_ms(ttl_seconds))
        )

    async def replace(self, key: str, value: bytes, ttl_seconds: float) -> bool:
        link = self._link
        try:
            done = await self._strict(
                link.client.set(link.prefix + key, value, px=_ms(ttl_seconds), xx=True)
            )
        except _WrongType:
            return False
        return bool(done)

    async def remove(self, key: str) -> None:
        await self._strict(self._link.client.delete(self._link.prefix + key))

    async def claim(self, key: str, ttl_seconds: float) -> str | None:
        token = secrets.token_urlsafe(16)
        link = self._link
        taken = await self._strict(
            link.client.set(link.prefix + key, token, px=_ms(ttl_seconds), nx=True)
        )
        return token if taken else None

    async def release(self, key: str, token: str) -> None:
        link = self._link
        await self._strict(link.client.eval(_RELEASE, 1, link.prefix + key, token))  # type: ignore[no-untyped-call,unused-ignore]

    async def _strict(self, command: Awaitable[Any]) -> Any:
        link = self._link
        try:
            result = await asyncio.wait_for(command, REDIS_TIMEOUT_SECONDS)
        except link.failures as exc:
            if _wrong_type(exc):
                logger.warning("a Redis key under %s holds another type; ignored", link.prefix)
                raise _WrongType from None
            link.failed(exc)
            raise StoreUnreachableError(str(link.status().get("error", "unreachable"))) from None
        link.succeeded()
        return result


class _WrongType(Exception):
    """Redis refused the command for the type of the value under the key."""


def _ms(ttl_seconds: float) -> int:
    return max(1, int(ttl_seconds * 1000))


class MirroredMaps(Protocol):
    """In-memory maps of ``kind -> {member: time}`` that a ``RedisMirror`` shares.

    Merging keeps the later time per member, so replaying an entry is harmless and
    the union of every process's maps is what all of them converge to.
    """

    def snapshot(self, kind: str) -> dict[str, int]:
        """The live entries of ``kind`` (a copy)."""
        ...

    def merge(self, kind: str, member: str, at: int) -> None:
        """Add ``member`` at time ``at`` (whole seconds) unless it is older than known."""
        ...


_RESYNC = b"resync"
"""The message a mirror publishes after writing entries back: the others merge at once."""


class RedisMirror:
    """Keeps ``MirroredMaps`` in step with Redis without ever making a reader wait.

    Each kind is a sorted set ``{prefix}{name}:{kind}`` (member -> time), with a
    TTL that every write renews and members older than ``ttl_seconds`` pruned.
    Changes travel on the channel ``{prefix}{name}``; a full merge runs at start,
    on every reconnection and at least every ``resync_seconds``: Redis's entries
    join the maps, and entries Redis lacks (a restart without persistence, writes
    made while it was down) are written back and announced, so nothing is lost
    while any process remembers it.

    What Redis holds is input, not truth: an entry dated more than
    ``max_ahead_seconds`` (the largest leeway) after now would outlive
    ``ttl_seconds`` (and a year-9999 one lock its user out for ever), so it is
    refused, never clamped: logged, not merged (hence never written back), and
    removed from Redis.
    """

    def __init__(
        self,
        link: RedisLink,
        maps: MirroredMaps,
        *,
        name: str,
        kinds: tuple[str, ...],
        ttl_seconds: int,
        resync_seconds: float = RESYNC_SECONDS,
        max_ahead_seconds: int = MAX_AHEAD_SECONDS,
    ) -> None:
        self._link = link
        self._max_ahead = max_ahead_seconds
        self._maps = maps
        self._keys = {kind: f"{link.prefix}{name}:{kind}" for kind in kinds}
        self._channel = f"{link.prefix}{name}"
        self._ttl = ttl_seconds
        self._resync = resync_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.last_sync: float | None = None

    def status(self) -> dict[str, Any]:
        """Reachability, and when the last full merge with Redis happened."""
        synced = None if self.last_sync is None else round(self.last_sync, 3)
        return {**self._link.status(), "last_sync": synced}

    async def start(self) -> None:
        """Load and merge once (waiting at most a few deadlines), then follow changes."""
        try:
            await self._sync()
        except self._link.failures as exc:
            self._link.failed(exc)
        self._stopping = False
        self._task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        """Stop following changes."""
        if self._task is not None:
            self._stopping = True  # redis-py's timeouts may swallow a cancellation
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def publish(self, kind: str, member: str, at: int) -> bool:
        """Write one entry and announce it; False (and logged) when Redis is down:
        the first merge after it is back writes the entry."""
        link, key = self._link, self._keys[kind]
        announcement = f"{kind} {at} {member}".encode("ascii")
        pipe = link.client.pipeline(transaction=False)
        pipe.zadd(key, {member: at}, gt=True)
        pipe.expire(key, self._ttl)
        pipe.publish(self._channel, announcement)
        try:
            try:
                await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_SECONDS)
            except link.failures as exc:
                if not _wrong_type(exc):
                    raise
                await self._sync()  # replaces the foreign value with the merged list
                await asyncio.wait_for(
                    link.client.publish(self._channel, announcement), REDIS_TIMEOUT_SECONDS
                )
        except link.failures as exc:
            link.failed(exc)
            return False
        link.succeeded()
        return True

    async def _follow(self) -> None:
        low, high = _RECONNECT_SECONDS
        pause = low
        while not self._stopping:
            try:
                await self._listen()
            except self._link.failures as exc:
                if not self._stopping:
                    self._link.failed(exc)
            if not self._stopping:
                await asyncio.sleep(pause)
                pause = low if self._link.up else min(pause * 2, high)

    async def _listen(self) -> None:
        pubsub = self._link.client.pubsub()
        try:
            await pubsub.subscribe(self._channel)
            await self._sync()  # after subscribing: nothing published in between is missed
            due = time.monotonic() + self._resync
            while not self._stopping:
                wait = min(max(due - time.monotonic(), 0.0), REDIS_TIMEOUT_SECONDS)
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=wait)
                if message is not None and self._apply(message.get("data")):
                    due = time.monotonic()  # another process wrote entries back: merge now
                if time.monotonic() >= due:
                    await self._sync()
                    due = time.monotonic() + self._resync
        finally:
            with contextlib.suppress(*self._link.failures):
                # Untyped before redis-py 8.2, typed from it: the ignore holds for both stubs.
                await pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]

    def _apply(self, data: Any) -> bool:
        """Merge one announced entry; True when the message asks for a full merge."""
        if data == _RESYNC:
            return True
        parts = data.split(b" ", 2) if isinstance(data, bytes) else []
        entry = _entry(parts[2], parts[1]) if len(parts) == 3 else None
        kind = parts[0].decode("ascii", "replace") if parts else ""
        if entry is None or kind not in self._keys:
            logger.warning("ignored a malformed message on Redis channel %s", self._channel)
            return False
        if self._too_late(entry[1]):
            logger.warning(
                "refused a %s entry dated %d s ahead on Redis channel %s (more than the "
                "leeway: it would outlive its TTL)",
                kind,
                entry[1] - int(time.time()),
                self._channel,
            )
            return False
        self._maps.merge(kind, *entry)
        return False

    def _too_late(self, at: int) -> bool:
        """Dated after now plus the leeway: it would live longer than ``ttl_seconds``."""
        return at > time.time() + self._max_ahead

    async def _sync(self) -> None:
        """Merge Redis into the maps and write back what Redis lacks."""
        client = self._link.client
        oldest = int(time.time()) - self._ttl
        for kind, key in self._keys.items():
            remote = await self._load(key, oldest)
            for member, at in remote.items():
                self._maps.merge(kind, member, at)
            missing = {
                member: at
                for member, at in self._maps.snapshot(kind).items()
                if remote.get(member, -1) < at
            }
            pipe = client.pipeline(transaction=False)
            if missing:
                pipe.zadd(key, missing, gt=True)
                pipe.publish(self._channel, _RESYNC)
            pipe.zremrangebyscore(key, "-inf", oldest)
            pipe.expire(key, self._ttl)
            await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_SECONDS * 5)
        self.last_sync = time.time()
        self._link.succeeded()

    async def _load(self, key: str, oldest: int) -> dict[str, int]:
        client = self._link.client
        try:
            raw: list[Any] = await asyncio.wait_for(
                client.zrangebyscore(key, oldest, "+inf", withscores=True),
                REDIS_TIMEOUT_SECONDS * 5,
            )
        except self._link.failures as exc:
            if not _wrong_type(exc):
                raise
            logger.warning("Redis key %s holds another type; replaced by this process's list", key)
            await asyncio.wait_for(client.delete(key), REDIS_TIMEOUT_SECONDS)
            return {}
        found: dict[str, int] = {}
        malformed, ahead = [], []
        for pair in raw:
            entry = _entry(*pair) if isinstance(pair, (tuple, list)) and len(pair) == 2 else None
            if entry is None:
                malformed.append(pair[0] if isinstance(pair, (tuple, list)) and pair else pair)
            elif self._too_late(entry[1]):
                ahead.append(pair[0])
            else:
                found[entry[0]] = entry[1]
        if malformed:
            logger.warning("removed %d malformed entries from Redis key %s", len(malformed), key)
        if ahead:
            logger.warning(
                "refused and removed %d entries of Redis key %s dated later than now plus "
                "the leeway (they would outlive their TTL)",
                len(ahead),
                key,
            )
        if malformed or ahead:
            await asyncio.wait_for(client.zrem(key, *malformed, *ahead), REDIS_TIMEOUT_SECONDS)
        return found


def _entry(member: Any, at: Any) -> tuple[str, int] | None:
    """A (member, whole-second time) pair from Redis, or None when malformed."""
    try:
        text = member.decode("ascii") if isinstance(member, bytes) else None
        seconds = int(float(at))
    except (UnicodeDecodeError, ValueError, OverflowError):
        return None
    if text is None or not valid_id(text) or not 0 <= seconds <= MAX_TIME:
        return None
    return text, seconds


MAX_TIME = 253402300799
"""The largest NumericDate the verifier accepts (the end of year 9999)."""

_ID_PATTERN = re.compile(r"[\x21-\x7e]{1,256}")


def valid_id(value: str) -> bool:
    """A user ``sub`` or session ``origin_jti``: 1-256 visible ASCII characters."""
    return _ID_PATTERN.fullmatch(value) is not None
