"""The load run's report: a table on the console, ``load-summary.json`` and ``load-report.md``.

Per phase: what Locust saw of the service (requests, failures, p50/p95, throughput), the service's RSS,
and each arm's figures from the dispatcher; then every judgement, the gate set applied and the
decision; and whether the load was one the service sustained: Locust's p50 against twice the
dispatcher's p50 plus 50 ms (above it, what Locust measured was mostly a queue in front of the arms).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from harness.load._fair import queue_check
from harness.load._figures import PhaseFigures, Tally

if TYPE_CHECKING:
    from harness.load._load import LoadConfig, LoadResult

__all__ = ["print_report", "write_reports"]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _arm_cell(tally: Tally, fallbacks: int) -> str:
    if tally.n == 0:
        return "-"
    extra = f", {fallbacks} fb" if fallbacks else ""
    return (
        f"{tally.n} · {_ms(tally.percentile_ms(50))}/{_ms(tally.percentile_ms(95))} ms · "
        f"{tally.failures} fail{extra}"
    )


def _rows(phases: tuple[PhaseFigures, ...]) -> list[list[str]]:
    rows = []
    for phase in phases:
        data = phase.to_dict()["service"]
        async_arm, legacy_arm = phase.arm("async"), phase.arm("legacy")
        rows.append(
            [
                phase.window.phase.name,
                f"{phase.seconds:.0f}",
                str(phase.service.n),
                str(phase.service.failures),
                f"{_ms(phase.service.percentile_ms(50))}/{_ms(phase.service.percentile_ms(95))}",
                f"{phase.per_s:.1f}",
                "-"
                if data["rss_mib_max"] is None
                else f"{data['rss_mib_mean']:.0f}/{data['rss_mib_max']:.0f}",
                _arm_cell(async_arm.tally, async_arm.fallbacks),
                _arm_cell(legacy_arm.tally, legacy_arm.fallbacks),
            ]
        )
    return rows


_HEADERS = [
    "phase",
    "s",
    "requests",
    "failed",
    "p50/p95 ms",
    "req/s",
    "RSS MiB mean/max",
    "async arm: n · p50/p95 · fail",
    "legacy arm: n · p50/p95 · fail",
]


def print_report(console: Console, config: LoadConfig, result: LoadResult) -> None:
    table = Table(
        title=(
            f"load: {config.scenario}, {config.users} users at {config.rate:g} req/s, {config.duration_s} s, "
            f"stage {config.stage:g}% (Locust per phase: the service; arms: the dispatcher)"
        )
    )
    for header in _HEADERS:
        table.add_column(header)
    for row in _rows(result.phases):
        table.add_row(*row)
    console.print(table)
    queue = queue_check(result.phases)
    if queue["within"] is not None:
        colour = "green" if queue["within"] else "yellow"
        console.print(
            f"Locust p50 {queue['locust_p50_ms']:.0f} ms vs 2 x (dispatcher p50 "
            f"{queue['dispatcher_p50_ms']:.0f} ms + 50 ms) = {queue['bound_ms']:.0f} ms: "
            f"[{colour}]{'within' if queue['within'] else 'above'}[/]"
        )
    console.print(
        f"uploads answered done {result.lost.checked}; lost (missing or other SHA-256) "
        f"[{'green' if result.lost.ok else 'red'}]{result.lost.lost}[/]"
    )
    console.print(f"gate set: {result.verdict.criteria.gate_set}")
    for reason in result.verdict.reasons:
        console.print(f"  - {reason}")
    console.print(f"verdict: [bold]{result.decision}[/]")
    console.print(
        f"Locust CSV/HTML, load-report.md, load-timeline.png and logs in {config.out}; "
        f"exit code {result.exit_code}"
    )


def write_reports(config: LoadConfig, result: LoadResult, timeline: Path | None) -> None:
    """``load-summary.json`` (everything, for tools) and ``load-report.md`` (for a reviewer)."""
    summary = {
        "scenario": config.scenario,
        "stage": config.stage,
        "profile": config.profile,
        "async_profile": config.async_profile,
        "legacy_profile": config.legacy_profile,
        "control_arm": config.control_arm,
        "legacy_in_thread": config.legacy_in_thread,
        "users": config.users,
        "rate_per_s": config.rate,
        "duration_s": config.duration_s,
        "warmup_s": config.warmup_s,
        "workers": config.workers,
        "locust": result.locust,
        "locust_exit": result.locust_exit,
        "uploads_done": result.lost.checked,
        "lost": result.lost.lost,
        "missing": list(result.lost.missing),
        "mismatched": dict(result.lost.mismatched),
        "phases": [p.to_dict() for p in result.phases],
        "queue": queue_check(result.phases),
        "verdict": result.verdict.to_dict(),
        "timeline": None if timeline is None else timeline.name,
        "exit_code": result.exit_code,
    }
    (config.out / "load-summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    lines = [
        f"# Load run: {config.scenario}, stage {config.stage:g}%",
        "",
        f"Profile `{config.profile}`"
        + (f", async arm +`{config.async_profile}`" if config.async_profile else "")
        + (f", legacy arm +`{config.legacy_profile}`" if config.legacy_profile else "")
        + (", A/A (both sides the async client)" if config.control_arm == "async" else "")
        + f"; {config.users} users at {config.rate:g} requests/s; {config.duration_s} s "
        f"({config.warmup_s:g} s warm-up); legacy arm "
        f"{'in a thread' if config.legacy_in_thread else 'on the event loop'}.",
        "",
        f"**Verdict: {result.decision}** (exit code {result.exit_code}); gate set: "
        f"`{result.verdict.criteria.gate_set}`.",
        "",
        "| " + " | ".join(_HEADERS) + " |",
        "|" + "---|" * len(_HEADERS),
        *("| " + " | ".join(row) + " |" for row in _rows(result.phases)),
        "",
        "## Judgements",
        "",
        *(f"- {reason}" for reason in result.verdict.reasons),
        "",
    ]
    queue = queue_check(result.phases)
    if queue["within"] is not None:
        lines += [
            f"Locust p50 {queue['locust_p50_ms']:.0f} ms; dispatcher p50 "
            f"{queue['dispatcher_p50_ms']:.0f} ms; "
            f"bound 2 x (dispatcher p50 + 50 ms) = {queue['bound_ms']:.0f} ms: "
            f"{'within' if queue['within'] else 'above'}.",
            "",
        ]
    lines.append(
        f"Uploads answered done: {result.lost.checked}; lost: {result.lost.lost}."
        + (f" Timeline: `{timeline.name}`." if timeline else "")
    )
    (config.out / "load-report.md").write_text("\n".join(lines) + "\n")
