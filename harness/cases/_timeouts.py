"""Timeouts: the rate the caller sees under `stalls`, and the reduction against legacy under `flaky`.

Both arms get the same read/write timeout (`TIMEOUT_S`); the async arm keeps its retries: they are part
of both claims ("< 1 % timeouts", "95 % fewer timeouts" are promises about what the caller sees, not about
one attempt).

- ``timeouts.rate`` is measured under `stalls`: the realistic latency, plus hangs and uploads read at
  1 KB/s, so a client that waits and does not retry times out on several % of its uploads. The legacy
  arm runs the same uploads: when it meets no more than the claim's 1 %, the profile did not bite and the
  rate is reported unmeasured rather than passed. (Under `realistic` alone, with latency capped at 5 s
  against a 10 s timeout, any client scores 0 %.)
- ``timeouts.reduction``: `flaky` hangs about 0.2 % of requests, so the case needs hundreds of uploads
  per arm before the legacy arm meets any timeout at all; they run in chunks, each on a fresh mock (Kimi
  holds at most 1000 files) with the chunk's own chaos seed, the same for both arms.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness._context import BenchContext
from harness.cases._arms import BatchResult, run_async_batch, run_legacy_batch
from harness.cases._seams import REAL, Seams
from harness.report._verdict import Measurement

__all__ = [
    "CHUNK",
    "FLAKY_CONCURRENCY",
    "STALLS_UPLOADS",
    "TIMEOUT_S",
    "measure_stalls",
    "measure_timeouts",
]

FLAKY_CONCURRENCY = 16
#: Shorter than the other cases' 10 s: each hang costs one timeout, and both profiles have hangs to spare.
TIMEOUT_S = 5.0
CHUNK = 250
#: Uploads per arm under `stalls`: about 17 hangs or slow bodies expected, against the 1 % bar's 2.5.
STALLS_UPLOADS = 250
_ASYNC_RETRIES = 3


async def _arm(
    ctx: BenchContext, arm: str, profile: str, seed: int, paths: list[Path], seams: Seams
) -> BatchResult:
    await asyncio.to_thread(ctx.mock.reset)
    await asyncio.to_thread(ctx.mock.set_profile, profile, seed)
    if arm == "legacy":
        return await run_legacy_batch(ctx, paths, concurrency=FLAKY_CONCURRENCY, timeout_s=TIMEOUT_S)
    return await run_async_batch(
        ctx,
        paths,
        concurrency=FLAKY_CONCURRENCY,
        timeout_s=TIMEOUT_S,
        retries=_ASYNC_RETRIES,
        client_class=seams.client,
    )


def _rate(batch: BatchResult) -> float:
    return batch.timeouts / batch.attempted * 100 if batch.attempted else float("nan")


async def measure_stalls(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    paths = [ctx.files.get(16 * 1024, f"stalls-{i}.txt") for i in range(STALLS_UPLOADS)]
    batches = {
        arm: await _arm(ctx, arm, "stalls", ctx.config.seed, paths, seams) for arm in ("legacy", "async")
    }
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    detail = {
        "profile": "stalls",
        "timeout_s": TIMEOUT_S,
        "concurrency": FLAKY_CONCURRENCY,
        **{
            arm: {"attempted": b.attempted, "timeouts": b.timeouts, "errors": len(b.errors)}
            for arm, b in batches.items()
        },
        "timeout_pct": {arm: round(_rate(b), 3) for arm, b in batches.items()},
    }
    if not _rate(batches["legacy"]) > 1:
        note = f"the legacy arm timed out on {_rate(batches['legacy']):.2g} %: `stalls` did not bite"
        return [Measurement("timeouts.rate", None, detail, note)]
    return [Measurement("timeouts.rate", _rate(batches["async"]), detail)]


async def measure_timeouts(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    total = ctx.config.flaky_uploads
    paths = [ctx.files.get(16 * 1024, f"flaky-{i}.txt") for i in range(min(total, CHUNK))]
    counts = {arm: {"attempted": 0, "timeouts": 0, "errors": 0} for arm in ("legacy", "async")}
    for chunk in range((total + CHUNK - 1) // CHUNK):
        batch_paths = paths[: min(CHUNK, total - chunk * CHUNK)]
        for arm in ("legacy", "async"):
            batch = await _arm(ctx, arm, "flaky", ctx.config.seed * 1000 + chunk, batch_paths, seams)
            counts[arm]["attempted"] += batch.attempted
            counts[arm]["timeouts"] += batch.timeouts
            counts[arm]["errors"] += len(batch.errors)
    await asyncio.to_thread(ctx.mock.set_profile, "calm")
    rates = {
        arm: c["timeouts"] / c["attempted"] * 100 if c["attempted"] else float("nan")
        for arm, c in counts.items()
    }
    detail = {
        "concurrency": FLAKY_CONCURRENCY,
        **{f"{arm}": c for arm, c in counts.items()},
        "timeout_pct": {arm: round(rate, 3) for arm, rate in rates.items()},
    }
    if rates["legacy"] > 0:
        return [Measurement("timeouts.reduction", (1 - rates["async"] / rates["legacy"]) * 100, detail)]
    note = f"the legacy arm met no timeout in {counts['legacy']['attempted']} uploads under `flaky`"
    return [Measurement("timeouts.reduction", None, detail, note)]
