"""The loopback ceiling: our client against curl, one 50 MB transfer at a time, speed and CPU per byte.

curl is the native reference: no event loop, no hashing, C all the way. Ours hashes every byte both
ways: an upload returns the SHA-256 of what it sent, a download checks what it received against the
SHA-256 the upload returned (``expected_sha256``). The claims ask for 0.9x curl's speed and at most 2x its
CPU per GB, uploads and downloads alike (the worse of the two is judged). Each download turn also times
SHA-256 alone over as many bytes in memory: the speed and CPU per GB no hashing client can beat, shown
next to curl's download in the peers table.
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from harness._context import API_KEY, MB, BenchContext
from harness.cases._arms import base_url
from harness.cases._peers import children_cpu_s
from harness.cases._seams import REAL, Seams
from harness.report._series import PeerFigure
from harness.report._verdict import Measurement
from llmfiles.providers import GLM

__all__ = ["measure_ceiling"]

_CEILING_FILE_SIZE = 50 * MB
_CEILING_ROUNDS = 6


async def measure_ceiling(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    """curl and our async client (`seams.client`) moving the same 50 MB files one at a time under `calm`.

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
    uploaded: list[tuple[str, str]] = []  # (file id, SHA-256): ours checks its downloads against it
    async with seams.client(GLM, api_key=API_KEY, base_url=glm) as client:
        await client.list()  # open the pool: a kept-alive client is how a service uploads
        for turn, path in enumerate(paths):
            for who in ("curl", "ours") if turn % 2 == 0 else ("ours", "curl"):
                if who == "curl":
                    cost = await _run_cost(ctx, curl, *_CURL, "-F", f"file=@{path}", "-F",
                                           "purpose=batch", f"{glm}/files")  # fmt: skip
                else:
                    with _measure(ctx) as cost:
                        result = await client.upload(path, purpose="batch")
                        uploaded.append((result.file.id, result.sha256))
                costs.setdefault((who, "upload"), []).append(cost)
        for turn, (file_id, sha256) in enumerate(uploaded):
            for who in ("curl", "ours") if turn % 2 == 0 else ("ours", "curl"):
                if who == "curl":
                    cost = await _run_cost(ctx, curl, *_CURL, "-o", str(dest / "curl.bin"),
                                           f"{glm}/files/{file_id}/content")  # fmt: skip
                else:
                    with _measure(ctx) as cost:
                        await client.download(
                            file_id, dest, filename="ours.bin", overwrite=True, expected_sha256=sha256
                        )
                costs.setdefault((who, "download"), []).append(cost)
            costs.setdefault(("sha256", "alone"), []).append(await asyncio.to_thread(_sha256_alone))
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
    # The cap of any client that hashes each byte, next to curl's download (the faster of its two).
    alone = costs[("sha256", "alone")]
    curl_download = [c.less(startup) for c in costs[("curl", "download")]]
    floor_speed = PeerFigure.of_rounds(
        "curl", f"MB/s, sequential 50 MB downloads vs SHA-256 alone over {mb:.0f} MB in memory", "MB/s",
        [mb / c.wall for c in curl_download], [mb / c.wall for c in alone],
    )  # fmt: skip
    floor_cpu = PeerFigure.of_rounds(
        "curl", f"CPU s/GB, sequential 50 MB downloads vs SHA-256 alone over {mb:.0f} MB in memory", "s/GB",
        [c.cpu / gb for c in curl_download], [c.cpu / gb for c in alone],
    )  # fmt: skip
    ctx.data.peers += [floor_speed, floor_cpu]
    detail = {
        "rounds": _CEILING_ROUNDS,
        "file_mb": mb,
        "upload": speed[0],
        "download": speed[1],
        "sha256_alone_mb_s": floor_speed.ours,
        "sha256_alone_cpu_s_per_gb": floor_cpu.ours,
    }
    return [
        Measurement("scale.curl-speed", min(speed), detail),
        Measurement("scale.curl-cpu", max(cpu), {**detail, "upload": cpu[0], "download": cpu[1]}),
    ]


def _sha256_alone() -> _Cost:
    """SHA-256 over `_CEILING_FILE_SIZE` bytes already in memory, in this (worker) thread: no I/O at all.

    No client that checks a SHA-256 of every byte can move bytes faster or for less CPU than this, so
    it says how much of the curl claims' gap any hashing client must keep.
    """
    block = bytes(MB)
    digest = hashlib.sha256()
    started, cpu = time.perf_counter(), time.thread_time()
    for _ in range(_CEILING_FILE_SIZE // MB):
        digest.update(block)
    return _Cost(time.perf_counter() - started, time.thread_time() - cpu)


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
