"""Gates: DESIGN.md's table, boundaries, rollback triggers, manual review, and overriding the table."""

from pathlib import Path
from types import MappingProxyType

import pytest

from llmfiles import ConfigError
from llmfiles.observe import Arm, ArmSummary, Comparison
from llmfiles.rollout import (
    DEFAULT_GATES,
    OFF,
    Decision,
    GateContext,
    GateTable,
    RollbackRules,
    StageGate,
    evaluate,
)

DAY = 86400.0
STAGE_1 = DEFAULT_GATES.stage("1%")
SOAKED = GateContext(soak_s=2 * DAY)


def summary(
    arm: Arm,
    successes: int,
    failures: int = 0,
    fallbacks: int = 0,
    p95: float | None = 0.1,
    errors: dict[str, int] | None = None,
) -> ArmSummary:
    return ArmSummary(
        arm=arm,
        window_s=300.0,
        count=successes + failures + fallbacks,
        successes=successes,
        failures=failures,
        fallbacks=fallbacks,
        timeouts=0,
        bytes=0,
        p50_s=p95,
        p95_s=p95,
        p99_s=p95,
        throughput_per_s=1.0,
        error_types=MappingProxyType(errors or {}),
    )


def window(
    successes: int,
    failures: int = 0,
    fallbacks: int = 0,
    *,
    p95: float = 0.1,
    control_p95: float | None = 0.1,
    errors: dict[str, int] | None = None,
) -> Comparison:
    return Comparison(
        candidate=summary("async", successes, failures, fallbacks, p95, errors),
        control=summary("legacy", 100, p95=control_p95),
        relative=MappingProxyType({}),
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
    assert DEFAULT_GATES.next_stage(OFF) is STAGE_1
    assert DEFAULT_GATES.next_stage("100%") is None


def test_healthy_stage_promotes_with_figures() -> None:
    verdict = evaluate(STAGE_1, window(1000), context=SOAKED)
    assert verdict.decision is Decision.PROMOTE
    assert verdict.figures["count"] == 1000
    assert verdict.figures["latency_ratio"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("successes", "fallbacks", "decision"),
    [
        (9949, 51, Decision.HOLD),
        (9950, 50, Decision.PROMOTE),
        (995, 5, Decision.PROMOTE),
        (994, 6, Decision.HOLD),
    ],
    ids=["99.49%", "99.50%", "99.5%-of-1000", "99.4%"],
)
def test_success_boundary_is_exact(successes: int, fallbacks: int, decision: Decision) -> None:
    verdict = evaluate(STAGE_1, window(successes, fallbacks=fallbacks), context=SOAKED)
    assert verdict.decision is decision
    if decision is Decision.HOLD:
        assert any(reason.startswith("success 99.4") for reason in verdict.reasons)


def test_error_boundary_is_exact() -> None:
    assert evaluate(STAGE_1, window(995, failures=5), context=SOAKED).decision is Decision.PROMOTE  # 0.5 %
    held = evaluate(STAGE_1, window(1994, failures=11), context=SOAKED)  # 0.549 %
    assert held.decision is Decision.HOLD
    assert any(reason.startswith("errors 0.55%") for reason in held.reasons)


def test_too_few_samples_is_hold_never_promote() -> None:
    verdict = evaluate(STAGE_1, window(99), context=SOAKED)
    assert verdict.decision is Decision.HOLD
    assert "too few uploads: 99 < 100" in verdict.reasons


def test_short_soak_is_hold() -> None:
    verdict = evaluate(STAGE_1, window(1000), context=GateContext(soak_s=3600))
    assert verdict.decision is Decision.HOLD
    assert "soak 1.0 h < 24.0 h" in verdict.reasons


@pytest.mark.parametrize(
    ("comparison", "context", "reason"),
    [
        (window(94, fallbacks=6), SOAKED, "success 94.00% < 95.00%"),
        (window(94, failures=6), SOAKED, "errors 6.00% > 5.00%"),
        (window(1000, errors={"IntegrityError": 1}), SOAKED, "critical errors: {'IntegrityError': 1}"),
        (
            window(1000),
            GateContext(soak_s=2 * DAY, memory_growth=0.21),
            "memory +21.0% over the stage baseline > 20%",
        ),
    ],
    ids=["success", "errors", "critical", "memory"],
)
def test_rollback_triggers(comparison: Comparison, context: GateContext, reason: str) -> None:
    verdict = evaluate(STAGE_1, comparison, context=context)
    assert verdict.decision is Decision.ROLLBACK
    assert reason in verdict.reasons


def test_rate_rules_need_min_samples_but_critical_errors_do_not() -> None:
    assert evaluate(STAGE_1, window(5, failures=5), context=SOAKED).decision is Decision.HOLD
    assert evaluate(STAGE_1, window(1, errors={"UnsafeFilenameError": 1})).decision is Decision.ROLLBACK


def test_memory_at_exactly_twenty_percent_is_not_a_spike() -> None:
    context = GateContext(soak_s=2 * DAY, memory_growth=0.20)
    assert evaluate(STAGE_1, window(1000), context=context).decision is Decision.PROMOTE


def test_review_band_held_for_thirty_minutes_calls_for_a_human() -> None:
    comparison = window(960, fallbacks=40)
    short = evaluate(STAGE_1, comparison, context=GateContext(soak_s=2 * DAY, review_band_s=29 * 60))
    long = evaluate(STAGE_1, comparison, context=GateContext(soak_s=2 * DAY, review_band_s=30 * 60))
    assert short.decision is long.decision is Decision.HOLD
    assert not any(r.startswith("manual review") for r in short.reasons)
    assert "manual review: success 96.00% within [95%, 97%) for 30 min" in long.reasons


def test_latency_over_the_stage_limit_holds_and_over_1_2x_asks_for_review() -> None:
    slower = evaluate(STAGE_1, window(1000, p95=0.115), context=SOAKED)
    assert slower.decision is Decision.HOLD
    assert "p95 latency 1.15x baseline > 1.1x" in slower.reasons
    much_slower = evaluate(STAGE_1, window(1000, p95=0.13), context=SOAKED)
    assert "manual review: p95 latency 1.30x baseline > 1.2x" in much_slower.reasons


def test_stage_baseline_stands_in_when_the_control_arm_is_silent() -> None:
    comparison = window(6000, p95=0.1, control_p95=None)
    stage = DEFAULT_GATES.stage("100%")
    held = evaluate(stage, comparison, context=GateContext(soak_s=8 * DAY))
    assert any(r.startswith("no latency baseline") for r in held.reasons)
    ok = evaluate(stage, comparison, context=GateContext(soak_s=8 * DAY, baseline_p95_s=0.1))
    assert ok.decision is Decision.PROMOTE


def test_a_silent_async_arm_is_named_as_such_not_blamed_on_the_baseline() -> None:
    comparison = Comparison(
        candidate=summary("async", 0, p95=None),
        control=summary("legacy", 400, p95=0.3),
        relative=MappingProxyType({}),
    )
    held = evaluate(STAGE_1, comparison, context=SOAKED)
    assert held.decision is Decision.HOLD
    assert "no latency figure: the async arm has no successful calls in the window" in held.reasons
    assert not any(r.startswith("no latency baseline") for r in held.reasons)
    assert "too few uploads: 0 < 100" in held.reasons


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
    assert evaluate(STAGE_1, window(6, fallbacks=4), rules=rules).decision is Decision.HOLD
    assert evaluate(STAGE_1, window(4, fallbacks=6), rules=rules).decision is Decision.ROLLBACK


def test_stage_gate_validates_its_fields() -> None:
    with pytest.raises(ConfigError, match="percent=0"):
        StageGate("x", 0, 0.9, 1.1, 0.1, 1, 0)
