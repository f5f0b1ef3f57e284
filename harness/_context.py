"""What every bench case gets: the run's settings, the mock provider, a scratch directory, test files.

Sizes and counts for `--quick` and the full run live in `BenchConfig.for_mode`, so a case never asks
``if quick``: it reads the figure it needs.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness._procs import MockProcess
from harness.report._series import Collected

__all__ = ["API_KEY", "MB", "BenchConfig", "BenchContext", "FileFactory", "bench_context"]

MB = 1024 * 1024
#: The mock accepts any bearer key that is not empty and does not start with "bad".
API_KEY = "bench-key"


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """Sizes, counts and levels of one bench run.

    Args:
        quick: the CI variant (within 3 minutes): fewer sizes, files and levels.
        out: directory for report.md, report.json and the plots.
        seed: seed for the mock's chaos, so two runs meet the same faults.
        memory_sizes: file sizes for the memray cases, ascending.
        concurrency_levels: levels of the throughput case, ascending.
        files_per_level: uploads per arm and level in the throughput case.
        throughput_file_size: size of each file in the throughput case.
        flaky_uploads: uploads per arm in the timeout case under `flaky`.
        concurrent_uploads: uploads started at once in the concurrency case.
        split_keys: keys hashed for the split uniformity test.
        memory_peers: also measure the openai SDK and plain httpx in the memory case (5 more probes).
        rollback_interval_s: the controller's evaluation interval in the rollback case.
        scale_levels: concurrency levels of the scale case, ascending (the last is the stall claim's).
        scale_rounds: runs per client and level in the scale case (mirrored order, medians). Three
            at least: a quick run at 150 lasts about 30 ticks, so its p99 is its worst tick, and one
            round a neighbour's burst hit must not decide the median.
        scale_min_files: transfers per run at least: low levels repeat their batch until they reach it,
            so every level's stall percentiles rest on enough ticks.
        scale_memory_full: probe memory at every scale level for every client; otherwise ours at the
            top level only.
        scale_file_size: size of each file the scale case moves.
        scale_extras: also run curl (a process per transfer) and ours on uvloop in the scale curves.
    """

    quick: bool
    out: Path
    seed: int = 0
    memory_sizes: tuple[int, ...] = (1 * MB, 50 * MB)
    # At least two waves at the top level: one wave's time is its slowest upload, mostly chaos's tail.
    concurrency_levels: tuple[int, ...] = (1, 4, 16)
    files_per_level: int = 32
    throughput_file_size: int = 256 * 1024
    flaky_uploads: int = 250
    concurrent_uploads: int = 128
    split_keys: int = 1_000_000
    memory_peers: bool = False
    rollback_interval_s: float = 2.0
    scale_levels: tuple[int, ...] = (8, 150)
    scale_rounds: int = 3
    scale_min_files: int = 32
    scale_memory_full: bool = False
    scale_file_size: int = MB // 2
    scale_extras: bool = False

    @classmethod
    def for_mode(cls, *, quick: bool, out: Path, seed: int = 0) -> BenchConfig:
        """The quick (CI) or the full configuration."""
        if quick:
            return cls(quick=True, out=out, seed=seed)
        return cls(
            quick=False,
            out=out,
            seed=seed,
            memory_sizes=(1 * MB, 10 * MB, 50 * MB, 200 * MB, 1024 * MB),
            concurrency_levels=(1, 4, 16, 64),
            files_per_level=128,
            memory_peers=True,
            flaky_uploads=1500,
            scale_levels=(1, 8, 32, 64, 150),
            scale_rounds=3,
            scale_min_files=64,
            scale_memory_full=True,
            scale_file_size=2 * MB,
            scale_extras=True,
        )


class FileFactory:
    """Creates test files of a given size once per run, with distinct content per name.

    Content is a random 1 MiB block with the chunk index and name stamped into each chunk: cheap to write
    for 1 GB, yet no two chunks or files share a SHA-256 (the registry and journal checks need that).
    """

    def __init__(self, directory: Path) -> None:
        self._dir = directory
        self._block = os.urandom(MB)
        self._made: dict[str, Path] = {}

    def get(self, size: int, name: str | None = None) -> Path:
        """A file of `size` bytes called `name` (default ``file-<size>.jsonl``); made again if deleted."""
        if size < 1:
            raise ValueError(f"size={size!r} must be at least 1 byte (providers refuse empty files)")
        name = name or f"file-{size}.jsonl"
        if name in self._made and self._made[name].exists():
            return self._made[name]
        path = self._dir / name
        tag = hashlib.sha256(name.encode()).digest()
        with path.open("wb") as handle:
            written, index = 0, 0
            while written < size:
                stamp = index.to_bytes(8, "big") + tag
                chunk = (stamp + self._block[len(stamp) :])[: size - written]
                handle.write(chunk)
                written += len(chunk)
                index += 1
        self._made[name] = path
        return path


@dataclass(slots=True)
class BenchContext:
    """Handed to every case: config, the running mock provider, scratch space, collected figures.

    Args:
        config: the run's sizes and counts.
        mock: the running `mock_provider.MockProvider` (typed loosely: the harness reaches it over HTTP).
        workdir: scratch directory, removed after the run.
        files: test-file factory inside `workdir`.
        data: where cases put the figures the plots draw.
        clock: monotonic seconds; injected so timing logic can be driven in tests.
    """

    config: BenchConfig
    mock: Any
    workdir: Path
    files: FileFactory
    data: Collected = field(default_factory=Collected)
    clock: Callable[[], float] = time.perf_counter


@contextmanager
def bench_context(config: BenchConfig, prefix: str) -> Iterator[BenchContext]:
    """A run's context: a fresh mock provider process and a scratch directory named ``<prefix>...``.

    The mock logs to ``mock.log`` in ``config.out`` and accepts files as large as the largest memory
    case's when that exceeds its own 100 MB cap. Mock and scratch directory are gone when the block ends.
    """
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        workdir = Path(tmp)
        (workdir / "files").mkdir()
        limit = max(config.memory_sizes)
        mock_process = MockProcess(
            seed=config.seed,
            data_dir=workdir / "mock",
            log_path=config.out / "mock.log",
            max_file_bytes=limit if limit > 100 * MB else None,
        )
        with mock_process as mock:
            yield BenchContext(
                config=config, mock=mock, workdir=workdir, files=FileFactory(workdir / "files")
            )
