"""The statistical judge: is the candidate arm worse than the stage allows, within it, or can't we tell yet?

Latency (`judge_latency`): a Mann-Whitney U comparison of the candidate's latencies with the control's,
with the Hodges-Lehmann estimate of the shift and its distribution-free confidence interval, the method
of Kayenta's canary judge. The comparison is made on log-latency, so the shift is a ratio: a
Hodges-Lehmann shift of ``log 1.2`` means the typical candidate call takes 1.2x the control's, and the
stage's tolerance (1.05) is compared as ``log 1.05`` directly. Log scale because latency slows down by
factors (a slower disk, a busier provider multiply every call), its spread grows with its level, and a
ratio needs no control median to express (a shift in seconds would tie the tolerance to one noisy figure).
Mann-Whitney because it uses ranks: one 30-second outlier weighs no more than any other slow call.

Rates (`judge_rate`): the difference of two proportions, candidate minus control, with Newcombe's
hybrid-score interval built on the two Wilson intervals (good with zero failures, where the textbook
Wald interval collapses to a point), against the stage's limit on that difference. With no control
calls (the 100 % stage) the candidate's own rate is judged against the limit.

Verdicts, for either: FAIL when the interval's lower bound is above the tolerance (worse than allowed
with `confidence`), PASS when its upper bound is below it (within it with `confidence`), otherwise
INCONCLUSIVE, with a rough count of the further samples that would shrink the interval enough to
decide, if the estimate stays where it is. Each bound is one-sided at `confidence`: a FAIL at 0.98 is
wrong at most 2 % of the time on an arm exactly at the tolerance, and far less on an arm no worse than
the control. The two bounds together form a ``2 x confidence - 1`` (96 %) two-sided interval.

scipy (``scipy.stats``) supplies the tests and intervals: the Mann-Whitney U test, the normal
quantiles, the Wilson interval (``binomtest(...).proportion_ci``) and Fisher's exact test. It is the
reference implementation of each, well kept and typed; hand-written here are only the Hodges-Lehmann
order statistics (scipy has none) and Newcombe's combination of two Wilson intervals (two lines).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt
from scipy import stats

from llmfiles._errors import ConfigError

__all__ = ["JudgeVerdict", "LatencyJudgement", "RateJudgement", "judge_latency", "judge_rate"]

_FloatArray = npt.NDArray[np.float64]


class JudgeVerdict(StrEnum):
    PASS = "PASS"  # noqa: S105 (a verdict, not a password)
    FAIL = "FAIL"
    INCONCLUSIVE = "INCONCLUSIVE"


@dataclass(frozen=True, slots=True)
class LatencyJudgement:
    """The judge's answer on latency, with its evidence.

    Args:
        verdict: PASS, FAIL or INCONCLUSIVE.
        shift_ratio: Hodges-Lehmann estimate of candidate over control (1.10: 10 % slower); NaN
            when an arm has no samples.
        ci_low: lower bound of the ratio, one-sided at the confidence (0.0 when unbounded).
        ci_high: upper bound of the ratio, one-sided at the confidence (inf when unbounded).
        p_value: two-sided Mann-Whitney p-value of "no difference at all", for reference: the verdict
            comes from the interval against the tolerance, not from this (1.0 when an arm is empty).
        n_control: control samples judged.
        n_candidate: candidate samples judged.
        more_samples_needed: when INCONCLUSIVE, roughly how many more samples in each arm would
            likely settle it if the estimate held; None otherwise or when no figure can be given.
        reason: one line for a verdict's reasons.
    """

    verdict: JudgeVerdict
    shift_ratio: float
    ci_low: float
    ci_high: float
    p_value: float
    n_control: int
    n_candidate: int
    more_samples_needed: int | None
    reason: str


@dataclass(frozen=True, slots=True)
class RateJudgement:
    """The judge's answer on a failure rate (errors, timeouts), with its evidence.

    Args:
        verdict: PASS, FAIL or INCONCLUSIVE.
        difference: candidate rate minus control rate (the candidate's rate alone without control
            calls); NaN when the candidate has no calls.
        ci_low: lower bound of the difference, one-sided at the confidence.
        ci_high: upper bound of the difference, one-sided at the confidence.
        p_value: one-sided Fisher exact p-value of "the candidate fails no more often than the control"
            (with no control calls: binomial test of "no more often than the limit"); 1.0 when empty.
        n_control: control calls.
        n_candidate: candidate calls.
        control_rate: control failures over its calls (0.0 without calls).
        candidate_rate: candidate failures over its calls (0.0 without calls).
        more_samples_needed: as for latency.
        reason: one line for a verdict's reasons.
    """

    verdict: JudgeVerdict
    difference: float
    ci_low: float
    ci_high: float
    p_value: float
    n_control: int
    n_candidate: int
    control_rate: float
    candidate_rate: float
    more_samples_needed: int | None
    reason: str


def _check_confidence(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ConfigError(f"confidence={confidence!r} must be within (0.5, 1), e.g. 0.98")
    return float(stats.norm.ppf(confidence))


def _per_arm_more(n_control: int, n_candidate: int, factor: float) -> int | None:
    """Samples to add to each arm so the interval's variance term shrinks by `factor`.

    Both the Hodges-Lehmann and the proportions intervals narrow as ``sqrt(1/n1 + 1/n2)``; solve
    ``1/(n1+m) + 1/(n2+m) = (1/n1 + 1/n2) / factor`` for m.
    """
    if not math.isfinite(factor) or factor <= 1 or n_candidate < 1:
        return None
    if not n_control:  # judged against a fixed limit: the candidate's term alone
        return max(1, math.ceil(n_candidate * (factor - 1)))
    n1, n2 = float(n_control), float(n_candidate)
    v = (1 / n1 + 1 / n2) / factor
    b = v * (n1 + n2) - 2
    c = v * n1 * n2 - (n1 + n2)
    m = (-b + math.sqrt(b * b - 4 * v * c)) / (2 * v)
    return max(1, math.ceil(m))


def _more(
    estimate: float, low: float, high: float, margin: float, n_control: int, n_candidate: int
) -> int | None:
    # The interval must pull its near bound past the margin: the half-width on the margin's side has to
    # shrink to the estimate's distance from the margin.
    if not (math.isfinite(low) and math.isfinite(high)) or estimate == margin:
        return None
    half = estimate - low if estimate > margin else high - estimate
    return _per_arm_more(n_control, n_candidate, (half / abs(estimate - margin)) ** 2)


def _count_at_most(x: _FloatArray, y: _FloatArray, t: float) -> int:
    """How many pairwise differences ``y_j - x_i`` are <= t (x and y sorted), in O(n log n)."""
    if len(y) <= len(x):
        return int(len(x) * len(y) - np.searchsorted(x, y - t, side="left").sum())
    return int(np.searchsorted(y, x + t, side="right").sum())


def _kth_difference(x: _FloatArray, y: _FloatArray, k: int) -> float:
    """The k-th smallest (1-based) of the n1 x n2 differences ``y_j - x_i``, without forming them.

    Bisection on the value, counting with binary searches: memory stays O(n) where the textbook
    version sorts all n1 x n2 differences (tens of millions at a production stage's counts). Resolved to
    1e-7 in log-latency, a 1e-7 relative error on the ratio, far below any tolerance.
    """
    lo, hi = float(y[0] - x[-1]), float(y[-1] - x[0])
    while hi - lo > 1e-7:
        mid = (lo + hi) / 2
        if _count_at_most(x, y, mid) >= k:
            hi = mid
        else:
            lo = mid
    return hi


def _positive(name: str, samples: Sequence[float]) -> _FloatArray:
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ConfigError(
            f"{name} latencies must be finite seconds > 0, got {len(values)} values with others"
        )
    return np.sort(np.log(values))


def judge_latency(
    control: Sequence[float],
    candidate: Sequence[float],
    *,
    tolerance: float,
    confidence: float = 0.98,
) -> LatencyJudgement:
    """Judge the candidate's latencies against the control's and a tolerance ratio (1.05: 5 % slower).

    Raises:
        ConfigError: `tolerance` not > 0, `confidence` outside (0.5, 1), or a latency not > 0.
    """
    if not tolerance > 0:
        raise ConfigError(f"tolerance={tolerance!r} must be a latency ratio > 0, e.g. 1.05")
    z = _check_confidence(confidence)
    x, y = _positive("control", control), _positive("candidate", candidate)
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        empty = "control" if not n1 else "candidate"
        return LatencyJudgement(
            JudgeVerdict.INCONCLUSIVE, math.nan, 0.0, math.inf, 1.0, n1, n2, None,
            f"latency not judged: the {empty} arm has no samples",
        )  # fmt: skip
    total = n1 * n2
    margin = math.log(tolerance)
    # The normal approximation of U's null distribution gives the rank of the interval's bounds among the
    # sorted differences (Hollander & Wolfe); below rank 1 the interval is unbounded on that side.
    k = math.floor(total / 2 - z * math.sqrt(total * (n1 + n2 + 1) / 12))
    at_most = _count_at_most(x, y, margin)
    if k >= 1:
        low, high = _kth_difference(x, y, k), _kth_difference(x, y, total - k + 1)
        verdict = (
            JudgeVerdict.FAIL
            if at_most < k
            else JudgeVerdict.PASS
            if at_most >= total - k + 1
            else JudgeVerdict.INCONCLUSIVE
        )
    else:
        low, high, verdict = -math.inf, math.inf, JudgeVerdict.INCONCLUSIVE
    shift = (_kth_difference(x, y, (total + 1) // 2) + _kth_difference(x, y, total // 2 + 1)) / 2
    p_value = float(stats.mannwhitneyu(y, x, alternative="two-sided").pvalue)
    more = _more(shift, low, high, margin, n1, n2) if verdict is JudgeVerdict.INCONCLUSIVE else None
    ratio, ratio_low, ratio_high = math.exp(shift), math.exp(low), math.exp(high)
    shown = (
        f"latency x{ratio:.3f} [{ratio_low:.3f}, {ratio_high:.3f}] vs tolerance x{tolerance:g} "
        f"({n2} candidate / {n1} control samples, {confidence:.0%} bounds)"
    )
    if verdict is JudgeVerdict.INCONCLUSIVE:
        shown += "; inconclusive" + (
            f": about {more} more samples per arm would likely settle it" if more else ""
        )
    return LatencyJudgement(verdict, ratio, ratio_low, ratio_high, p_value, n1, n2, more, shown)


def _wilson(failures: int, total: int, level: float) -> tuple[float, float]:
    ci = stats.binomtest(failures, total).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def judge_rate(
    control_failures: int,
    control_total: int,
    candidate_failures: int,
    candidate_total: int,
    *,
    limit: float,
    confidence: float = 0.98,
) -> RateJudgement:
    """Judge the candidate's failure rate minus the control's against `limit` (0.01: one point more).

    With ``control_total == 0`` the candidate's own rate is judged against `limit`.

    Raises:
        ConfigError: counts negative or failures over totals, `limit` outside [0, 1], or a bad confidence.
    """
    _check_confidence(confidence)
    if not 0 <= limit <= 1:
        raise ConfigError(f"limit={limit!r} must be a fraction within [0, 1], e.g. 0.01")
    for name, failures, total in (
        ("control", control_failures, control_total),
        ("candidate", candidate_failures, candidate_total),
    ):
        if not 0 <= failures <= total:
            raise ConfigError(f"{name}_failures={failures!r} must be within [0, {name}_total={total!r}]")
    level = 2 * confidence - 1  # two-sided level whose bounds are each one-sided at `confidence`
    control_rate = control_failures / control_total if control_total else 0.0
    candidate_rate = candidate_failures / candidate_total if candidate_total else 0.0
    if not candidate_total:
        return RateJudgement(
            JudgeVerdict.INCONCLUSIVE, math.nan, -1.0, 1.0, 1.0, control_total, 0, control_rate, 0.0, None,
            "rate not judged: the candidate arm has no calls",
        )  # fmt: skip
    c_low, c_high = _wilson(candidate_failures, candidate_total, level)
    difference = candidate_rate - control_rate
    if control_total:
        k_low, k_high = _wilson(control_failures, control_total, level)
        # Newcombe (1998), method 10: each side of the difference from the matching sides of the two
        # Wilson intervals, which keeps the interval inside [-1, 1] and honest at zero counts.
        low = difference - math.hypot(candidate_rate - c_low, k_high - control_rate)
        high = difference + math.hypot(c_high - candidate_rate, control_rate - k_low)
        table = np.array(
            [
                [candidate_failures, candidate_total - candidate_failures],
                [control_failures, control_total - control_failures],
            ]
        )
        p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    else:
        low, high = c_low, c_high
        p_value = float(
            stats.binomtest(candidate_failures, candidate_total, limit, alternative="greater").pvalue
        )
    verdict = (
        JudgeVerdict.FAIL if low > limit else JudgeVerdict.PASS if high < limit else JudgeVerdict.INCONCLUSIVE
    )
    more = (
        _more(difference, low, high, limit, control_total, candidate_total)
        if verdict is JudgeVerdict.INCONCLUSIVE
        else None
    )
    against = "control" if control_total else "no control: absolute"
    shown = (
        f"{candidate_failures}/{candidate_total} vs {control_failures}/{control_total} "
        f"({against}), difference {difference:+.2%} [{low:+.2%}, {high:+.2%}] vs limit {limit:+.2%}"
    )
    if verdict is JudgeVerdict.INCONCLUSIVE:
        shown += "; inconclusive" + (
            f": about {more} more calls per arm would likely settle it" if more else ""
        )
    return RateJudgement(
        verdict, difference, low, high, p_value, control_total, candidate_total, control_rate, candidate_rate,
        more, shown,
    )  # fmt: skip
