import asyncio

import pytest

from llmfiles.transfer._singleflight import SingleFlight


async def test_concurrent_callers_share_one_run() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = 0
    gate = asyncio.Event()

    async def work() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        return 42

    callers = [asyncio.create_task(flights.run("k", work)) for _ in range(5)]
    await asyncio.sleep(0)
    assert flights.in_flight("k")
    gate.set()
    assert await asyncio.gather(*callers) == [42] * 5
    assert runs == 1
    assert not flights.in_flight("k")


async def test_a_finished_run_is_not_cached() -> None:
    flights: SingleFlight[int] = SingleFlight()
    counter = iter(range(10))

    async def work() -> int:
        return next(counter)

    assert [await flights.run("k", work), await flights.run("k", work)] == [0, 1]


async def test_different_keys_run_in_parallel() -> None:
    flights: SingleFlight[str] = SingleFlight()
    both_started = asyncio.Barrier(2)

    async def work(name: str) -> str:
        await both_started.wait()  # deadlocks unless both runs are under way at once
        return name

    results = await asyncio.wait_for(
        asyncio.gather(flights.run("a", lambda: work("a")), flights.run("b", lambda: work("b"))), timeout=5
    )
    assert list(results) == ["a", "b"]


async def test_every_caller_gets_the_same_error() -> None:
    flights: SingleFlight[int] = SingleFlight()

    async def work() -> int:
        await asyncio.sleep(0)
        raise LookupError("gone")

    outcomes = await asyncio.gather(*(flights.run("k", work) for _ in range(3)), return_exceptions=True)
    assert all(isinstance(o, LookupError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 1


async def test_a_cancelled_caller_leaves_the_run_going() -> None:
    flights: SingleFlight[str] = SingleFlight()
    gate = asyncio.Event()

    async def work() -> str:
        await gate.wait()
        return "done"

    leaving = asyncio.create_task(flights.run("k", work))
    staying = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    gate.set()
    assert await staying == "done"


async def test_the_last_caller_leaving_cancels_and_waits_for_clean_up() -> None:
    flights: SingleFlight[str] = SingleFlight()
    cleaned = False

    async def work() -> str:
        nonlocal cleaned
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0)  # a clean-up step that itself awaits
            cleaned = True
        return "never"

    caller = asyncio.create_task(flights.run("k", work))
    await asyncio.sleep(0)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert cleaned
    assert not flights.in_flight("k")
