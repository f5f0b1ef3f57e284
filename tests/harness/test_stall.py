import asyncio
import time

from harness.cases._stall import TICK_S, stalls_during


async def test_a_blocking_call_shows_as_a_stall_and_awaiting_does_not() -> None:
    async def blocks() -> None:
        await asyncio.sleep(3 * TICK_S)
        time.sleep(0.1)  # what the legacy arm does to the loop
        await asyncio.sleep(3 * TICK_S)

    async def awaits() -> None:
        await asyncio.sleep(0.1)

    blocked = await stalls_during(blocks, time.perf_counter)
    assert max(blocked) >= 90  # lateness in ms; sleep(0.1) guarantees at least 100 ms of it
    assert len(await stalls_during(awaits, time.perf_counter)) >= 5
