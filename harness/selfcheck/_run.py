"""``python -m harness bench --self-check``: every negative control measured once; each must FAIL.

The controls run against one fresh mock provider, one measurement per distinct (case, broken variant),
exactly as the bench runs the real parts. A control whose verdict is PASS proves its claim cannot fail;
one that is UNMEASURED proves nothing either: both make the self-check exit 1.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import structlog
from rich.console import Console
from rich.table import Table

from harness._bench import Case, run_cases
from harness._context import BenchConfig, BenchContext, bench_context
from harness.report._claims import CLAIMS, claim_by_id
from harness.report._console import progress_display
from harness.report._verdict import Measurement, Outcome, Verdict, judge
from harness.selfcheck._controls import CONTROLS, Control
from llmfiles.observe import configure_logging

__all__ = [
    "SPLIT_KEYS",
    "ControlResult",
    "control_config",
    "controls_table",
    "run_controls",
    "run_self_check",
    "uncovered_claims",
]

#: Keys of the split controls' runs.
SPLIT_KEYS = 100_000


@dataclass(frozen=True, slots=True)
class ControlResult:
    """A control, the verdict its broken variant got, and what its run cost.

    Args:
        control: the control.
        verdict: its claim judged on the broken variant's measurement.
        seconds: wall seconds of the run that measured it, on the first control that run settled; None
            on the others of the same run (their time is already counted there).
    """

    control: Control
    verdict: Verdict
    seconds: float | None = None

    @property
    def ok(self) -> bool:
        """True when the claim failed as it must."""
        return self.verdict.outcome is Outcome.FAIL


def control_config(config: BenchConfig) -> BenchConfig:
    """What the controls run at, in either mode: the quick bench's sizes and counts, some cut further.

    Each break fails at these sizes by a wide margin (harness/README.md has the figures); the full
    bench's only make the run longer (its 1 GiB whole-file upload does not even reach the mock whole).
    `config` keeps its mode (which controls run), output directory and seed. Cut further: a broken
    bucketing fails by orders of magnitude (p = 0, most keys moved), so 10^5 keys show it in a fifth of
    the time 10^6 take (the split controls run three times); the scale case runs its top level only,
    the stall claim's (the lead claim takes the worst level, so one level behind is enough).
    """
    quick = BenchConfig.for_mode(quick=True, out=config.out, seed=config.seed)
    return dataclasses.replace(
        quick,
        quick=config.quick,
        split_keys=min(quick.split_keys, SPLIT_KEYS),
        scale_levels=quick.scale_levels[-1:],
    )


def uncovered_claims(controls: Sequence[Control] = CONTROLS) -> list[str]:
    """Claims of the table that no control breaks."""
    covered = {control.claim for control in controls}
    return [claim.id for claim in CLAIMS if claim.id not in covered]


async def run_controls(
    ctx: BenchContext, controls: Sequence[Control], reporter: object
) -> list[ControlResult]:
    """Run each distinct (measure, seams) once; judge every control on its claim's measurement."""
    runs: dict[object, list[Control]] = {}
    for control in controls:
        runs.setdefault(control.run_key, []).append(control)
    results: list[ControlResult] = []
    for group in runs.values():
        first = group[0]
        claims = tuple(dict.fromkeys(control.claim for control in group))

        async def measure(context: BenchContext, control: Control = first) -> list[Measurement]:
            return await control.measure(context, seams=control.seams)

        case = Case(f"{first.measure.__name__.removeprefix('measure_')}: {first.variant}", claims, measure)
        started = ctx.clock()
        measurements = await run_cases(ctx, [case], reporter)  # type: ignore[arg-type]
        seconds = ctx.clock() - started
        latest = {m.claim_id: m for m in measurements}
        results += [
            ControlResult(
                control,
                judge(claim_by_id(control.claim), latest.get(control.claim)),
                seconds if index == 0 else None,
            )
            for index, control in enumerate(group)
        ]
    return results


def controls_table(results: Sequence[ControlResult], missing: Sequence[str]) -> Table:
    """A row a control: claim, broken variant, measured, verdict (marked unless FAIL), its run's seconds."""
    table = Table(title="negative controls (each must FAIL)")
    for column in ("claim", "broken variant", "measured", "verdict"):
        table.add_column(column, overflow="fold")
    table.add_column("s", justify="right")
    for result in results:
        outcome = result.verdict.outcome
        style = "bold green" if result.ok else "bold red"
        mark = "" if result.ok else "  <- must FAIL"
        table.add_row(
            result.control.claim,
            result.control.variant,
            result.verdict.measured,
            f"[{style}]{outcome}{mark}[/]",
            "same run" if result.seconds is None else f"{result.seconds:.0f}",
        )
    for claim_id in missing:
        table.add_row(claim_id, "[yellow]no control[/]", "", "", "")
    return table


def run_self_check(config: BenchConfig, console: Console, controls: Sequence[Control] = CONTROLS) -> int:
    """Measure every control (the quick ones with ``config.quick``); 0 when each FAILs, 1 otherwise."""
    started = time.monotonic()
    chosen = [control for control in controls if control.quick or not config.quick]
    config = control_config(config)
    config.out.mkdir(parents=True, exist_ok=True)
    with (config.out / "self-check.log").open("w", encoding="utf-8") as log_file:
        configure_logging(level=logging.INFO, json=True, file=log_file)
        try:
            results = _measure(config, chosen, console)
        finally:
            structlog.reset_defaults()
    skipped = [c.claim for c in controls if c not in chosen]
    missing = [claim for claim in uncovered_claims(controls) if claim not in skipped]
    table = controls_table(results, missing)
    console.print(table)
    seconds = time.monotonic() - started
    passed = [r for r in results if not r.ok]
    summary = (
        f"{len(results) - len(passed)} of {len(results)} controls failed as they must, in {seconds:.0f} s"
    )
    if skipped:
        summary += f"; not in --quick: {', '.join(dict.fromkeys(skipped))}"
    console.print(summary)
    with (config.out / "self-check.txt").open("w", encoding="utf-8") as text:
        Console(file=text, width=140, no_color=True).print(table, summary)
    return 1 if passed else 0


def _measure(config: BenchConfig, controls: Sequence[Control], console: Console) -> list[ControlResult]:
    runs = len({control.run_key for control in controls})
    with (
        bench_context(config, "llmfiles-selfcheck-") as ctx,
        progress_display(console, total=runs) as reporter,
    ):
        return asyncio.run(run_controls(ctx, controls, reporter))
