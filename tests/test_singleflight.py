"""``SingleFlight``: one computation per key in flight, shared by concurrent callers."""

from __future__ import annotations

import asyncio

import pytest

from fastapi_cognito_guard.singleflight import SingleFlight


async def test_concurrent_callers_of_one_key_share_one_computation() -> None:
    flights, calls = SingleFlight(), []

    async def compute() -> int:
        calls.append(1)
        await asyncio.sleep(0.01)
        return 42

    results = await asyncio.gather(*(flights.run("k", compute) for _ in range(20)))
    assert results == [42] * 20
    assert len(calls) == 1


async def test_a_finished_computation_is_not_reused() -> None:
    flights, calls = SingleFlight(), []

    async def compute() -> int:
        calls.append(1)
        return len(calls)

    assert [await flights.run("k", compute) for _ in range(2)] == [1, 2]


async def test_a_cancelled_caller_leaves_the_computation_to_the_others() -> None:
    flights = SingleFlight()
    release = asyncio.Event()

    async def compute() -> str:
        await release.wait()
        return "done"

    quitter = asyncio.ensure_future(flights.run("k", compute))
    stayer = asyncio.ensure_future(flights.run("k", compute))
    await asyncio.sleep(0)
    quitter.cancel()
    release.set()
    assert await stayer == "done"
    with pytest.raises(asyncio.CancelledError):
        await quitter


async def test_every_waiter_gets_the_failure() -> None:
    flights = SingleFlight()

    async def compute() -> None:
        await asyncio.sleep(0.01)
        raise LookupError("upstream said no")

    results = await asyncio.gather(
        *(flights.run("k", compute) for _ in range(3)), return_exceptions=True
    )
    assert all(isinstance(result, LookupError) for result in results)


async def test_running_says_whether_a_computation_of_the_key_is_in_flight() -> None:
    flights, release = SingleFlight(), asyncio.Event()

    async def compute() -> int:
        await release.wait()
        return 1

    task = asyncio.create_task(flights.run("k", compute))
    await asyncio.sleep(0)
    assert flights.running("k")
    assert not flights.running("other")
    release.set()
    await task
    assert not flights.running("k")
