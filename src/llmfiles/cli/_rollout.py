"""`llmfiles rollout`: status, evaluate, promote, rollback, with rich tables.

The commands work on the same files a running service uses: the state file (`RolloutController`'s) and
the flag file (`FileFlagSource`'s), both replaced atomically, so a `rollback` here reaches every process
on the host on its next upload. Figures come from an `EventLog` file (``--events``).

Exit codes of `evaluate` and `promote`: 0 PROMOTE (or promoted), 3 HOLD (or refused), 4 ROLLBACK; 2 is
a usage or configuration error.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from llmfiles._errors import ConfigError
from llmfiles.observe import Comparison, Recorder, configure_logging, read_events
from llmfiles.rollout import (
    DEFAULT_GATES,
    OFF,
    Decision,
    EnvFlagSource,
    FileFlagSource,
    FlagSource,
    GateContext,
    GateTable,
    GateVerdict,
    LatencySamples,
    OverridableFlagSource,
    RolloutController,
    StateStore,
    load_settings,
)
from llmfiles.rollout import evaluate as evaluate_gates

rollout_app = typer.Typer(no_args_is_help=True, help="Inspect and steer the async-upload rollout.")


@rollout_app.callback()
def _logging() -> None:
    # The tables are the output; the library's own log lines are diagnostics, so stderr and warnings only.
    configure_logging(level=logging.WARNING, json=False, file=sys.stderr)


_EXIT = {Decision.PROMOTE: 0, Decision.HOLD: 3, Decision.ROLLBACK: 4}

StateOpt = Annotated[Path | None, typer.Option("--state", help="State file (default: LLMFILES_STATE_FILE).")]
FlagsOpt = Annotated[Path | None, typer.Option("--flags", help="Flag file (default: LLMFILES_FLAG_FILE).")]
GatesOpt = Annotated[Path | None, typer.Option("--gates", help="TOML stage table overriding DESIGN.md's.")]
SoakOpt = Annotated[float | None, typer.Option("--soak", help="Override every stage's soak, in seconds.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _fail(exc: Exception) -> typer.Exit:
    _console().print(f"[red]error:[/red] {exc}")
    return typer.Exit(code=2)


def _gates(path: Path | None, soak: float | None) -> GateTable:
    table = GateTable.from_toml(path) if path is not None else DEFAULT_GATES
    return table.with_soak(soak) if soak is not None else table


def _controller(
    state: Path | None, flags: Path | None, gates: GateTable, events: Path | None
) -> tuple[RolloutController, FlagSource]:
    settings = load_settings()
    flag_file = flags if flags is not None else settings.flag_file
    source: FlagSource = FileFlagSource(flag_file) if flag_file is not None else EnvFlagSource(settings)
    loaded = list(read_events(events)) if events is not None else []
    # Replay the log as of its last event, and keep all of it: the log is the evidence to judge, however
    # long the live window is.
    end = max((event.finished_at for event in loaded), default=time.time())
    start = min((event.ts for event in loaded), default=end)
    recorder = Recorder(window_s=max(settings.window_s, end - start + 1.0), clock=lambda: end)
    recorder.extend(loaded)
    controller = RolloutController(
        recorder=recorder,
        flags=OverridableFlagSource(source),
        store=StateStore(state if state is not None else settings.state_file),
        gates=gates,
        interval_s=settings.check_interval_s,
        threshold=settings.rollback_threshold,
    )
    return controller, source


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, tz=dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if ts else "-"


def _fmt(value: float | int | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "pct":
        return f"{value:.2%}"
    if kind == "s":
        return f"{value * 1000:.1f} ms"
    if kind == "rate":
        return f"{value:.2f}/s"
    return f"{value}"


_ROWS = (
    ("count", "calls", "int"),
    ("success_rate", "success", "pct"),
    ("error_rate", "errors", "pct"),
    ("timeout_rate", "timeouts", "pct"),
    ("fallback_rate", "fallbacks", "pct"),
    ("p50_s", "p50", "s"),
    ("p95_s", "p95", "s"),
    ("p99_s", "p99", "s"),
    ("throughput_per_s", "throughput", "rate"),
)


def _comparison_table(window: Comparison) -> Table:
    table = Table(title="Arms side by side")
    for column in ("figure", window.candidate.arm, window.control.arm, "change"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    cand, ctrl = window.candidate.figures(), window.control.figures()
    for name, label, kind in _ROWS:
        change = window.relative.get(name)
        table.add_row(
            label, _fmt(cand[name], kind), _fmt(ctrl[name], kind), "-" if change is None else f"{change:+.1%}"
        )
    return table


def _verdict_table(verdict: GateVerdict) -> Table:
    colour = {"PROMOTE": "green", "HOLD": "yellow", "ROLLBACK": "red"}[verdict.decision.value]
    table = Table(title=f"Stage {verdict.stage}: [{colour}]{verdict.decision.value}[/{colour}]")
    table.add_column("reason")
    for reason in verdict.reasons:
        table.add_row(reason)
    return table


@rollout_app.command()
def status(state: StateOpt = None, flags: FlagsOpt = None, as_json: JsonOpt = False) -> None:
    """Show the stage, the flags in force and the last changes."""
    try:
        controller, source = _controller(state, flags, DEFAULT_GATES, None)
        flag_state = source.snapshot()
    except ConfigError as exc:
        raise _fail(exc) from exc
    current = controller.state
    if as_json:
        typer.echo(json.dumps({"state": current.to_dict(), "flags": flag_state.to_dict()}, indent=2))
        return
    table = Table(title="Rollout")
    table.add_column("setting")
    table.add_column("value")
    table.add_row("stage", current.stage)
    table.add_row("status", current.status)
    table.add_row("stage started", _when(current.stage_started_at))
    table.add_row("baseline p95", _fmt(current.baseline_p95_s, "s"))
    table.add_row("last reason", current.reason or "-")
    table.add_row("flags: enabled", str(flag_state.enabled))
    table.add_row("flags: percent", f"{flag_state.percent:g} %")
    table.add_row("flags: fallback", str(flag_state.fallback))
    console = _console()
    console.print(table)
    if current.history:
        history = Table(title="Last changes")
        for column in ("when", "action", "from", "to", "trigger", "reason"):
            history.add_column(column)
        for entry in current.history[-10:]:
            history.add_row(
                _when(float(entry.get("ts", 0))),
                *(str(entry.get(key) or "-") for key in ("action", "from", "to", "trigger", "reason")),
            )
        console.print(history)


@rollout_app.command()
def evaluate(
    events: Annotated[Path, typer.Option("--events", help="EventLog JSONL file to judge.")],
    stage: Annotated[
        str | None, typer.Option("--stage", help="Stage to judge (default: the current one).")
    ] = None,
    state: StateOpt = None,
    flags: FlagsOpt = None,
    gates: GatesOpt = None,
    soak: SoakOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Judge the events against a stage's gates: PROMOTE, HOLD or ROLLBACK, with the figures.

    The whole log is judged and its time span counts as the soak; --soak SECONDS sets the soak a stage
    requires (load runs shrink it to their length).
    """
    try:
        table = _gates(gates, soak)
        controller, _ = _controller(state, flags, table, events)
        name = stage if stage is not None else controller.state.stage
        if name == OFF:
            raise ConfigError(f"stage={name!r}: the rollout is off; pass --stage with the stage to judge")
        gate = table.stage(name)
    except ConfigError as exc:
        raise _fail(exc) from exc
    window = controller.recorder.compare()
    replayed = controller.recorder.events()
    span = max((e.finished_at for e in replayed), default=0.0) - min((e.ts for e in replayed), default=0.0)
    context = GateContext(soak_s=max(span, 0.0), baseline_p95_s=controller.state.baseline_p95_s)
    latencies = LatencySamples.from_events(replayed)
    verdict = evaluate_gates(
        gate, window, latencies=latencies, rules=table.rules, context=context, gate_set=table.name
    )
    if as_json:
        typer.echo(json.dumps(verdict.to_dict(), indent=2))
    else:
        console = _console()
        console.print(_comparison_table(window))
        console.print(_verdict_table(verdict))
    raise typer.Exit(code=_EXIT[verdict.decision])


@rollout_app.command()
def promote(
    events: Annotated[
        Path | None, typer.Option("--events", help="EventLog JSONL file: the evidence.")
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Promote even if the gates do not say PROMOTE.")
    ] = False,
    state: StateOpt = None,
    flags: FlagsOpt = None,
    gates: GatesOpt = None,
    soak: SoakOpt = None,
) -> None:
    """Move to the next stage when the gates say PROMOTE; shows the verdict either way."""
    try:
        controller, _ = _controller(state, flags, _gates(gates, soak), events)
        result = controller.promote(force=force)
    except ConfigError as exc:
        raise _fail(exc) from exc
    console = _console()
    if result.verdict is not None:
        console.print(_verdict_table(result.verdict))
    target = result.to_stage or "-"
    if result.applied:
        console.print(f"[green]promoted[/green] {result.from_stage} -> {target}: {result.reason}")
        return
    console.print(f"[yellow]refused[/yellow] {result.from_stage} -> {target}: {result.reason}")
    raise typer.Exit(code=3)


@rollout_app.command()
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded in the state history.")],
    state: StateOpt = None,
    flags: FlagsOpt = None,
) -> None:
    """Send every upload to the legacy arm now (percentage 0 in the flag file) and record why."""
    if not reason.strip():
        raise _fail(ConfigError(f"reason={reason!r} must say why the rollout is rolled back"))
    try:
        controller, source = _controller(state, flags, DEFAULT_GATES, None)
        previous = controller.state.stage
        controller.rollback(reason, trigger="manual")
    except ConfigError as exc:
        raise _fail(exc) from exc
    console = _console()
    console.print(f"[red]rolled back[/red] {previous} -> {OFF}: {reason}")
    if not isinstance(source, FileFlagSource):
        console.print(
            "[yellow]no flag file (LLMFILES_FLAG_FILE): other processes keep their percentage; "
            "set LLMFILES_ROLLOUT_PERCENT=0 (or the OpenFeature flag) and restart them[/yellow]"
        )
