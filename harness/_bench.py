"""The bench driver: start the mock, run every case, judge, report, and return the exit code.

A case that raises does not end the run: its claims become UNMEASURED with the error as the note, and
the remaining cases still run, so one broken part never hides the verdicts on the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog
from rich.console import Console

from harness._context import BenchConfig, BenchContext, bench_context
from harness.report._console import claims_table, progress_display
from harness.report._report import write_report
from harness.report._series import Collected
from harness.report._verdict import Measurement, Verdict, exit_code, judge_all
from llmfiles.observe import configure_logging

__all__ = ["Case", "run_bench", "run_cases"]

log = logging.getLogger(__name__)

Runner = Callable[[BenchContext], Awaitable[list[Measurement]]]


@dataclass(frozen=True, slots=True)
class Case:
    """One benchmark case: a name, the claims it settles, and the coroutine that measures them."""

    name: str
    claims: tuple[str, ...]
    run: Runner


class Reporter(Protocol):
    def started(self, name: str) -> None: ...
    def finished(self, name: str, ok: bool) -> None: ...


async def run_cases(ctx: BenchContext, cases: Sequence[Case], reporter: Reporter) -> list[Measurement]:
    """Run `cases` one after another (they share two cores; overlapping them would skew each other)."""
    measurements: list[Measurement] = []
    for case in cases:
        reporter.started(case.name)
        try:
            measurements += await case.run(ctx)
        except Exception as exc:  # a broken case must not hide the others' verdicts
            log.exception("bench case %s failed", case.name)
            note = f"{case.name} raised {type(exc).__name__}: {exc}"
            measurements += [Measurement.failed(claim_id, note) for claim_id in case.claims]
            reporter.finished(case.name, ok=False)
        else:
            reporter.finished(case.name, ok=True)
    return measurements


def run_bench(config: BenchConfig, cases: Sequence[Case], console: Console) -> int:
    """Measure every claim against a fresh mock provider, write the report, print the table.

    Returns:
        0 when every ``must`` claim holds, 1 otherwise.
    """
    started = time.monotonic()
    config.out.mkdir(parents=True, exist_ok=True)
    # Retries and fallbacks log by design; on the terminal they would bury the progress display.
    with (config.out / "bench.log").open("w", encoding="utf-8") as log_file:
        configure_logging(level=logging.INFO, json=True, file=log_file)
        try:
            verdicts, data = _measure(config, cases, console)
        finally:
            structlog.reset_defaults()  # the file closes here; later log lines must not go to it
    meta = {
        "mode": "quick" if config.quick else "full",
        "finished": datetime.now(UTC).isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - started, 1),
        "python": sys.version.split()[0],
        "machine": f"{platform.system()} {platform.machine()}, {_cpus()} CPUs",
    }
    files = write_report(config.out, verdicts, data, meta)
    console.print(claims_table(verdicts))
    console.print(f"report: {files.markdown} · {files.json} · {len(files.plots)} plots · log: bench.log")
    return exit_code(verdicts)


def _measure(config: BenchConfig, cases: Sequence[Case], console: Console) -> tuple[list[Verdict], Collected]:
    with (
        bench_context(config, "llmfiles-bench-") as ctx,
        progress_display(console, total=len(cases)) as reporter,
    ):
        measurements = asyncio.run(run_cases(ctx, cases, reporter))
    return judge_all(measurements), ctx.data


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
