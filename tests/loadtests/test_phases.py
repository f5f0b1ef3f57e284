"""The load run's phases, figures, verdict and timeline, on recorded data (no processes)."""

import itertools
import json
import random
from pathlib import Path

import pytest

from harness.load._fair import Criteria, judge_run
from harness.load._figures import RELAYED_STATUS, Sample, arm_labeller, phase_figures, read_samples
from harness.load._load import arm_rules
from harness.load._phases import Phase, PhaseDriver, PhaseWindow, control_percent, plan_phases
from harness.load._timeline import draw_timeline
from llmfiles import ConfigError
from llmfiles.observe import Event, hash_key
from llmfiles.rollout import FileFlagSource, in_rollout
from mock_provider._rules import parse_rules

SALT = "llmfiles.async_upload"
CRITERIA = Criteria(
    gate_set="test", latency_tolerance=1.2, max_error_rate=0.01, min_samples=30, min_to_pass=100
)


def test_control_phases_run_the_stage_before_the_target() -> None:
    assert [control_percent(s) for s in (1, 10, 50, 100)] == [0.0, 1.0, 10.0, 50.0]
    with pytest.raises(ConfigError, match="stage=5"):
        control_percent(5)


def test_a_stage_run_alternates_control_and_candidate_after_the_warm_up() -> None:
    phases = plan_phases(10, 120, warmup_s=6, alternate=True)

    assert [(p.role, p.percent) for p in phases] == [
        ("control", 1.0),
        ("candidate", 10.0),
        ("control", 1.0),
        ("candidate", 10.0),
    ]
    assert sum(p.duration_s for p in phases) == pytest.approx(114)
    assert plan_phases(50, 60, warmup_s=6, alternate=False) == [Phase("run", "candidate", 50, 54)]
    with pytest.raises(ConfigError, match="warm-up"):
        plan_phases(10, 5, warmup_s=6, alternate=True)


def test_the_driver_switches_the_flag_file_and_records_each_window(tmp_path: Path) -> None:
    phases = plan_phases(10, 0.45, warmup_s=0.05, alternate=True)
    driver = PhaseDriver(tmp_path / "flags.json", phases, warmup_s=0.05, rss_every_s=0.02)
    seen: list[float] = []
    driver.prepare()
    seen.append(FileFlagSource(driver.flags_path).snapshot().percent)
    driver.start(None)
    source = FileFlagSource(driver.flags_path)
    while len(driver.windows) < len(phases):
        percent = source.snapshot().percent
        if percent != seen[-1]:
            seen.append(percent)
    windows = driver.stop()

    assert seen == [1.0, 10.0, 1.0, 10.0]
    assert [w.phase for w in windows] == phases
    assert all(a.end <= b.start for a, b in itertools.pairwise(windows))


def test_an_aa_driver_serves_everyone_async_whatever_the_phase(tmp_path: Path) -> None:
    driver = PhaseDriver(
        tmp_path / "flags.json", plan_phases(10, 1, warmup_s=0.1, alternate=True), warmup_s=0.1
    )
    driver.serve_percent = 100.0
    driver.prepare()
    assert FileFlagSource(driver.flags_path).snapshot().percent == 100.0


def _window(role: str, percent: float, start: float, end: float) -> PhaseWindow:
    return PhaseWindow(Phase(f"{role} ({percent:g}%)", role, percent, end - start), start, end)  # type: ignore[arg-type]


def _event(ts: float, arm: str, duration: float, outcome: str = "success", key: str = "u") -> Event:
    return Event(
        ts=ts,
        flag=SALT,
        arm=arm,  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        duration_s=duration,
        bytes=10,
        error_type=None if outcome == "success" else "ServerError",
        provider="kimi",
        stage="10%",
        key_hash=hash_key(key, salt=SALT),
    )


def _run(async_factor: float, *, n: int = 1000, seed: int = 1) -> list[Event]:
    """Events over four phases (control, candidate, control, candidate): 1 % then 25 % on the async arm.

    Latencies are lognormal, the async arm's scaled by `async_factor`.
    """
    rng = random.Random(seed)
    events = []
    for index, phase_start in enumerate((0.0, 10.0, 20.0, 30.0)):
        every = 100 if index % 2 == 0 else 4
        for i in range(n):
            arm = "async" if i % every == 0 else "legacy"
            factor = async_factor if arm == "async" else 1.0
            events.append(_event(phase_start + i * 10 / n, arm, rng.lognormvariate(-1.6, 0.6) * factor))
    return events


WINDOWS = [
    _window("control", 1, 0, 10),
    _window("candidate", 10, 10, 20),
    _window("control", 1, 20, 30),
    _window("candidate", 10, 30, 40),
]


def _samples(events: list[Event], slow: dict[int, float] | None = None) -> list[Sample]:
    """What Locust saw: each call plus 10 ms, times `slow[phase index]` in the phases listed."""
    factors = slow or {}
    return [
        Sample(e.ts, (e.duration_s + 0.01) * factors.get(int(e.ts // 10), 1.0), e.outcome != "failure", "u")
        for e in events
    ]


def _verdict(
    events: list[Event], slow: dict[int, float] | None = None, *, legacy_on_loop: bool = False
) -> str:
    label = arm_labeller([], control_arm="legacy")
    figures = phase_figures(WINDOWS, _samples(events, slow), events, label=label)
    return str(judge_run(figures, CRITERIA, legacy_on_loop=legacy_on_loop).decision)


def test_requests_belong_to_the_phase_they_started_in() -> None:
    events = [_event(9.99, "legacy", 5.0), _event(10.0, "async", 0.1), _event(45.0, "async", 0.1)]
    figures = phase_figures(WINDOWS, _samples(events), events, label=arm_labeller([], control_arm="legacy"))

    assert [(f.service.n, f.arm("async").tally.n, f.arm("legacy").tally.n) for f in figures] == [
        (1, 0, 1),
        (1, 1, 0),
        (0, 0, 0),
        (0, 0, 0),
    ]


def test_equal_arms_promote_a_slow_new_arm_rolls_back_few_samples_hold() -> None:
    assert _verdict(_run(1.0)) == "PROMOTE"
    assert _verdict(_run(2.0)) == "ROLLBACK"
    assert _verdict(_run(1.0, n=40)) == "HOLD"


def test_a_slow_new_arm_rolls_back_though_callers_at_a_small_stage_barely_see_it() -> None:
    # At 10 % the callers' figure dilutes the new arm's slowdown; with the arms timed apart it still counts.
    assert _verdict(_run(2.0), slow={1: 0.75, 3: 0.75}) == "ROLLBACK"


def test_with_the_legacy_arm_on_the_loop_a_slow_new_arm_that_callers_do_not_see_holds() -> None:
    # The old arm freezes the loop the new arm's calls wait on: without the callers seeing the candidate
    # phases slower, the per-arm gap may be the old arm's doing.
    assert _verdict(_run(2.0), slow={1: 0.75, 3: 0.75}, legacy_on_loop=True) == "HOLD"
    assert _verdict(_run(2.0), slow={1: 1.6, 3: 1.6}, legacy_on_loop=True) == "ROLLBACK"


def test_with_the_legacy_arm_on_the_loop_callers_slower_in_one_pair_only_holds() -> None:
    # Drift in the last pair cannot stand in for the callers seeing the new arm.
    assert _verdict(_run(2.0), slow={1: 0.8, 3: 1.6}, legacy_on_loop=True) == "HOLD"


def test_a_slower_service_in_every_candidate_phase_rolls_back() -> None:
    assert _verdict(_run(1.0), slow={1: 1.6, 3: 1.6}) == "ROLLBACK"


def test_drift_in_one_phase_pair_holds_instead_of_rolling_back() -> None:
    assert _verdict(_run(1.0), slow={3: 3.0}) == "HOLD"


def test_a_service_that_queues_never_promotes_nor_rolls_back_on_its_latency() -> None:
    # Locust sees 20x the dispatcher's time: a queue, growing over the run (later phases worse).
    assert _verdict(_run(1.0), slow={0: 20.0, 1: 30.0, 2: 30.0, 3: 45.0}) == "HOLD"


def test_a_slow_new_arm_in_a_service_that_queues_holds() -> None:
    # The arms were timed inside a queue: the judge's FAIL on the new arm cannot stand.
    assert _verdict(_run(2.0), slow={0: 20.0, 1: 20.0, 2: 20.0, 3: 20.0}) == "HOLD"


def _served(events: list[Event], drop_phase: int) -> str:
    """The verdict with the offered rate (100/s here) when no request started in phase `drop_phase`."""
    samples = [s for s in _samples(events) if int(s.t // 10) != drop_phase]
    figures = phase_figures(WINDOWS, samples, events, label=arm_labeller([], control_arm="legacy"))
    served = judge_run(figures, CRITERIA, offered_per_s=100).judgements[-1]
    return str(served.verdict)


def test_a_candidate_phase_that_served_nothing_fails_a_control_one_is_the_machine() -> None:
    events = _run(1.0)
    assert _served(events, drop_phase=-1) == "PASS"
    assert _served(events, drop_phase=3) == "FAIL"
    assert _served(events, drop_phase=2) == "INCONCLUSIVE"


def test_a_failing_new_arm_rolls_back_even_when_fast() -> None:
    events = _run(1.0)
    failing = [
        _event(e.ts, e.arm, e.duration_s, "fallback") if e.arm == "async" and i % 5 == 0 else e
        for i, e in enumerate(events)
    ]
    assert _verdict(failing) == "ROLLBACK"


def test_a_provider_failing_the_legacy_arm_does_not_hold_the_new_arm_back() -> None:
    """A fifth of every phase's requests fail with a provider's refusal the legacy arm relayed (502):
    those are the old arm's, not the service's; counted as the service's, a one-point limit on a 20 %
    spread cannot be settled in a load run.
    """
    events = _run(1.0)
    samples = _samples(events)
    relayed = [
        Sample(s.t, s.latency_s, False, s.user, RELAYED_STATUS) if i % 5 == 0 else s
        for i, s in enumerate(samples)
    ]
    own = [Sample(s.t, s.latency_s, False, s.user, None) if i % 5 == 0 else s for i, s in enumerate(samples)]
    label = arm_labeller([], control_arm="legacy")

    def decision(rows: list[Sample]) -> str:
        return str(judge_run(phase_figures(WINDOWS, rows, events, label=label), CRITERIA).decision)

    assert decision(relayed) == "PROMOTE"
    assert decision(own) == "HOLD"  # the service's own failures at 20 %: a spread the run cannot settle


def test_the_service_failing_more_in_the_candidate_phases_rolls_back() -> None:
    events = _run(1.0)
    samples = [
        Sample(s.t, s.latency_s, False, s.user, 503) if int(s.t // 10) in (1, 3) and i % 10 == 0 else s
        for i, s in enumerate(_samples(events))
    ]
    figures = phase_figures(WINDOWS, samples, events, label=arm_labeller([], control_arm="legacy"))
    assert str(judge_run(figures, CRITERIA).decision) == "ROLLBACK"


def test_the_aa_labeller_splits_by_the_phase_stage_bucket() -> None:
    users = [f"user-{i}" for i in range(200)]
    samples = [Sample(0.0, 0.1, True, user) for user in users]
    label = arm_labeller(samples, control_arm="async")
    window = WINDOWS[1]
    labels = {user: label(_event(11.0, "async", 0.1, key=user), window) for user in users}

    assert labels == {u: "async" if in_rollout(u, 10, SALT) else "legacy" for u in users}
    assert 5 < sum(v == "async" for v in labels.values()) < 40
    assert label(_event(11.0, "async", 0.1, key="stranger"), window) is None


def test_arm_profiles_match_only_their_arm_on_top_of_the_base() -> None:
    rules = parse_rules(arm_rules("realistic", async_profile="brownout", legacy_profile=None))
    base = [r for r in rules if not r.match.headers]
    armed = [r for r in rules if r.match.headers]

    assert len(base) == 5
    assert len(armed) == 2
    assert all(r.match.headers == {"x-llmfiles-arm": "async"} for r in armed)


def test_samples_are_read_from_every_process_in_start_order(tmp_path: Path) -> None:
    (tmp_path / "samples-1.jsonl").write_text(
        json.dumps({"t": 2.0, "ms": 10, "ok": True, "user": "a"}) + "\n"
    )
    (tmp_path / "samples-2.jsonl").write_text(
        json.dumps({"t": 1.0, "ms": 30, "ok": False, "user": "b", "status": 502}) + "\n"
    )

    assert read_samples(tmp_path) == [Sample(1.0, 0.03, False, "b", 502), Sample(2.0, 0.01, True, "a")]


def test_the_timeline_is_drawn_with_phases_and_verdict(tmp_path: Path) -> None:
    events = _run(1.0, n=50)
    path = draw_timeline(
        tmp_path / "t.png",
        WINDOWS,
        events,
        samples=_samples(events),
        label=arm_labeller([], control_arm="legacy"),
        title="test",
        decision="PROMOTE",
    )
    assert path is not None
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        draw_timeline(tmp_path / "none.png", [], events, label=lambda e, w: None, title="", decision="")
        is None
    )
