"""The judge case: the shipped recording, the simulated stages on a fixed seed, the timeline by start."""

import math

import numpy as np
import pytest

from harness.cases._judge import SCHEDULES, load_recording, rollback_rate, simulate_stage
from harness.cases._rollback import SHARE, SUCCESS, timeline_by_start
from llmfiles.observe import Event
from tests.llmfiles._events import make_event

BY_NAME = {schedule.name: schedule for schedule in SCHEDULES}


def test_the_recording_is_shipped_and_plausible() -> None:
    recording = load_recording()
    for arm in ("async", "legacy"):
        samples = recording[arm]
        assert len(samples) >= 500
        assert np.all(samples > 0)
        # The mock's 'realistic' latency has a 0.2 s median before any client cost.
        assert 0.15 < float(np.median(samples)) < 2.0


# Pinned on seed 0 and the shipped recording: rolled-back stages out of 200 (load run) and 60 (production,
# whose A/A stages take 50-100 looks each). The claims' 1000-stage figures are in docs/JUDGE.md.
@pytest.mark.parametrize(
    ("schedule", "stages", "slowdown", "rolled_back"),
    [
        ("load-run 10%", 200, 1.0, 0),
        ("load-run 50%", 200, 1.0, 0),
        ("load-run 10%", 200, 1.2, 4),  # the load-run tolerance is 1.20: x1.2 sits on it
        ("load-run 10%", 200, 1.5, 200),
        ("production 50%", 60, 1.0, 0),
        ("production 10%", 60, 1.2, 60),
    ],
)
def test_simulated_stages_on_a_fixed_seed(
    schedule: str, stages: int, slowdown: float, rolled_back: int
) -> None:
    pool = load_recording()["async"]
    share = rollback_rate(pool, BY_NAME[schedule], stages=stages, slowdown=slowdown, seed=0)
    assert round(share * stages) == rolled_back


def test_a_fixed_confidence_at_every_look_would_roll_back_far_more_a_a_stages() -> None:
    # The same A/A production stages with looks all at the full confidence: the reason for look_confidence.
    pool = load_recording()["async"]
    schedule = BY_NAME["production 50%"]
    spent = rollback_rate(pool, schedule, stages=60, seed=0)
    rng = np.random.default_rng(0)
    fixed = sum(simulate_stage(rng, pool, schedule, spend=False).rolled_back for _ in range(60)) / 60
    assert (spent, fixed) == (0.0, 3 / 60)


def test_a_brownout_is_caught_in_the_first_checks() -> None:
    pool = load_recording()["async"]
    outcome = simulate_stage(np.random.default_rng(1), pool, BY_NAME["load-run 10%"], slowdown=10.0)
    assert outcome.rolled_back
    assert outcome.check is not None
    assert outcome.check <= 4  # three consecutive FAILs from the first judged interval on


def _call(ts: float, arm: str, duration: float = 0.5, outcome: str = "success") -> Event:
    return make_event(ts=ts, arm=arm, outcome=outcome, duration_s=duration)


def test_timeline_bins_by_start_so_nothing_after_the_decision_is_async() -> None:
    origin, decision = 1000.0, 10.0
    events = [_call(origin + t, "async" if t % 2 else "legacy") for t in np.arange(0.0, 10.0, 0.25)]
    # Async calls started just before the decision, finishing long after it (slow retries).
    events += [_call(origin + 9.9, "async", duration=8.0, outcome="failure")] * 3
    events += [_call(origin + t, "legacy") for t in np.arange(10.0, 20.0, 0.25)]
    points, after = timeline_by_start(events, origin=origin, decision=decision)
    assert after == 0
    shares = {p.t_s: p.value for p in points if p.series == SHARE}
    assert all(value == 0.0 for t, value in shares.items() if t >= decision)
    assert any(value > 0.0 for t, value in shares.items() if t < decision)
    assert min(t for t in shares if t >= decision) == decision  # bins aligned on the decision
    assert all(not math.isnan(p.value) for p in points if p.series == SUCCESS)


def test_timeline_counts_async_calls_started_after_the_decision() -> None:
    events = [_call(1000.0 + 12.0, "async"), _call(1000.0 + 3.0, "async")]
    _, after = timeline_by_start(events, origin=1000.0, decision=10.0)
    assert after == 1
