"""Overhead case: CPU time the rollout's bookkeeping adds to an upload.

Per upload the service sanitises the name, hashes the key, builds an `Event`, and hands it to the
`Recorder` and to `RolloutMetrics`. That work is timed with the thread's CPU clock and divided by the
process's CPU time for one real 1 MB upload: the loop thread plus the worker thread that reads and hashes
the file. The mock runs in its own process, so none of its CPU is in the denominator.

A virtual machine's CPU clock drifts by 2x over seconds (frequency, steal time), so the two are measured
interleaved, one bookkeeping batch after each upload, after a warm-up batch: drift then moves both sides
of the ratio alike instead of whichever happened to run in a slow second.
"""

from __future__ import annotations

import asyncio
import time

from harness._context import API_KEY, MB, BenchContext
from harness.cases._arms import base_url
from harness.cases._seams import REAL, Seams
from harness.report._verdict import Measurement
from llmfiles.observe import Event, Recorder, RolloutMetrics, hash_key
from llmfiles.providers import KIMI
from llmfiles.transfer import AsyncFilesClient, sanitize_filename

__all__ = ["measure_overhead"]

_UPLOADS = 20
_REPEATS = 200


def bookkeeping_cpu_s(repeats: int, recorder: Recorder, metrics: RolloutMetrics) -> float:
    """CPU seconds per upload spent on sanitising, event building, recorder and metrics."""
    started = time.thread_time()
    for i in range(repeats):
        name = sanitize_filename(f"report ({i}).pdf")
        event = Event(
            ts=time.time(),
            flag="bench",
            arm="async",
            outcome="success",
            duration_s=0.05,
            bytes=MB,
            error_type=None,
            provider="kimi",
            stage="10%",
            key_hash=hash_key(name, salt="bench"),
        )
        recorder.record(event)
        metrics.record(event)
    return (time.thread_time() - started) / repeats


async def measure_overhead(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:

    paths = [ctx.files.get(MB, f"overhead-{i}.txt") for i in range(_UPLOADS)]
    await asyncio.to_thread(ctx.mock.reset)
    recorder, metrics = seams.recorder(), RolloutMetrics()
    bookkeeping_cpu_s(_REPEATS, recorder, metrics)  # warm-up: label children, caches, first allocations
    upload_cpu = bookkeeping = 0.0
    async with AsyncFilesClient(KIMI, api_key=API_KEY, base_url=base_url(ctx, "kimi")) as client:
        await client.upload(paths[0], purpose="file-extract")  # warm the pool: a connect is not per upload
        for path in paths:
            started = time.process_time()
            await client.upload(path, purpose="file-extract")
            upload_cpu += time.process_time() - started
            bookkeeping += bookkeeping_cpu_s(_REPEATS, recorder, metrics)
    upload_cpu /= len(paths)
    bookkeeping /= len(paths)
    detail = {
        "upload_cpu_ms": round(upload_cpu * 1000, 3),
        "bookkeeping_cpu_ms": round(bookkeeping * 1000, 4),
        "uploads": _UPLOADS,
        "repeats": _REPEATS,
        "file_mb": 1,
    }
    return [Measurement("overhead.cpu", bookkeeping / upload_cpu * 100, detail)]
