"""`llmfiles rollout`: status, evaluate, promote, rollback, with rich tables.

The commands work on the same files a running service uses: the state file (`RolloutController`'s) and
the flag file (`FileFlagSource`'s), both replaced atomically, so a `rollback` here reaches every process
on the host on its next upload. Figures come from an `EventLog` file (``--events``): only the events of
this rollout's flag (``LLMFILES_SALT``) that fall within the current stage count, and the stage's start
(the soak clock) comes from the state file, never from the events; events set aside are counted and
reported. Results go to stdout, errors and notes to stderr.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from llmfiles._errors import ConfigError, SharedStateError
from llmfiles.fleet import (
    PostgresFlagSource,
    PostgresStateStore,
    PrometheusFigures,
    is_postgres_url,
    open_state_store,
)
from llmfiles.observe import Comparison, Event, Recorder, configure_logging, read_events
from llmfiles.rollout import (
    DEFAULT_GATES,
    OFF,
    Decision,
    FileFlagSource,
    FlagState,
    GateContext,
    GateTable,
    GateVerdict,
    OverridableFlagSource,
    RolloutController,
    RolloutSettings,
    RolloutState,
    StateStore,
    WritableFlagSource,
    load_settings,
)
from llmfiles.rollout import evaluate as evaluate_gates

EXIT_CODES = (
    "Exit codes: 0 done (PROMOTE, promoted, rolled back); 2 usage or configuration error; 3 HOLD or "
    "promotion refused; 4 ROLLBACK; 5 rolled back (traffic is on the legacy arm) but something needed "
    "repair or could not be recorded, see stderr; 6 rollback could NOT write the flag: other processes "
    "still route to the async arm."
)

_EXIT = {Decision.PROMOTE: 0, Decision.HOLD: 3, Decision.ROLLBACK: 4}
_USAGE, _REFUSED, _ROLLED_BACK_WITH_PROBLEMS, _FLAG_NOT_WRITTEN = 2, 3, 5, 6

rollout_app = typer.Typer(
    no_args_is_help=True, help="Inspect and steer the async-upload rollout.", epilog=EXIT_CODES
)


@rollout_app.callback()
def _logging() -> None:
    # The tables are the output; the library's own log lines are diagnostics, so stderr and warnings only.
    configure_logging(level=logging.WARNING, json=False, file=sys.stderr)


StateOpt = Annotated[Path | None, typer.Option("--state", help="State file (default: LLMFILES_STATE_FILE).")]
FlagsOpt = Annotated[Path | None, typer.Option("--flags", help="Flag file (default: LLMFILES_FLAG_FILE).")]
GatesOpt = Annotated[Path | None, typer.Option("--gates", help="TOML stage table overriding DESIGN.md's.")]


def _check_soak(value: float | None) -> float | None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"--soak={value!r} must be a finite number of seconds >= 0")
    return value


SoakOpt = Annotated[
    float | None,
    typer.Option("--soak", help="Override every stage's soak, in seconds.", callback=_check_soak),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")]


def _out() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _err() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _fail(exc: Exception, code: int = _USAGE) -> typer.Exit:
    _err().print(f"[red]error:[/red] {escape(str(exc))}")
    return typer.Exit(code=code)


def _gates(path: Path | None, soak: float | None) -> GateTable:
    table = GateTable.from_toml(path) if path is not None else DEFAULT_GATES
    return table.with_soak(soak) if soak is not None else table


def _load_state(store: StateStore) -> RolloutState:
    try:
        return store.load()
    except ConfigError as exc:
        raise ConfigError(f"{exc}. `llmfiles rollout rollback` still works on a broken state") from exc


class _Evidence:
    """The events that may judge a stage: this flag's, within ``[since, now]``; the rest counted aside."""

    def __init__(self, events: list[Event], ignored: Counter[str], since: float | None) -> None:
        self.events = events
        self.ignored = ignored
        self.since = since

    @classmethod
    def read(cls, path: Path | None, *, flag: str, since: float | None, now: float) -> _Evidence:
        kept: list[Event] = []
        ignored: Counter[str] = Counter()
        for event in read_events(path) if path is not None else ():
            if event.flag != flag:
                ignored["other_flags"] += 1
            elif event.ts > now:
                ignored["from_the_future"] += 1
            elif since is not None and event.ts < since:
                ignored["before_the_stage"] += 1
            else:
                kept.append(event)
        return cls(kept, ignored, since)

    def recorder(self, settings: RolloutSettings, now: float) -> Recorder:
        """A recorder holding every kept event, its window reaching back to the stage's start."""
        earliest = self.since if self.since is not None else min((e.ts for e in self.events), default=now)
        recorder = Recorder(window_s=max(settings.window_s, now - earliest + 1.0), clock=lambda: now)
        recorder.extend(self.events)
        return recorder

    def to_dict(self) -> dict[str, int]:
        return {"judged": len(self.events), **{key: self.ignored[key] for key in _IGNORED}}

    def report(self, flag: str) -> None:
        """One line on stderr when events were set aside: they are evidence someone may need."""
        if not self.ignored:
            return
        parts = [f"{self.ignored[key]} {words}" for key, words in _IGNORED.items() if self.ignored[key]]
        since = f" (the stage began {_when(self.since)})" if self.since is not None else ""
        _err().print(
            f"[yellow]ignored {sum(self.ignored.values())} events:[/yellow] {', '.join(parts)}{since}; "
            f"judged {len(self.events)} events of flag {escape(flag)!s}"
        )


_IGNORED = {
    "other_flags": "of other flags",
    "from_the_future": "from the future",
    "before_the_stage": "from before the stage began",
}


def _stage_start(current: RolloutState, name: str, now: float) -> float | None:
    """When stage `name` began, from the state; None when it is not the stage running."""
    if current.stage != name or current.status != "running":
        return None
    if current.stage_started_at > now:
        raise ConfigError(
            f"stage_started_at={current.stage_started_at!r} is in the future (now {now:.0f}); the state "
            "is wrong: fix the clock or the state file"
        )
    return current.stage_started_at


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
        settings = load_settings()
        current = _load_state(StateStore(state if state is not None else settings.state_file))
        flag_file = flags if flags is not None else settings.flag_file
        flag_state = (
            FileFlagSource(flag_file).snapshot()
            if flag_file is not None
            else FlagState(settings.enabled, settings.rollout_percent, settings.fallback)
        )
    except ConfigError as exc:
        raise _fail(exc) from exc
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
    table.add_row("last reason", escape(current.reason or "-"))
    table.add_row("flags: enabled", str(flag_state.enabled))
    table.add_row("flags: percent", f"{flag_state.percent:g} %")
    table.add_row("flags: fallback", str(flag_state.fallback))
    console = _out()
    console.print(table)
    if current.history:
        history = Table(title="Last changes")
        for column in ("when", "action", "from", "to", "trigger", "reason"):
            history.add_column(column)
        for entry in current.history[-10:]:
            history.add_row(
                _when(float(entry.get("ts", 0))),
                *(
                    escape(str(entry.get(key) or "-"))
                    for key in ("action", "from", "to", "trigger", "reason")
                ),
            )
        console.print(history)


@rollout_app.command()
def evaluate(
    events: Annotated[Path | None, typer.Option("--events", help="EventLog JSONL file to judge.")] = None,
    prometheus: Annotated[
        str | None,
        typer.Option("--prometheus", help="Judge the whole fleet's figures from this Prometheus instead."),
    ] = None,
    selector: Annotated[
        str, typer.Option("--selector", help='With --prometheus: label matchers, e.g. job="llmfiles".')
    ] = "",
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

    Only this flag's events since the stage began (the state file says when) count; the time since then
    is the soak. A stage that is not the one running has no soak (0 s). --soak SECONDS sets the soak a
    stage requires (load runs shrink it to their length). With --prometheus instead of --events, the
    figures are the whole fleet's since the stage began (or the last hour), read with PromQL.
    """
    try:
        if (events is None) == (prometheus is None):
            raise ConfigError("give exactly one of --events FILE and --prometheus URL")
        table = _gates(gates, soak)
        settings = load_settings()
        current = _load_state(StateStore(state if state is not None else settings.state_file))
        name = stage if stage is not None else current.stage
        if name == OFF:
            raise ConfigError(f"stage={name!r}: the rollout is off; pass --stage with the stage to judge")
        gate = table.stage(name)
        now = time.time()
        since = _stage_start(current, name, now)
        evidence = (
            None if events is None else _Evidence.read(events, flag=settings.salt, since=since, now=now)
        )
    except ConfigError as exc:
        raise _fail(exc) from exc
    if evidence is not None:
        evidence.report(settings.salt)
    if since is None:
        _err().print(
            f"[yellow]note:[/yellow] stage {escape(name)} is not running (state: {escape(current.stage)}, "
            f"{current.status}): no soak counts"
        )
    if evidence is None:
        assert prometheus is not None
        try:
            with PrometheusFigures(prometheus, selector=selector) as figures:
                span = min(figures.window_s, now - since if since else figures.window_s)
                window, latencies = figures.compare(window_s=span), figures.latency_samples(window_s=span)
        except (ConfigError, SharedStateError) as exc:
            # No figures, no verdict: say so and hold, never promote or roll back on missing data.
            _err().print(f"[red]error:[/red] {escape(str(exc))}; no verdict without the fleet's figures")
            raise typer.Exit(code=_EXIT[Decision.HOLD]) from None
    else:
        recorder = evidence.recorder(settings, now)
        window, latencies = recorder.compare(), recorder.latency_samples()
    context = GateContext(soak_s=0.0 if since is None else now - since, baseline_p95_s=current.baseline_p95_s)
    verdict = evaluate_gates(
        gate, window, latencies=latencies, rules=table.rules, context=context, gate_set=table.name
    )
    if as_json:
        source = {"events": evidence.to_dict()} if evidence is not None else {"prometheus": prometheus}
        typer.echo(json.dumps({**verdict.to_dict(), **source}, indent=2))
    else:
        console = _out()
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
    """Move to the next stage when the gates say PROMOTE; shows the verdict either way.

    The new percentage is written to the flag file (--flags or LLMFILES_FLAG_FILE), which is created when
    --flags names one that does not exist yet. Without a flag file the command refuses: the percentage
    in the environment cannot be changed from here.
    """
    try:
        table = _gates(gates, soak)
        settings = load_settings()
        flag_file = flags if flags is not None else settings.flag_file
        if flag_file is None:
            raise ConfigError(
                "no flag file: promote writes the new percentage to one, and LLMFILES_ROLLOUT_PERCENT "
                "cannot be changed from here; pass --flags PATH (created if missing) or set "
                "LLMFILES_FLAG_FILE"
            )
        created = not flag_file.exists()
        source = FileFlagSource(flag_file)
        store = StateStore(state if state is not None else settings.state_file)
        current = _load_state(store)
        now = time.time()
        since = _stage_start(current, current.stage, now) if current.stage != OFF else None
        evidence = _Evidence.read(events, flag=settings.salt, since=since, now=now)
        controller = RolloutController(
            recorder=evidence.recorder(settings, now),
            flags=OverridableFlagSource(source),
            store=store,
            gates=table,
            interval_s=settings.check_interval_s,
            threshold=settings.rollback_threshold,
        )
        result = controller.promote(force=force)
    except ConfigError as exc:
        raise _fail(exc) from exc
    evidence.report(settings.salt)
    console = _out()
    if result.verdict is not None:
        console.print(_verdict_table(result.verdict))
    target = result.to_stage or "-"
    if result.applied:
        if created:
            _err().print(f"[yellow]created flag file[/yellow] {escape(str(flag_file))}")
        console.print(f"[green]promoted[/green] {result.from_stage} -> {target}: {escape(result.reason)}")
        return
    console.print(f"[yellow]refused[/yellow] {result.from_stage} -> {target}: {escape(result.reason)}")
    raise typer.Exit(code=_REFUSED)


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


SharedStateOpt = Annotated[
    str | None,
    typer.Option("--state", help="State file or a fleet's postgresql:// URL (default: LLMFILES_STATE_FILE)."),
]
SharedFlagsOpt = Annotated[
    str | None,
    typer.Option("--flags", help="Flag file or a fleet's postgresql:// URL (default: LLMFILES_FLAG_FILE)."),
]


@rollout_app.command(epilog=EXIT_CODES)
def rollback(
    reason: Annotated[str, typer.Option("--reason", help="Why: recorded in the state history.")],
    state: SharedStateOpt = None,
    flags: SharedFlagsOpt = None,
) -> None:
    """Send every upload to the legacy arm now (percentage 0 in the flag file) and record why.

    Nothing about the state or the settings stops it: the flag is written first (a flag file that
    cannot be read is renamed to <name>.corrupt-<time> and replaced by the flags off), then the state
    records why (a broken state is set aside the same way), and only then are the problems reported.
    Exit 5: rolled back, but something needed repair or could not be recorded. Exit 6: the flag could
    not be written, so other processes still route to the async arm.
    """
    if not reason.strip():
        raise _fail(ConfigError(f"reason={reason!r} must say why the rollout is rolled back"))
    err = _err()
    try:
        settings: RolloutSettings | None = load_settings()
    except ConfigError as exc:
        # A rollback must not wait for the settings to be fixed: take the two paths as they are given.
        err.print(f"[yellow]warning:[/yellow] {escape(str(exc))}; rolling back with the paths as given")
        settings = None
    flag_file = (
        flags
        if flags is not None
        else (settings.flag_file if settings is not None else _env_path("LLMFILES_FLAG_FILE"))
    )
    state_file: str | Path = (
        state
        if state is not None
        else (
            settings.state_file
            if settings is not None
            else _env_path("LLMFILES_STATE_FILE") or RolloutSettings.model_fields["state_file"].default
        )
    )
    problems: list[str] = []
    source: WritableFlagSource | None = None
    with contextlib.ExitStack() as opened:
        try:
            if isinstance(flag_file, str) and is_postgres_url(flag_file):
                # A fleet: the row every instance follows; a database that is down fails the write below.
                fleet = PostgresFlagSource(flag_file, actor="llmfiles rollout rollback", wait_s=1.0)
                opened.callback(fleet.close)
                source = fleet
            elif flag_file is not None:
                source = FileFlagSource(flag_file, strict=False)
        except ConfigError as exc:
            problems.append(str(exc))
        store = open_state_store(state_file)
        if isinstance(store, PostgresStateStore):
            opened.callback(store.close)
        controller = RolloutController(
            recorder=Recorder(),
            flags=OverridableFlagSource(source if source is not None else _NoFlags()),
            store=store,
            gates=DEFAULT_GATES,
            strict_state=False,
        )
        report = controller.rollback(reason, trigger="manual")
    problems.extend(report.problems)
    out = _out()
    if report.flag_written:
        out.print(f"[red]rolled back[/red] {escape(report.from_stage)} -> {OFF}: {escape(reason)}")
    for problem in problems:
        err.print(f"[yellow]problem:[/yellow] {escape(problem)}")
    if not report.flag_written:
        where = (
            "no flag file is set (--flags or LLMFILES_FLAG_FILE)"
            if flag_file is None
            else (f"the flag file {escape(str(flag_file))} could not be written")
        )
        err.print(
            f"[bold red]ROLLBACK INCOMPLETE:[/bold red] {where}: other processes still route to the async "
            "arm. Fix that and run rollback again, or set LLMFILES_ROLLOUT_PERCENT=0 (or the "
            "OpenFeature flag) and restart them."
        )
        raise typer.Exit(code=_FLAG_NOT_WRITTEN)
    if problems:
        raise typer.Exit(code=_ROLLED_BACK_WITH_PROBLEMS)


class _NoFlags:
    """No flag file: the rollback can only record itself; the report says the flag was not written."""

    def snapshot(self) -> FlagState:
        return FlagState()
