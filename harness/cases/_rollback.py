"""Rollback case: a brownout injected under load; how long until the real controller rolls back.

The real `RolloutController` checks every `rollback_interval_s` over the real `Recorder` fed by the real
dispatcher, uploading to the mock in another process. The injected brownout is the shipped profile's
latency with enough 503s that the async arm's error rate, after its own retries, breaches the rollback
rule (errors > 5 %): the shipped `brownout` (20 % 503s) is absorbed by three retries and is not a
rollback case at all, which is the point of retries. The measured time runs from the profile switch to
the controller's rollback, and is judged against the controller's own promise, interval x (threshold +
1) (`RolloutController.detection_bound_s`), as a percentage of it.

The timeline bins calls by the time they started, since the arm is chosen at the start: binned by
completion, calls started on the async arm before the rollback and still retrying after it would make
the async share look alive after the decision. The bins are aligned on the decision, so none straddles
it, and the case counts the async calls started after it (zero when the rollback took effect at once).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Sequence
from typing import Any

from harness._context import API_KEY, BenchContext
from harness._wiring import StaticFlags, make_dispatcher
from harness.cases._arms import TIMEOUT_S, base_url
from harness.cases._seams import REAL, Seams
from harness.report._series import TimelinePoint
from harness.report._verdict import Measurement
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import Event, Recorder
from llmfiles.providers import KIMI
from llmfiles.rollout import DEFAULT_GATES, FlagState, OverridableFlagSource
from llmfiles.transfer import AsyncFilesClient, TransferSettings

__all__ = ["BROWNOUT_RULES", "measure_rollback", "timeline_by_start"]

BROWNOUT_RULES: tuple[dict[str, Any], ...] = (
    {"effect": {"kind": "latency", "distribution": "lognormal", "median": 0.2, "sigma": 0.6, "cap": 5.0}},
    {
        "match": {"operation": "upload"},
        "trigger": {"probability": 0.6},
        "effect": {"kind": "error", "status": 503},
    },
)
_WORKERS = 48
_WARMUP_S = 2.5
_DEADLINE_S = 120.0
_STAGE = "50%"
_BIN_S = 1.0
SHARE = "share of calls started on async"
SUCCESS = "async success rate, by start"


def timeline_by_start(
    events: Sequence[Event], *, origin: float, decision: float | None, bin_s: float = _BIN_S
) -> tuple[list[TimelinePoint], int]:
    """Per-bin async share and success rate of the calls by their start time, and the async calls
    started at or after `decision` (None: no rollback, and nothing to count).

    Times are seconds since `origin` (wall clock, like `Event.ts`); bins are aligned on the decision so
    that every bin is wholly before or wholly after it.
    """
    anchor = decision if decision is not None else 0.0
    bins: dict[int, list[Event]] = {}
    for event in events:
        bins.setdefault(math.floor((event.ts - origin - anchor) / bin_s), []).append(event)
    points: list[TimelinePoint] = []
    for index in sorted(bins):
        calls = bins[index]
        t = anchor + index * bin_s
        mine = [event for event in calls if event.arm == "async"]
        points.append(TimelinePoint(t, SHARE, len(mine) / len(calls)))
        if mine:
            points.append(TimelinePoint(t, SUCCESS, sum(e.outcome == "success" for e in mine) / len(mine)))
    after = 0 if decision is None else sum(e.arm == "async" and e.ts - origin >= decision for e in events)
    return points, after


async def measure_rollback(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:

    await asyncio.to_thread(ctx.mock.reset)
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    interval = ctx.config.rollback_interval_s
    recorder = Recorder(window_s=600)
    flags = OverridableFlagSource(StaticFlags(FlagState(enabled=True, percent=50.0)))
    controller = seams.controller(
        recorder=recorder, flags=flags, interval_s=interval, gates=DEFAULT_GATES.with_soak(0)
    )
    while controller.current_stage() != _STAGE:
        controller.promote(force=True)
    kimi = base_url(ctx, "kimi")
    legacy = LegacyFilesClient(KIMI, api_key=API_KEY, base_url=kimi, timeout=TIMEOUT_S)
    settings = TransferSettings(read_timeout=TIMEOUT_S, max_concurrency=_WORKERS)
    paths = [ctx.files.get(4096 + i, f"rollback-{i}.txt") for i in range(_WORKERS)]
    stop = asyncio.Event()
    origin = time.time()  # the wall clock of the events and the controller's history
    markers: dict[str, float] = {}

    async with AsyncFilesClient(KIMI, api_key=API_KEY, base_url=kimi, settings=settings) as client:
        dispatcher = make_dispatcher(
            flags, client=client, legacy=legacy, recorder=recorder, stage=controller.current_stage
        )
        keys = itertools.count()

        async def worker(index: int) -> None:
            while not stop.is_set():
                try:
                    await dispatcher.upload(paths[index], purpose="file-extract", key=f"user-{next(keys)}")
                except Exception:  # failures are what the controller should see, not what ends the load
                    await asyncio.sleep(0.01)

        tasks = [asyncio.create_task(worker(i)) for i in range(_WORKERS)]
        tasks.append(asyncio.create_task(controller.run(stop)))
        try:
            await asyncio.sleep(_WARMUP_S)
            # Marked before the request: the mock applies the rules somewhere within it, so the detection
            # time measured from here is an upper bound.
            markers["brownout"] = time.time() - origin
            await asyncio.to_thread(ctx.mock.set_rules, list(BROWNOUT_RULES))
            # The controller offers no event to wait on; polling its state every 50 ms costs nothing.
            while controller.state.status != "rolled_back" and time.time() - origin < _WARMUP_S + _DEADLINE_S:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if controller.state.status == "rolled_back":
                markers["rollback decision"] = float(controller.state.history[-1]["ts"]) - origin
                await asyncio.sleep(2 * interval)  # show every call started after it going to legacy
        finally:
            stop.set()
            for task in tasks:  # in-flight uploads are of no further interest; do not wait out their retries
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    decision = markers.get("rollback decision")
    points, async_after = timeline_by_start(recorder.events(), origin=origin, decision=decision)
    ctx.data.timeline.extend(points)
    ctx.data.markers_s.update(markers)
    detail = {
        "interval_s": interval,
        "threshold_checks": controller.threshold,
        "detection_bound_s": controller.detection_bound_s,
        "workers": _WORKERS,
        "stage": _STAGE,
        "reason": controller.state.reason,
        "async_calls_started_after_rollback": async_after if decision is not None else None,
    }
    if decision is None:
        return [
            Measurement(
                "rollback.detect", None, detail, f"no rollback within {_DEADLINE_S:g} s of the brownout"
            )
        ]
    detect_s = decision - markers["brownout"]
    detail["detect_s"] = round(detect_s, 2)
    note = f"{detect_s:.1f} s against a bound of {controller.detection_bound_s:g} s"
    if async_after:
        note += f"; {async_after} async calls started after the rollback"
    return [Measurement("rollback.detect", 100 * detect_s / controller.detection_bound_s, detail, note)]
