import math

import pytest

from harness import CLAIMS, Measurement, Outcome, claim_by_id, exit_code, judge, judge_all


@pytest.mark.parametrize(
    ("claim_id", "value", "outcome"),
    [
        ("mem-upload.peak", 12.5, Outcome.PASS),
        ("mem-upload.peak", 140.0, Outcome.FAIL),
        ("single-flight.fetches", 1, Outcome.PASS),
        ("single-flight.fetches", 3, Outcome.FAIL),
        ("mem-upload.peak", None, Outcome.UNMEASURED),
        ("mem-upload.peak", math.nan, Outcome.UNMEASURED),
    ],
    ids=["peak-ok", "peak-over", "one-fetch", "three-fetches", "none", "nan"],
)
def test_judge(claim_id: str, value: float | None, outcome: Outcome) -> None:
    assert judge(claim_by_id(claim_id), Measurement(claim_id, value)).outcome is outcome


def test_judge_refuses_a_measurement_of_another_claim() -> None:
    with pytest.raises(ValueError, match=r"measurement.claim_id='split.sticky'"):
        judge(claim_by_id("mem-upload.peak"), Measurement("split.sticky", 0))


def _passing() -> list[Measurement]:
    values = {"<": -1.0, "<=": -1.0, ">=": 1e9, "==": None}
    return [
        Measurement(c.id, c.threshold if values[str(c.op)] is None else values[str(c.op)]) for c in CLAIMS
    ]


def test_all_passing_exits_zero() -> None:
    verdicts = judge_all(_passing())
    assert all(v.outcome is Outcome.PASS for v in verdicts)
    assert exit_code(verdicts) == 0


def test_a_failing_must_claim_exits_one() -> None:
    verdicts = judge_all([*_passing(), Measurement("mem-upload.peak", 500.0)])
    assert exit_code(verdicts) == 1


def test_a_failing_should_claim_does_not_fail_the_run() -> None:
    verdicts = judge_all([*_passing(), Measurement("throughput.ratio", 1.2)])
    assert [v.claim.id for v in verdicts if v.outcome is Outcome.FAIL] == ["throughput.ratio"]
    assert exit_code(verdicts) == 0


def test_an_unmeasured_must_claim_fails_the_run() -> None:
    measurements = [m for m in _passing() if m.claim_id != "rollback.detect"]
    verdicts = judge_all(measurements)
    assert {v.claim.id for v in verdicts if v.outcome is Outcome.UNMEASURED} == {"rollback.detect"}
    assert exit_code(verdicts) == 1


def test_unknown_measurement_is_an_error_not_silence() -> None:
    with pytest.raises(KeyError, match=r"claim_id='mem-uplaod\.peak'"):
        judge_all([Measurement("mem-uplaod.peak", 1.0)])


def test_measured_text_shows_the_reason_when_missing() -> None:
    verdict = judge(claim_by_id("rollback.detect"), Measurement.failed("rollback.detect", "boom"))
    assert verdict.measured == "not measured (boom)"
