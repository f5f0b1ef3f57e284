"""The statistical judge: verdicts on known shifts, the interval's arithmetic, the advice when undecided."""

import math

import numpy as np
import pytest

from llmfiles import ConfigError
from llmfiles.rollout import JudgeVerdict, judge_latency, judge_rate, latency_verdict


def _lognormal(seed: int, n: int, factor: float = 1.0) -> list[float]:
    # The mock's 'realistic' latency: median 0.2 s, sigma 0.6 in log space.
    rng = np.random.default_rng(seed)
    return list(rng.lognormal(math.log(0.2), 0.6, n) * factor)


@pytest.mark.parametrize(
    ("n", "factor", "verdict"),
    [(300, 1.5, JudgeVerdict.FAIL), (2000, 1.0, JudgeVerdict.PASS), (40, 1.0, JudgeVerdict.INCONCLUSIVE)],
    ids=["50pct-slower-fails", "same-and-many-passes", "same-and-few-is-undecided"],
)
def test_latency_verdicts_on_known_shifts(n: int, factor: float, verdict: JudgeVerdict) -> None:
    judgement = judge_latency(_lognormal(1, n), _lognormal(2, n, factor), tolerance=1.05)
    assert judgement.verdict is verdict
    assert judgement.ci_low <= judgement.shift_ratio <= judgement.ci_high
    assert (judgement.n_control, judgement.n_candidate) == (n, n)
    assert (judgement.more_samples_needed is not None) == (verdict is JudgeVerdict.INCONCLUSIVE)


@pytest.mark.parametrize("seed", range(12))
def test_the_verdict_alone_is_the_judgements_verdict(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n1, n2 = int(rng.integers(2, 400)), int(rng.integers(2, 400))
    slower, tolerance = float(rng.choice([1.0, 1.05, 1.2, 1.5])), float(rng.choice([1.0, 1.02, 1.1]))
    control, candidate = _lognormal(seed, n1), _lognormal(seed + 100, n2, slower)
    full = judge_latency(control, candidate, tolerance=tolerance)
    assert latency_verdict(control, candidate, tolerance=tolerance) is full.verdict


def test_hodges_lehmann_figures_are_the_order_statistics_of_the_pairwise_ratios() -> None:
    control, candidate = _lognormal(3, 37), _lognormal(4, 23, 1.3)
    judgement = judge_latency(control, candidate, tolerance=1.05, confidence=0.98)
    ratios = np.sort((np.array(candidate)[:, None] / np.array(control)[None, :]).ravel())
    # Hollander & Wolfe's rank of the lower bound, from U's normal approximation.
    k = math.floor(37 * 23 / 2 - 2.0537489 * math.sqrt(37 * 23 * (37 + 23 + 1) / 12))
    assert judgement.shift_ratio == pytest.approx(float(np.median(ratios)), rel=1e-6)
    assert judgement.ci_low == pytest.approx(ratios[k - 1], rel=1e-6)
    assert judgement.ci_high == pytest.approx(ratios[len(ratios) - k], rel=1e-6)


def test_latency_is_judged_as_a_ratio_so_scaling_both_arms_changes_nothing() -> None:
    control, candidate = _lognormal(5, 200), _lognormal(6, 200, 1.1)
    base = judge_latency(control, candidate, tolerance=1.05)
    scaled = judge_latency([v * 7 for v in control], [v * 7 for v in candidate], tolerance=1.05)
    assert scaled.shift_ratio == pytest.approx(base.shift_ratio, rel=1e-6)
    assert scaled.verdict is base.verdict


def test_the_advice_of_an_inconclusive_judgement_roughly_settles_it() -> None:
    first = judge_latency(_lognormal(7, 60), _lognormal(8, 60, 1.2), tolerance=1.05)
    assert first.verdict is JudgeVerdict.INCONCLUSIVE
    assert first.more_samples_needed is not None
    n = 60 + 2 * first.more_samples_needed  # twice the advice: the estimate wanders as samples come
    later = judge_latency(_lognormal(7, n), _lognormal(8, n, 1.2), tolerance=1.05)
    assert later.verdict is JudgeVerdict.FAIL


def test_an_empty_arm_is_inconclusive_not_an_error() -> None:
    judgement = judge_latency([], [0.2, 0.3], tolerance=1.05)
    assert judgement.verdict is JudgeVerdict.INCONCLUSIVE
    assert "control arm has no samples" in judgement.reason


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"tolerance": 0.0}, r"tolerance=0\.0"),
        ({"tolerance": 1.05, "confidence": 1.0}, r"confidence=1\.0"),
        ({"tolerance": 1.05, "control": [0.1, -0.2]}, r"control latencies"),
    ],
    ids=["tolerance", "confidence", "negative-latency"],
)
def test_latency_bad_input_names_the_value(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"control": [0.1, 0.2], "candidate": [0.1, 0.2], **kwargs}
    with pytest.raises(ConfigError, match=match):
        judge_latency(**args)  # type: ignore[arg-type]


def test_rate_interval_is_newcombes() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10: 56/70 - 48/80 and 0/10 - 0/20.
    judgement = judge_rate(48, 80, 56, 70, limit=0.5, confidence=0.975)
    assert (round(judgement.ci_low, 4), round(judgement.ci_high, 4)) == (0.0524, 0.3339)
    judgement = judge_rate(0, 20, 0, 10, limit=0.5, confidence=0.975)
    assert (round(judgement.ci_low, 4), round(judgement.ci_high, 4)) == (-0.1611, 0.2775)


@pytest.mark.parametrize(
    ("counts", "verdict"),
    [
        ((0, 600, 0, 600), JudgeVerdict.PASS),
        ((2, 4500, 30, 500), JudgeVerdict.FAIL),
        ((5, 500, 9, 500), JudgeVerdict.INCONCLUSIVE),
        ((0, 0, 0, 600), JudgeVerdict.PASS),
        ((0, 0, 30, 500), JudgeVerdict.FAIL),
    ],
    ids=["clean", "worse", "undecided", "no-control-clean", "no-control-worse"],
)
def test_rate_verdicts(counts: tuple[int, int, int, int], verdict: JudgeVerdict) -> None:
    judgement = judge_rate(*counts, limit=0.01)
    assert judgement.verdict is verdict
    assert judgement.ci_low <= judgement.difference <= judgement.ci_high
    assert (judgement.more_samples_needed is not None) == (verdict is JudgeVerdict.INCONCLUSIVE)


def test_zero_failures_need_enough_calls_to_pass() -> None:
    # The Wilson bound of 0/n at 98 % one-sided is about 4.2/n: under 1 % from about 420 calls.
    assert judge_rate(0, 5000, 0, 300, limit=0.01).verdict is JudgeVerdict.INCONCLUSIVE
    assert judge_rate(0, 5000, 0, 450, limit=0.01).verdict is JudgeVerdict.PASS


@pytest.mark.parametrize(
    ("args", "match"),
    [((5, 4, 0, 10), r"control_failures=5"), ((0, 10, -1, 10), r"candidate_failures=-1")],
    ids=["over-total", "negative"],
)
def test_rate_bad_counts_name_the_value(args: tuple[int, int, int, int], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        judge_rate(*args, limit=0.01)


def test_rate_bad_limit_names_the_value() -> None:
    with pytest.raises(ConfigError, match=r"limit=1\.5"):
        judge_rate(0, 10, 0, 10, limit=1.5)
