"""The process-wide concurrency limit: one semaphore per event loop and limit value.

A semaphore belongs to the loop it first waits on, and tests (or a harness) may run several loops one
after another in one process; keying by loop keeps the limit process-wide without leaking across loops.
Clients that share a ``max_concurrency`` value share its permits.
"""

from __future__ import annotations

import asyncio
import weakref

_LIMITS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


def process_limit(size: int) -> asyncio.Semaphore:
    """The shared semaphore with `size` permits for the running loop."""
    per_loop = _LIMITS.setdefault(asyncio.get_running_loop(), {})
    semaphore = per_loop.get(size)
    if semaphore is None:
        semaphore = per_loop[size] = asyncio.Semaphore(size)
    return semaphore
