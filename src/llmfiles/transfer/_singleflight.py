"""Single-flight: concurrent calls with the same key share one run and its outcome."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(slots=True)
class _Flight(Generic[T]):
    task: asyncio.Task[T]
    waiters: int = 0


class SingleFlight(Generic[T]):
    """Run at most one `start()` per key at a time; every caller of that key gets its result or error.

    The shared run is a task awaited through `asyncio.shield`, so a caller that is cancelled leaves
    and the others carry on; when the last caller leaves, the run is cancelled too and that caller waits
    until the run's own clean-up has removed whatever it left half done. A finished run is forgotten at
    once: a later call starts afresh (single-flight, not a cache).
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, _Flight[T]] = {}

    def in_flight(self, key: Hashable) -> bool:
        """Whether a run for `key` is under way."""
        return key in self._flights

    async def run(self, key: Hashable, start: Callable[[], Awaitable[T]]) -> T:
        """Join the run for `key`, starting it with `start()` if none is under way."""
        flight = self._flights.get(key)
        if flight is None:
            flight = _Flight(asyncio.ensure_future(start()))
            self._flights[key] = flight
            flight.task.add_done_callback(partial(self._forget, key, flight))
        flight.waiters += 1
        try:
            return await asyncio.shield(flight.task)
        finally:
            flight.waiters -= 1
            if flight.waiters == 0 and not flight.task.done():
                flight.task.cancel()
                # Wait for the run's own clean-up, so a cancelled caller regains control only once
                # nothing half done is left (asyncio.wait never raises the run's error).
                await asyncio.wait({flight.task})

    def _forget(self, key: Hashable, flight: _Flight[T], _task: object) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]
