"""Rollback case: a brownout injected under load; how long until the real controller rolls back.

The real `RolloutController` checks every `rollback_interval_s` over the real `Recorder` fed by the real
dispatcher, uploading to the mock in another process. The injected brownout is the shipped profile's
latency with enough 503s that the async arm's error rate, after its own retries, breaches the rollback
rule (errors > 5 %): the shipped `brownout` (20 % 503s) is absorbed by three retries and is not a
rollback case at all, which is the point of retries. The measured time runs from the profile switch to
the controller's rollback; the figure is the claim's, the gates' rules are not tuned here.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from harness._context import API_KEY, BenchContext
from harness._wiring import StaticFlags, make_dispatcher
from harness.cases._arms import TIMEOUT_S, base_url
from harness.cases._seams import REAL, Seams
from harness.report._series import TimelinePoint
from harness.report._verdict import Measurement
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import Recorder
from llmfiles.providers import KIMI
from llmfiles.rollout import DEFAULT_GATES, FlagState, OverridableFlagSource
from llmfiles.transfer import AsyncFilesClient, TransferSettings

__all__ = ["BROWNOUT_RULES", "measure_rollback"]

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
    start = ctx.clock()
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

        async def sample() -> None:
            while not stop.is_set():
                await asyncio.sleep(interval / 2)
                t = ctx.clock() - start
                window = recorder.compare(window_s=interval)
                calls = window.candidate.count + window.control.count
                ctx.data.timeline.append(
                    TimelinePoint(t, "async success rate", window.candidate.success_rate)
                )
                ctx.data.timeline.append(
                    TimelinePoint(
                        t, "share of calls on async", window.candidate.count / calls if calls else 0.0
                    )
                )

        tasks = [asyncio.create_task(worker(i)) for i in range(_WORKERS)]
        tasks += [asyncio.create_task(controller.run(stop)), asyncio.create_task(sample())]
        try:
            await asyncio.sleep(_WARMUP_S)
            await asyncio.to_thread(ctx.mock.set_rules, list(BROWNOUT_RULES))
            markers["brownout"] = ctx.clock() - start
            # The controller offers no event to wait on; polling its state every 50 ms costs nothing.
            while controller.state.status != "rolled_back" and ctx.clock() - start < _WARMUP_S + _DEADLINE_S:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            if controller.state.status == "rolled_back":
                markers["rollback"] = ctx.clock() - start
                await asyncio.sleep(2 * interval)  # show the async share falling after it
        finally:
            stop.set()
            for task in tasks:  # in-flight uploads are of no further interest; do not wait out their retries
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    ctx.data.markers_s.update(markers)
    detail = {
        "interval_s": interval,
        "threshold_checks": controller.threshold,
        "detection_bound_s": controller.detection_bound_s,
        "workers": _WORKERS,
        "stage": _STAGE,
        "reason": controller.state.reason,
    }
    if "rollback" not in markers:
        return [
            Measurement(
                "rollback.detect", None, detail, f"no rollback within {_DEADLINE_S:g} s of the brownout"
            )
        ]
    return [Measurement("rollback.detect", markers["rollback"] - markers["brownout"], detail)]
