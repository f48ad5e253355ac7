"""Shared state: the key-value interface the library's caches use, and its back ends.

Without ``redis_url`` every cache lives in process memory (``MemoryStore``);
with it, state that workers and replicas must agree on lives in Redis. Values
are bytes: callers that keep secrets seal them first (``sealing.Sealer``).
"""

from __future__ import annotations

import time
from typing import Protocol

from cachetools import LRUCache

__all__ = ["KeyValueStore", "MemoryStore"]


class KeyValueStore(Protocol):
    """An async key-value store with per-key time to live.

    Keys are the caller's names without the configured prefix; the store adds it.
    A store that cannot be reached raises ``StoreUnavailableError`` (callers fall
    back to process memory), never a bare client exception.
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
