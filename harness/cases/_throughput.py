"""Throughput and latency: both arms, each concurrency, one run, `realistic`.

At each level the two arms run back to back on the same files against the same mock, their order
alternating between levels so a slow drift of the shared machine does not always hit the same arm.
Latency percentiles pool the successful uploads of every level; both arms upload the same number of
files at each level, so the pools are weighted alike.
"""

from __future__ import annotations

import asyncio

from harness._context import BenchContext
from harness.cases._arms import BatchResult, run_async_batch, run_legacy_batch
from harness.cases._seams import REAL, Seams
from harness.report._series import ThroughputPoint
from harness.report._verdict import Measurement
from llmfiles.observe import percentile

__all__ = ["measure_throughput"]


def _point(batch: BatchResult) -> ThroughputPoint:
    return ThroughputPoint(
        batch.arm, batch.concurrency, len(batch.done), batch.bytes, batch.seconds, len(batch.errors)
    )


def _drop(ours: float | None, theirs: float | None) -> float:
    """How much lower `ours` is than `theirs`, in percent; NaN when either arm has no successes."""
    return (1 - ours / theirs) * 100 if ours is not None and theirs else float("nan")


async def measure_throughput(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    config = ctx.config
    paths = [ctx.files.get(config.throughput_file_size, f"tp-{i}.txt") for i in range(config.files_per_level)]
    batches: dict[str, list[BatchResult]] = {"legacy": [], "async": []}
    for index, level in enumerate(config.concurrency_levels):
        await asyncio.to_thread(ctx.mock.reset)
        await asyncio.to_thread(ctx.mock.set_profile, "realistic")
        order = ("legacy", "async") if index % 2 == 0 else ("async", "legacy")
        for arm in order:
            if arm == "legacy":
                batch = await run_legacy_batch(ctx, paths, concurrency=level)
            else:
                batch = await run_async_batch(ctx, paths, concurrency=level, client_class=seams.client)
            batches[arm].append(batch)
            ctx.data.throughput.append(_point(batch))
    await asyncio.to_thread(ctx.mock.set_profile, "calm")

    top = {arm: runs[-1] for arm, runs in batches.items()}
    # files/s ratio; both arms attempted the same files, so failures count against the arm that had them.
    files_ratio = (
        _point(top["async"]).files_per_s / _point(top["legacy"]).files_per_s
        if _point(top["legacy"]).files_per_s > 0
        else float("nan")
    )
    latency = {arm: [s for b in runs for s in b.latencies_s] for arm, runs in batches.items()}
    ctx.data.latency_s.update(latency)
    pct = {arm: {q: percentile(samples, q) for q in (50, 95, 99)} for arm, samples in latency.items()}
    level = config.concurrency_levels[-1]
    detail_tp = {
        "concurrency": level,
        "async_files_per_s": round(_point(top["async"]).files_per_s, 2),
        "legacy_files_per_s": round(_point(top["legacy"]).files_per_s, 2),
        "async_mb_per_s": round(_point(top["async"]).mb_per_s, 2),
        "legacy_mb_per_s": round(_point(top["legacy"]).mb_per_s, 2),
        # The old service ran the legacy client one call at a time on its loop: that is this figure.
        "async_top_vs_legacy_sequential": round(
            _point(top["async"]).files_per_s / max(_point(batches["legacy"][0]).files_per_s, 1e-9), 2
        ),
        "file_size_bytes": config.throughput_file_size,
        "files_per_level": config.files_per_level,
    }
    ms = {
        arm: {f"p{q}_ms": None if v is None else round(v * 1000, 1) for q, v in qs.items()}
        for arm, qs in pct.items()
    }
    return [
        Measurement(
            "throughput.ratio", files_ratio, detail_tp, "legacy gets one thread per concurrent upload"
        ),
        Measurement("latency.p50-drop", _drop(pct["async"][50], pct["legacy"][50]), ms),
        Measurement("latency.p99-drop", _drop(pct["async"][99], pct["legacy"][99]), ms),
    ]
