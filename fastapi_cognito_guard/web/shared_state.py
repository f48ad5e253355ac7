"""What the workers and replicas of one app share (DESIGN §15): the revocation list,
mirrored from Redis when ``redis_url`` is set, and the store shared caches live in.

Without ``redis_url`` the list lives in this process alone and there is no shared
store; the verifiers consult the list in memory either way.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..revocation import RevocationList, shared_revocations
from ..settings import CognitoSettings
from ..stores import KeyValueStore, RedisLink, RedisStore

__all__ = ["SharedState"]


class SharedState:
    """The revocation list, its Redis mirror and the shared store of one auth."""

    def __init__(self, settings: Sequence[CognitoSettings]) -> None:
        self.revocations = RevocationList(max(s.refresh_token_validity_seconds for s in settings))
        """The revocation list (sessions and users) every verifier of the auth consults."""
        redis = next(((s.redis_url, s.redis_prefix) for s in settings if s.redis_url), None)
        self._redis = RedisLink(*redis) if redis else None
        leeway = max(s.leeway_seconds for s in settings)  # entries dated later are refused
        self.mirror = (
            shared_revocations(self._redis, self.revocations, leeway_seconds=leeway)
            if self._redis
            else None
        )
        """Keeps the list in step with Redis (None without ``redis_url``)."""
        self.store: KeyValueStore | None = RedisStore(self._redis) if self._redis else None
        """Where shared caches live (Redis) when ``redis_url`` is set, else None."""

    async def start(self) -> None:
        """Start the mirror: a full load, then pub/sub. Redis being down delays nothing."""
        if self.mirror is not None:
            await self.mirror.start()

    async def aclose(self) -> None:
        """Stop the mirror and close the Redis connection."""
        if self.mirror is not None:
            await self.mirror.stop()
        if self._redis is not None:
            await self._redis.aclose()

    def status(self) -> dict[str, Any]:
        """Redis's state for ``health()``: configured, and the mirror's view of it."""
        redis: dict[str, Any] = {"configured": self.mirror is not None}
        if self.mirror is not None:
            redis.update(self.mirror.status())
        return redis
