"""The stage gate's verdict on a finished load run, from the service's event log.

The soak time shrinks to the run's length (DESIGN.md: "in load runs the soak times shrink to the run's
length; the rule stays the same"); every other threshold, minimum uploads included, is the stage's own.
"""

from __future__ import annotations

from pathlib import Path

from llmfiles import ConfigError
from llmfiles.observe import Recorder, read_events
from llmfiles.rollout import DEFAULT_GATES, GateContext, GateVerdict, evaluate

__all__ = ["EXIT_CODES", "stage_name", "verdict_from_events"]

#: Exit codes of ``python -m harness load``; 1 is left for "something was lost or broke".
EXIT_CODES = {"PROMOTE": 0, "HOLD": 3, "ROLLBACK": 4}


def stage_name(percent: float) -> str:
    """The gate table's stage for `percent` (``10`` -> ``"10%"``); ConfigError naming the known ones."""
    names = [stage.name for stage in DEFAULT_GATES.stages]
    name = f"{percent:g}%"
    if name not in names:
        raise ConfigError(
            f"stage={percent!r} is not a rollout stage; use one of {', '.join(n[:-1] for n in names)}"
        )
    return name


def verdict_from_events(events_path: Path, *, percent: float, run_s: float) -> GateVerdict:
    """Replay the event log into a recorder and judge the stage over the whole run."""
    events = list(read_events(events_path))
    now = max((event.finished_at for event in events), default=0.0)
    window = max(run_s, 1.0) * 2  # the whole run, with room for calls that straddled its edges
    recorder = Recorder(window_s=window, clock=lambda: now)
    recorder.extend(events)
    gates = DEFAULT_GATES.with_soak(run_s)
    return evaluate(
        gates.stage(stage_name(percent)),
        recorder.compare(window_s=window),
        rules=gates.rules,
        context=GateContext(soak_s=run_s),
    )
