"""The process-wide concurrency limit: one semaphore per event loop and limit value.

A semaphore belongs to the loop it first waits on, and tests (or a harness) may run several loops one
after another in one process; keying by loop keeps the limit process-wide without leaking across loops.
Clients that share a ``max_concurrency`` value and a ``limit_group`` share its permits.

Two gates per value: `process_limit` bounds requests on the wire; `process_admission` bounds how many
transfers are past their start at all (stat, building the body and the request, waiting for a wire
permit). Without the second, 150 uploads requested at once would each do that start-up work in the same
few loop iterations (~0.2 ms apiece, tens of milliseconds of frozen loop) only to queue for a permit.
"""

from __future__ import annotations

import asyncio
import weakref

__all__ = ["ADMISSION_FACTOR", "process_admission", "process_limit"]

ADMISSION_FACTOR = 2
"""Transfers admitted per wire permit: one on the wire, one ready to take the permit the moment it frees."""

_LIMITS: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, int], asyncio.Semaphore]
] = weakref.WeakKeyDictionary()


def _shared(kind: str, group: str, size: int) -> asyncio.Semaphore:
    per_loop = _LIMITS.setdefault(asyncio.get_running_loop(), {})
    semaphore = per_loop.get((kind, group, size))
    if semaphore is None:
        semaphore = per_loop[(kind, group, size)] = asyncio.Semaphore(size)
    return semaphore


def process_limit(size: int, group: str) -> asyncio.Semaphore:
    """The shared semaphore with `size` permits of `group` for the running loop: requests on the wire."""
    return _shared("wire", group, size)


def process_admission(size: int, group: str) -> asyncio.Semaphore:
    """The gate in front of whole transfers of `group` for `size`: ``ADMISSION_FACTOR * size`` permits."""
    return _shared("admission", group, ADMISSION_FACTOR * size)
