"""The rollout controller's checks, run off the serving loop.

`RolloutController.check` re-reads its state file, judges the gates and, on a rollback, writes and fsyncs
the flag and state files: milliseconds of blocking I/O and CPU that must not stall every request in
flight. So each check runs in a worker thread; the controller's figures come from the `Recorder`, which
takes a lock, and its flag pin is thread-safe.
"""

from __future__ import annotations

import asyncio

import structlog

from llmfiles.rollout import RolloutController

__all__ = ["check_every"]

_log = structlog.get_logger(__name__)


async def check_every(controller: RolloutController, interval_s: float) -> None:
    """Run ``controller.check`` in a worker thread every `interval_s` seconds until cancelled.

    A failing check is logged and the next one runs: a broken state file must not end the checks.
    """
    while True:
        await asyncio.sleep(interval_s)
        try:
            result = await asyncio.to_thread(controller.check)
        except Exception as exc:  # logged, never fatal: the next interval checks again
            _log.error("rollout check failed", error_type=type(exc).__name__, error=str(exc))
            continue
        if result.rolled_back:
            _log.warning("rollout rolled back by the service's controller", reason=controller.state.reason)
