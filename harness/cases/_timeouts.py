"""Timeouts under `flaky`: the same uploads through both arms, timeouts counted per arm.

Both arms get the same read/write timeout (`FLAKY_TIMEOUT_S`); the async arm keeps its retries: they are
part of the claim ("95 % fewer timeouts" is a promise about what the caller sees, not about one attempt).
`flaky` hangs about 0.2 % of requests, so the case needs hundreds of uploads per arm before the legacy
arm meets any timeout at all; they run in chunks, each on a fresh mock (Kimi holds at most 1000 files)
with the chunk's own chaos seed, the same for both arms.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness._context import BenchContext
from harness.cases._arms import BatchResult, run_async_batch, run_legacy_batch
from harness.report._verdict import Measurement

__all__ = ["CHUNK", "FLAKY_CONCURRENCY", "FLAKY_TIMEOUT_S", "measure_timeouts"]

FLAKY_CONCURRENCY = 16
#: Shorter than the other cases' 10 s: each hang costs one timeout, and `flaky` has hangs to spare.
FLAKY_TIMEOUT_S = 5.0
CHUNK = 250


async def _arm(ctx: BenchContext, arm: str, chunk: int, paths: list[Path]) -> BatchResult:
    await asyncio.to_thread(ctx.mock.reset)
    await asyncio.to_thread(ctx.mock.set_profile, "flaky", ctx.config.seed * 1000 + chunk)
    if arm == "legacy":
        return await run_legacy_batch(ctx, paths, concurrency=FLAKY_CONCURRENCY, timeout_s=FLAKY_TIMEOUT_S)
    return await run_async_batch(ctx, paths, concurrency=FLAKY_CONCURRENCY, timeout_s=FLAKY_TIMEOUT_S)


async def measure_timeouts(ctx: BenchContext) -> list[Measurement]:
    total = ctx.config.flaky_uploads
    paths = [ctx.files.get(16 * 1024, f"flaky-{i}.txt") for i in range(min(total, CHUNK))]
    counts = {arm: {"attempted": 0, "timeouts": 0, "errors": 0} for arm in ("legacy", "async")}
    for chunk in range((total + CHUNK - 1) // CHUNK):
        batch_paths = paths[: min(CHUNK, total - chunk * CHUNK)]
        for arm in ("legacy", "async"):
            batch = await _arm(ctx, arm, chunk, batch_paths)
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
