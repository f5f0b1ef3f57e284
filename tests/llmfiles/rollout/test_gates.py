"""Gates: the two tables, the judge's verdicts mapped to decisions, the absolute rollback rules, overrides."""

import math
from pathlib import Path

import numpy as np
import pytest

from llmfiles import ConfigError
from llmfiles.observe import ErrorKind, Event, LatencySamples, Recorder
from llmfiles.rollout import (
    DEFAULT_GATES,
    LOAD_RUN_GATES,
    LOAD_RUN_LATENCY_TOLERANCE,
    LOAD_RUN_MIN_UPLOADS,
    OFF,
    Decision,
    GateContext,
    GateTable,
    GateVerdict,
    RollbackRules,
    StageGate,
    evaluate,
)
from tests.llmfiles._events import make_event

DAY = 86400.0
STAGE_1 = DEFAULT_GATES.stage("1%")
SOAKED = GateContext(soak_s=8 * DAY)
NOW = 1_700_000_000.0


def _latencies(seed: int, n: int, factor: float) -> list[float]:
    # The mock's 'realistic' latency: median 0.2 s, sigma 0.6 in log space.
    return list(np.random.default_rng(seed).lognormal(math.log(0.2), 0.6, n) * factor)


def arms(
    successes: int,
    failures: int = 0,
    fallbacks: int = 0,
    *,
    control: int = 9000,
    control_failures: int = 0,
    slower: float = 1.0,
    errors: dict[str, int] | None = None,
) -> list[Event]:
    """Events of both arms in one window: the candidate's latencies `slower` times the control's."""
    events = [
        make_event(ts=NOW - 1, arm="async", outcome="success", duration_s=d)
        for d in _latencies(1, successes, slower)
    ]
    events += [make_event(ts=NOW - 1, arm="async", outcome="failure", error_type="ServerError")] * failures
    rescued = make_event(
        ts=NOW - 1, arm="async", outcome="fallback", error_type="ReadTimeout", error_kind=ErrorKind.TIMEOUT
    )
    events += [rescued] * fallbacks
    for name, n in (errors or {}).items():
        events += [make_event(ts=NOW - 1, arm="async", outcome="failure", error_type=name)] * n
    events += [
        make_event(ts=NOW - 1, arm="legacy", outcome="success", duration_s=d)
        for d in _latencies(2, control, 1.0)
    ]
    failed = make_event(ts=NOW - 1, arm="legacy", outcome="failure", error_type="ServerError")
    return events + [failed] * control_failures


def judged(
    stage: StageGate,
    events: list[Event],
    *,
    context: GateContext | None = None,
    rules: RollbackRules | None = None,
    gate_set: str = "production",
) -> GateVerdict:
    """The gates on `events` as one window, summarised by a real recorder."""
    recorder = Recorder(window_s=60, clock=lambda: NOW)
    recorder.extend(events)
    return evaluate(
        stage,
        recorder.compare(),
        latencies=LatencySamples.from_events(recorder.events()),
        rules=rules,
        context=context,
        gate_set=gate_set,
    )


def test_default_table_is_designs() -> None:
    rows = [
        (s.name, s.min_success, s.max_latency_ratio, s.max_error_rate, s.min_uploads, s.min_soak_s / 3600)
        for s in DEFAULT_GATES.stages
    ]
    assert rows == [
        ("1%", 0.995, 1.10, 0.005, 100, 24),
        ("10%", 0.990, 1.05, 0.010, 500, 48),
        ("50%", 0.985, 1.02, 0.015, 2000, 72),
        ("100%", 0.980, 1.00, 0.020, 5000, 168),
    ]
    assert DEFAULT_GATES.name == "production"
    assert DEFAULT_GATES.next_stage(OFF) is STAGE_1
    assert DEFAULT_GATES.next_stage("100%") is None


def test_load_run_table_keeps_the_criteria_and_lowers_the_minimums() -> None:
    assert LOAD_RUN_GATES.name == "load-run"
    for load, production in zip(LOAD_RUN_GATES.stages, DEFAULT_GATES.stages, strict=True):
        same = ("name", "percent", "min_success", "max_error_rate")
        assert [getattr(load, f) for f in same] == [getattr(production, f) for f in same]
        assert (load.min_uploads, load.min_soak_s) == (LOAD_RUN_MIN_UPLOADS, 0.0)
        # A two-minute run screens for gross slowdowns; the stage's own (tighter) ratio is production's.
        assert load.max_latency_ratio == max(production.max_latency_ratio, LOAD_RUN_LATENCY_TOLERANCE)
    assert LOAD_RUN_LATENCY_TOLERANCE == 1.20
    assert [s.max_latency_ratio for s in DEFAULT_GATES.stages] == [1.10, 1.05, 1.02, 1.00]
    assert LOAD_RUN_GATES.rules.review_latency_ratio is None
    assert LOAD_RUN_GATES.with_soak(120).stage("10%").min_soak_s == 120
    assert LOAD_RUN_GATES.with_soak(120).name == "load-run"


def test_healthy_stage_promotes_with_the_judgements_and_the_gate_set() -> None:
    verdict = judged(STAGE_1, arms(1000), context=SOAKED, gate_set="load-run")
    assert verdict.decision is Decision.PROMOTE, verdict.reasons
    assert verdict.gate_set == "load-run"
    assert "(load-run gates)" in verdict.reasons[0]
    assert set(verdict.judgements) == {"latency", "success", "errors", "timeouts"}
    assert verdict.figures["count"] == 1000
    assert verdict.figures["latency_shift"] == pytest.approx(1.0, abs=0.05)
    data = verdict.to_dict()
    assert (data["gate_set"], data["judgements"]["latency"]["verdict"]) == ("load-run", "PASS")


def test_a_slower_candidate_is_rolled_back_by_the_latency_judge() -> None:
    verdict = judged(STAGE_1, arms(1000, slower=1.5), context=SOAKED)
    assert verdict.decision is Decision.ROLLBACK
    assert any(r.startswith("latency FAIL: latency x1.4") for r in verdict.reasons), verdict.reasons


def test_an_undecided_latency_holds_and_says_how_many_more_samples() -> None:
    verdict = judged(STAGE_1, arms(150, control=150, slower=1.05), context=SOAKED)
    assert verdict.decision is Decision.HOLD
    assert verdict.judgements["latency"].verdict.value == "INCONCLUSIVE"
    more = verdict.judgements["latency"].more_samples_needed
    assert more is not None
    assert more > 0
    assert any(f"about {more} more samples per arm" in r for r in verdict.reasons)
    assert isinstance(verdict.figures["more_samples_needed"], int)


def test_too_few_calls_cannot_roll_back_on_a_judge_fail() -> None:
    verdict = judged(STAGE_1, arms(15, slower=4.0), context=SOAKED)
    assert verdict.judgements["latency"].verdict.value == "FAIL"
    assert verdict.decision is Decision.HOLD
    assert any("too few to roll back" in r for r in verdict.reasons)


def test_more_errors_than_the_control_plus_the_limit_roll_back() -> None:
    # 4 % errors: under the absolute 5 % rule, but 4 points over a clean control where the stage allows 0.5.
    verdict = judged(STAGE_1, arms(960, failures=40), context=SOAKED)
    assert verdict.decision is Decision.ROLLBACK
    assert any(r.startswith("errors FAIL") for r in verdict.reasons)
    assert not any(r.startswith("errors 4.00%") for r in verdict.reasons)


def test_rescued_calls_over_the_stage_limit_hold_but_do_not_roll_back() -> None:
    verdict = judged(STAGE_1, arms(960, fallbacks=40), context=SOAKED)
    assert verdict.decision is Decision.HOLD
    assert any(r.startswith("success FAIL, calls rescued") for r in verdict.reasons)
    assert any(r.startswith("timeouts FAIL, calls rescued") for r in verdict.reasons)


def test_rates_are_judged_against_the_control_arm_in_the_same_window() -> None:
    # A provider's bad day: 2 % of every arm's calls fail; the candidate is no worse than the control.
    verdict = judged(DEFAULT_GATES.stage("10%"), arms(2940, failures=60, control_failures=180))
    assert verdict.judgements["errors"].verdict.value == "PASS"
    assert not any(r.startswith("errors") for r in verdict.reasons)


def test_too_few_samples_is_hold_never_promote() -> None:
    verdict = judged(STAGE_1, arms(99), context=SOAKED)
    assert verdict.decision is Decision.HOLD
    assert "too few uploads: 99 < 100" in verdict.reasons


def test_short_soak_is_hold() -> None:
    verdict = judged(STAGE_1, arms(1000), context=GateContext(soak_s=3600))
    assert verdict.decision is Decision.HOLD
    assert "soak 1.0 h < 24.0 h" in verdict.reasons


@pytest.mark.parametrize(
    ("events", "context", "reason"),
    [
        (arms(94, fallbacks=6), SOAKED, "success 94.00% < 95.00%"),
        (arms(94, failures=6), SOAKED, "errors 6.00% > 5.00%"),
        (arms(1000, errors={"IntegrityError": 1}), SOAKED, "critical errors: {'IntegrityError': 1}"),
        (
            arms(1000),
            GateContext(soak_s=2 * DAY, memory_growth=0.21),
            "memory +21.0% over the stage baseline > 20%",
        ),
    ],
    ids=["success", "errors", "critical", "memory"],
)
def test_absolute_rollback_rules_stay(events: list[Event], context: GateContext, reason: str) -> None:
    verdict = judged(STAGE_1, events, context=context)
    assert verdict.decision is Decision.ROLLBACK
    assert reason in verdict.reasons


@pytest.mark.parametrize(
    ("successes", "fallbacks", "rolled_back"),
    [(949, 51, True), (950, 50, False)],
    ids=["94.9%", "95.0%"],
)
def test_absolute_success_boundary_is_exact(successes: int, fallbacks: int, rolled_back: bool) -> None:
    verdict = judged(STAGE_1, arms(successes, fallbacks=fallbacks, control=100), context=SOAKED)
    assert ("success 94.90% < 95.00%" in verdict.reasons) is rolled_back


def test_rate_rules_need_min_samples_but_critical_errors_do_not() -> None:
    assert judged(STAGE_1, arms(5, failures=5), context=SOAKED).decision is Decision.HOLD
    assert judged(STAGE_1, arms(1, errors={"UnsafeFilenameError": 1})).decision is Decision.ROLLBACK


def test_memory_at_exactly_twenty_percent_is_not_a_spike() -> None:
    context = GateContext(soak_s=2 * DAY, memory_growth=0.20)
    assert judged(STAGE_1, arms(1000), context=context).decision is Decision.PROMOTE


def test_review_band_held_for_thirty_minutes_calls_for_a_human() -> None:
    events = arms(960, fallbacks=40)
    short = judged(STAGE_1, events, context=GateContext(soak_s=2 * DAY, review_band_s=29 * 60))
    long = judged(STAGE_1, events, context=GateContext(soak_s=2 * DAY, review_band_s=30 * 60))
    assert short.decision is long.decision is Decision.HOLD
    assert not any(r.startswith("manual review") for r in short.reasons)
    assert "manual review: success 96.00% within [95%, 97%) for 30 min" in long.reasons


def test_p95_review_applies_in_production_and_not_in_load_runs() -> None:
    events = arms(1000, slower=1.3)
    lenient = StageGate("lenient", 1.0, 0.995, 2.0, 0.005, 100, 0)  # the judge passes 1.3x
    production = judged(lenient, events, context=SOAKED, rules=DEFAULT_GATES.rules)
    load_run = judged(lenient, events, context=SOAKED, rules=LOAD_RUN_GATES.rules)
    assert any(r.startswith("manual review: p95 latency") for r in production.reasons)
    assert not any(r.startswith("manual review: p95 latency") for r in load_run.reasons)


def test_stage_baseline_stands_in_when_the_control_arm_is_silent() -> None:
    events = arms(6000, control=0)
    stage = DEFAULT_GATES.stage("100%")
    held = judged(stage, events, context=GateContext(soak_s=8 * DAY))
    assert any(r.startswith("no latency baseline") for r in held.reasons)
    assert "latency" not in held.judgements
    assert "no control: absolute" in held.judgements["errors"].reason
    ok = judged(stage, events, context=GateContext(soak_s=8 * DAY, baseline_p95_s=1.0))
    assert ok.decision is Decision.PROMOTE, ok.reasons
    slow = judged(stage, events, context=GateContext(soak_s=8 * DAY, baseline_p95_s=0.1))
    assert slow.decision is Decision.HOLD
    assert any(r.startswith("p95 latency") and "the stage baseline" in r for r in slow.reasons)


def test_a_silent_async_arm_is_named_as_such_not_blamed_on_the_baseline() -> None:
    held = judged(STAGE_1, arms(0, control=400), context=SOAKED)
    assert held.decision is Decision.HOLD
    assert any("the candidate arm has no samples" in r for r in held.reasons)
    assert not any(r.startswith("no latency baseline") for r in held.reasons)
    assert "too few uploads: 0 < 100" in held.reasons


def test_latency_samples_take_successful_calls_per_arm() -> None:
    events = [
        make_event(arm="async", outcome="success", duration_s=0.1),
        make_event(arm="async", outcome="fallback", duration_s=9.0),
        make_event(arm="legacy", outcome="success", duration_s=0.2),
        make_event(arm="legacy", outcome="failure", duration_s=8.0),
    ]
    assert LatencySamples.from_events(events) == LatencySamples(control=(0.2,), candidate=(0.1,))
    swapped = LatencySamples.from_events(events, candidate="legacy", control="async")
    assert swapped == LatencySamples(control=(0.1,), candidate=(0.2,))


def test_table_from_toml_and_soak_override(tmp_path: Path) -> None:
    path = tmp_path / "gates.toml"
    path.write_text(
        """
[[stages]]
name = "5%"
percent = 5
min_success = 0.9
max_latency_ratio = 2.0
max_error_rate = 0.1
min_uploads = 10
min_soak_s = 60

[rules]
min_samples = 3
critical_errors = ["IntegrityError"]
"""
    )
    table = GateTable.from_toml(path)
    assert table.stage("5%").min_uploads == 10
    assert table.rules.min_samples == 3
    assert table.rules.critical_errors == frozenset({"IntegrityError"})
    assert table.with_soak(5).stage("5%").min_soak_s == 5


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"stages": []}, "must be non-empty"),
        ({"stages": [{"name": "1%"}]}, "stage keys are"),
        (
            {
                "stages": [
                    {
                        "name": "x",
                        "percent": 1,
                        "min_success": 99.5,
                        "max_latency_ratio": 1.1,
                        "max_error_rate": 0.005,
                        "min_uploads": 100,
                        "min_soak_s": 0,
                    }
                ]
            },
            "min_success=99.5 must be a fraction",
        ),
        (
            {
                "stages": [
                    {
                        "name": n,
                        "percent": p,
                        "min_success": 0.9,
                        "max_latency_ratio": 1.1,
                        "max_error_rate": 0.1,
                        "min_uploads": 1,
                        "min_soak_s": 0,
                    }
                    for n, p in (("b", 10), ("a", 1))
                ]
            },
            "increasing percent order",
        ),
        ({"stages": [], "rules": {"nonsense": 1}}, "stage keys are"),
    ],
    ids=["empty", "missing-keys", "percent-not-fraction", "out-of-order", "unknown-rule"],
)
def test_invalid_tables(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        GateTable.from_mapping(data)


def test_unknown_stage_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"stage='7%' is unknown; use one of: off, 1%, 10%, 50%, 100%"):
        DEFAULT_GATES.stage("7%")


def test_custom_rules_apply() -> None:
    rules = RollbackRules(min_success=0.5, min_samples=2)
    assert judged(STAGE_1, arms(6, fallbacks=4), rules=rules).decision is Decision.HOLD
    assert judged(STAGE_1, arms(4, fallbacks=6), rules=rules).decision is Decision.ROLLBACK


def test_rules_validate_the_confidence() -> None:
    with pytest.raises(ConfigError, match=r"confidence=0\.3"):
        RollbackRules(confidence=0.3)


def test_stage_gate_validates_its_fields() -> None:
    with pytest.raises(ConfigError, match="percent=0"):
        StageGate("x", 0, 0.9, 1.1, 0.1, 1, 0)
