"""`Cleaner`: quota clean-up passes run one at a time by a lifespan task, when a release asks for one.

A pass is wanted only after a release leaves a file without references, so the task sleeps on an event
rather than a timer: no pass runs for nothing. Requests that arrive during a pass are served by one more
pass, however many they are; `min_interval_s` spaces the passes out, so that under load (a release per
upload) they run a few times a second, each over many releases, instead of back to back, each a few
registry round-trips for one file.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Self

import structlog

__all__ = ["Cleaner"]

_log = structlog.get_logger(__name__)


class Cleaner:
    """Runs `clean` in a background task whenever `request` was called since the last pass started.

    Use it as ``async with Cleaner(clean) as cleaner:`` for the app's lifespan. On exit the passes already
    requested still run (a clean stop leaves the provider within its quota), for at most `stop_timeout_s`;
    then the task is cancelled. A cancelled pass loses nothing: the registry offers files it had reserved
    to a later pass once their lease runs out.

    Args:
        clean: one clean-up pass. It should handle its own expected errors; anything it raises is logged
            and the next request runs a fresh pass.
        stop_timeout_s: how long the exit waits for requested passes.
        min_interval_s: least time from the start of one pass to the start of the next (not at exit).
    """

    # 5 s: well inside the 10 s a load run's process supervisor gives the service between SIGTERM and SIGKILL.
    def __init__(
        self,
        clean: Callable[[], Awaitable[object]],
        *,
        stop_timeout_s: float = 5.0,
        min_interval_s: float = 0.0,
    ) -> None:
        self._clean = clean
        self._stop_timeout_s = stop_timeout_s
        self._min_interval_s = min_interval_s
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._done = asyncio.Condition()
        self._requested = 0  # tickets handed out
        self._finished = 0  # every ticket up to this one was served by a pass that started after it
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def request(self) -> int:
        """Ask for a pass; returns a ticket for `wait`."""
        self._requested += 1
        self._wake.set()
        return self._requested

    async def wait(self, ticket: int) -> None:
        """Return once a pass that started after `ticket` was handed out has finished."""
        async with self._done:
            await self._done.wait_for(lambda: self._finished >= ticket)

    async def __aenter__(self) -> Self:
        self._task = asyncio.create_task(self._run(), name="registry-cleaner")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        self._stopping = True
        self._stop.set()
        self._wake.set()
        try:
            await asyncio.wait_for(task, self._stop_timeout_s)  # cancels the task on timeout
        except TimeoutError:
            _log.warning("registry clean-up cancelled at shutdown", timeout_s=self._stop_timeout_s)
        async with self._done:  # nobody may wait for a pass that will never run
            self._finished = self._requested
            self._done.notify_all()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            upto = self._requested
            if upto > self._finished:
                started = asyncio.get_running_loop().time()
                try:
                    await self._clean()
                except Exception:  # a background loop must outlive one bad pass; it is logged, not lost
                    _log.exception("registry clean-up pass failed; the next release runs another")
                async with self._done:
                    self._finished = upto
                    self._done.notify_all()
                rest = self._min_interval_s - (asyncio.get_running_loop().time() - started)
                if rest > 0 and not self._stopping:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._stop.wait(), rest)
                continue  # requests made meanwhile (and a stop) set the wake-up: look again
            if self._stopping:
                return
