"""The stage gate's verdict on a finished load run, from the service's event log.

Load runs apply the load-run gate set (`LOAD_RUN_GATES`): the production stages' success, error and
latency criteria through the same statistical judge, a minimum of candidate calls a two-minute run
reaches, and the soak shrunk to the run's length (the rule stays the same). The production minimums
(500 uploads and 48 h at 10 %) are beyond any load run; the verdict names the set it applied
(`GateVerdict.gate_set`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from llmfiles import ConfigError
from llmfiles.observe import Arm, Event, LatencySamples, Recorder, read_events
from llmfiles.rollout import LOAD_RUN_GATES, GateContext, GateVerdict, evaluate

__all__ = ["EXIT_CODES", "stage_name", "verdict_from_events", "verdict_on"]

#: Exit codes of ``python -m harness load``; 1 is left for "something was lost or broke".
EXIT_CODES = {"PROMOTE": 0, "HOLD": 3, "ROLLBACK": 4}


def stage_name(percent: float) -> str:
    """The gate table's stage for `percent` (``10`` -> ``"10%"``); ConfigError naming the known ones."""
    names = [stage.name for stage in LOAD_RUN_GATES.stages]
    name = f"{percent:g}%"
    if name not in names:
        raise ConfigError(
            f"stage={percent!r} is not a rollout stage; use one of {', '.join(n[:-1] for n in names)}"
        )
    return name


def verdict_on(
    events: Sequence[Event],
    *,
    percent: float,
    run_s: float,
    candidate: Arm = "async",
    control: Arm = "legacy",
) -> GateVerdict:
    """Judge `events` (all of them, as one window) against the load-run gates of stage `percent`.

    `candidate` is judged against `control` (events of other arms are ignored); `run_s` is the soak the
    events stand for. Phased runs call this once per pair of phases they compare.
    """
    now = max((event.finished_at for event in events), default=0.0)
    window = max(run_s, 1.0) * 2  # the whole run, with room for calls that straddled its edges
    recorder = Recorder(window_s=window, clock=lambda: now, candidate=candidate, control=control)
    recorder.extend(events)
    gates = LOAD_RUN_GATES.with_soak(run_s)
    return evaluate(
        gates.stage(stage_name(percent)),
        recorder.compare(window_s=window),
        latencies=LatencySamples.from_events(
            recorder.events(window_s=window), candidate=candidate, control=control
        ),
        rules=gates.rules,
        context=GateContext(soak_s=run_s),
        gate_set=gates.name,
    )


def verdict_from_events(events_path: Path, *, percent: float, run_s: float) -> GateVerdict:
    """Replay the event log and judge the stage over the whole run (`verdict_on` all its events)."""
    return verdict_on(list(read_events(events_path)), percent=percent, run_s=run_s)
