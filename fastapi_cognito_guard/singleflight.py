"""At most one computation in flight per key: concurrent callers share its result.

The identity exchanges, the ``GetUser`` session checks and the session refreshes
each must reach their upstream once however many requests ask at the same moment.
A caller that is cancelled does not cancel the shared computation (the others
still wait for it), and a failure nobody waited for leaves no warning behind.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

__all__ = ["SingleFlight"]

V = TypeVar("V")


class SingleFlight:
    """Shares one in-flight computation per key among concurrent callers."""

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[Any]] = {}

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        """``compute()``'s result, joining a computation already running for ``key``."""
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(compute())
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        result: V = await asyncio.shield(flight)
        return result

    def running(self, key: Hashable) -> bool:
        """True while a computation for ``key`` is in flight."""
        return key in self._flights

    def _landed(self, key: Hashable, flight: asyncio.Future[Any]) -> None:
        self._flights.pop(key, None)
        if not flight.cancelled():
            flight.exception()  # retrieved: waiters that gave up leave no warning behind
