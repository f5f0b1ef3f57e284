"""Single-flight case: N callers download the same file at once; the provider must see one fetch."""

from __future__ import annotations

import asyncio

from harness._context import API_KEY, MB, BenchContext
from harness.cases._arms import base_url, settled_journal
from harness.cases._seams import REAL, Seams
from harness.report._verdict import Measurement
from llmfiles.providers import GLM

__all__ = ["CALLERS", "measure_single_flight"]

CALLERS = 16


async def measure_single_flight(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:

    await asyncio.to_thread(ctx.mock.reset)
    path = ctx.files.get(8 * MB, "single-flight.jsonl")
    dest = ctx.workdir / "single-flight"
    dest.mkdir(exist_ok=True)
    async with seams.client(GLM, api_key=API_KEY, base_url=base_url(ctx, "glm")) as client:
        uploaded = await client.upload(path, purpose="batch")
        results = await asyncio.gather(
            *(client.download(uploaded.file.id, dest) for _ in range(CALLERS)), return_exceptions=True
        )
    journal = await settled_journal(ctx)
    fetches = sum(
        1
        for entry in journal
        if entry.get("operation") == "content" and entry.get("file_id") == uploaded.file.id
    )
    failures = [type(r).__name__ for r in results if isinstance(r, BaseException)]
    paths = {str(r) for r in results if not isinstance(r, BaseException)}
    detail = {"callers": CALLERS, "failures": failures, "distinct_paths": len(paths)}
    note = f"{len(failures)} caller(s) failed" if failures else ""
    return [Measurement("single-flight.fetches", fetches, detail, note)]
