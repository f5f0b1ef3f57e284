"""Concurrency case: 128 uploads started at once through one client, then the nothing-lost check."""

from __future__ import annotations

import asyncio

from harness._context import BenchContext
from harness._lost import find_lost
from harness.cases._arms import run_async_batch, settled_journal
from harness.cases._seams import REAL, Seams
from harness.report._verdict import Measurement

__all__ = ["measure_concurrency"]


async def measure_concurrency(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    count = ctx.config.concurrent_uploads
    paths = [ctx.files.get(32 * 1024 + i, f"conc-{i}.txt") for i in range(count)]
    await asyncio.to_thread(ctx.mock.reset)
    batch = await run_async_batch(ctx, paths, concurrency=count, client_class=seams.client)
    journal = await settled_journal(ctx)
    lost = find_lost(batch.done, journal)
    detail = {
        "uploads": count,
        "succeeded": len(batch.done),
        "errors": [type(e).__name__ for e in batch.errors],
    }
    return [
        Measurement("concurrency.success", len(batch.done) / count * 100, detail),
        Measurement(
            "concurrency.lost",
            lost.lost,
            {"checked": lost.checked, "missing": list(lost.missing), "mismatched": dict(lost.mismatched)},
        ),
    ]
