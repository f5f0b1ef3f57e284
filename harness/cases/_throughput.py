"""Throughput and latency: both arms, each concurrency, one run, `realistic`.

At each level the two arms run back to back on the same files against the same mock, their order
alternating between levels so a slow drift of the shared machine does not always hit the same arm.
Latency percentiles pool the successful uploads of every level; both arms upload the same number of
files at each level, so the pools are weighted alike.
"""

from __future__ import annotations

import asyncio
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness._context import API_KEY, MB, BenchContext
from harness.cases._arms import BatchResult, base_url, run_async_batch, run_legacy_batch
from harness.cases._peers import children_cpu_s
from harness.cases._seams import REAL, Seams
from harness.report._series import PeerFigure, ThroughputPoint
from harness.report._verdict import Measurement
from llmfiles.observe import percentile
from llmfiles.providers import GLM
from llmfiles.transfer import AsyncFilesClient

__all__ = ["measure_throughput"]

_CEILING_FILE_SIZE = 50 * MB
_CEILING_ROUNDS = 6


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
    ceiling = await _curl_ceiling(ctx)
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
        *ceiling,
    ]


async def _curl_ceiling(ctx: BenchContext) -> list[Measurement]:
    """curl and our async client moving the same 50 MB files one at a time under `calm`: the loopback ceiling.

    Uploads, then downloads of what was uploaded, both in MB/s of the median transfer (ours / theirs,
    higher is better) and CPU seconds per GB (this process's for ours, hashing thread included; curl's
    processes' for curl). The two take turns file by file, who goes first alternating, because every
    upload is slower than the one before while the mock's disk writes back what it stored: comparing a
    batch of one against a later batch of the other measures that drift, not the clients. curl runs a
    process per file, so its start-up (timed in the same run, wall and CPU) is taken off its figures.
    """
    curl = shutil.which("curl")
    if curl is None:
        return []
    paths = [ctx.files.get(_CEILING_FILE_SIZE, f"ceiling-{i}.jsonl") for i in range(_CEILING_ROUNDS)]
    dest = ctx.workdir / "ceiling-dl"
    dest.mkdir(exist_ok=True)
    await asyncio.to_thread(ctx.mock.reset)
    startups = [await _run_cost(ctx, curl, "--version") for _ in range(3)]
    startup = _Cost(statistics.median(s.wall for s in startups), statistics.median(s.cpu for s in startups))
    costs: dict[tuple[str, str], list[_Cost]] = {}
    glm = base_url(ctx, "glm")
    ids: list[str] = []
    async with AsyncFilesClient(GLM, api_key=API_KEY, base_url=glm) as client:
        await client.list()  # open the pool: a kept-alive client is how a service uploads
        for turn, path in enumerate(paths):
            for who in ("curl", "ours") if turn % 2 == 0 else ("ours", "curl"):
                if who == "curl":
                    cost = await _run_cost(ctx, curl, *_CURL, "-F", f"file=@{path}", "-F",
                                           "purpose=batch", f"{glm}/files")  # fmt: skip
                else:
                    with _measure(ctx) as cost:
                        ids.append((await client.upload(path, purpose="batch")).file.id)
                costs.setdefault((who, "upload"), []).append(cost)
        for turn, file_id in enumerate(ids):
            for who in ("curl", "ours") if turn % 2 == 0 else ("ours", "curl"):
                if who == "curl":
                    cost = await _run_cost(ctx, curl, *_CURL, "-o", str(dest / "curl.bin"),
                                           f"{glm}/files/{file_id}/content")  # fmt: skip
                else:
                    with _measure(ctx) as cost:
                        await client.download(file_id, dest, filename="ours.bin", overwrite=True)
                costs.setdefault((who, "download"), []).append(cost)
    await asyncio.to_thread(shutil.rmtree, dest)
    mb, gb = _CEILING_FILE_SIZE / MB, _CEILING_FILE_SIZE / 1e9
    speed: list[float] = []
    cpu: list[float] = []
    for op in ("upload", "download"):
        theirs = [c.less(startup) for c in costs[("curl", op)]]
        ours = costs[("ours", op)]
        figure = PeerFigure.of_rounds(
            "curl", f"MB/s, sequential 50 MB {op}s (calm)", "MB/s",
            [mb / c.wall for c in theirs], [mb / c.wall for c in ours],
        )  # fmt: skip
        ctx.data.peers.append(figure)
        speed.append(figure.ratio)
        figure = PeerFigure.of_rounds(
            "curl", f"CPU s/GB, sequential 50 MB {op}s (calm)", "s/GB",
            [c.cpu / gb for c in theirs], [c.cpu / gb for c in ours],
        )  # fmt: skip
        ctx.data.peers.append(figure)
        cpu.append(figure.ratio)
    detail = {"rounds": _CEILING_ROUNDS, "file_mb": mb, "upload": speed[0], "download": speed[1]}
    return [
        Measurement("scale.curl-speed", min(speed), detail),
        Measurement("scale.curl-cpu", max(cpu), {**detail, "upload": cpu[0], "download": cpu[1]}),
    ]


@dataclass(slots=True)
class _Cost:
    """Wall seconds and CPU seconds of one transfer."""

    wall: float = 0.0
    cpu: float = 0.0

    def less(self, other: _Cost) -> _Cost:
        return _Cost(max(self.wall - other.wall, 1e-9), max(self.cpu - other.cpu, 0.0))


@contextmanager
def _measure(ctx: BenchContext) -> Iterator[_Cost]:
    """Wall and CPU (every thread of this process) of the block; the mock runs in its own process."""
    cost = _Cost()
    started, cpu = ctx.clock(), time.process_time()
    yield cost
    cost.wall, cost.cpu = ctx.clock() - started, time.process_time() - cpu


_CURL = ("-sS", "--fail", "-o", "/dev/null", "-H", f"Authorization: Bearer {API_KEY}")
"""curl's options for every transfer; the operation's own follow (a later ``-o`` wins)."""


async def _run_cost(ctx: BenchContext, *command: str) -> _Cost:
    """Wall-clock and CPU seconds of one run of `command` (its CPU from the children's rusage)."""
    before = children_cpu_s()
    started = ctx.clock()
    process = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.DEVNULL)
    await process.wait()
    return _Cost(ctx.clock() - started, children_cpu_s() - before)
