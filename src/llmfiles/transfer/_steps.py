"""Closing a file that worker threads drive one step at a time, from the event loop, without a race.

An upload's reader and a download's writer both hold a descriptor that worker steps use under a lock.
An abandoned transfer (cancelled, failed) must not close it under a running step: its number could be
reused by another open file, and the step would then read or write that one. Nor may the loop wait for
the step. So the close happens now if no step holds the lock, else in a worker once the step ends.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

__all__ = ["close_between_steps"]


def close_between_steps(
    lock: threading.Lock, close: Callable[[], None], loop: asyncio.AbstractEventLoop
) -> None:
    """Run `close` under `lock`: at once if it is free, else in a worker once the running step lets go."""
    if lock.acquire(blocking=False):
        try:
            close()
        finally:
            lock.release()
    else:
        loop.run_in_executor(None, _when_free, lock, close)


def _when_free(lock: threading.Lock, close: Callable[[], None]) -> None:
    with lock:
        close()
