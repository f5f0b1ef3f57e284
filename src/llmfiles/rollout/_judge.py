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
from scipy import special

from llmfiles._errors import ConfigError

__all__ = [
    "JudgeVerdict",
    "LatencyJudgement",
    "RateJudgement",
    "judge_latency",
    "judge_rate",
    "latency_verdict",
]

_FloatArray = npt.NDArray[np.float64]
#: Latencies in seconds: a list, a tuple, or a numpy array (simulations pass arrays).
Samples = Sequence[float] | npt.NDArray[np.float64]


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


def _percent(confidence: float) -> str:
    # 98%, 99.9937%, 99.9999999999%: a look's confidence can be within 1e-12 of 1, never shown as 100%.
    return f"{100 * confidence:.12g}%"


def _check_confidence(confidence: float) -> float:
    if not 0.5 < confidence < 1:
        raise ConfigError(f"confidence={confidence!r} must be within (0.5, 1), e.g. 0.98")
    return float(special.ndtri(confidence))  # the normal quantile; stats.norm.ppf costs 100x more per call


def _per_arm_more(n_control: int, n_candidate: int, factor: float) -> int | None:
    """Samples to add to each arm so the interval's variance term shrinks by `factor`.

    The Hodges-Lehmann interval narrows as ``sqrt(1/n1 + 1/n2)``; solve
    ``1/(n1+m) + 1/(n2+m) = (1/n1 + 1/n2) / factor`` for m.
    """
    if not math.isfinite(factor) or factor <= 1 or n_control < 1 or n_candidate < 1:
        return None
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


def _positive(name: str, samples: Samples) -> _FloatArray:
    values = np.asarray(samples, dtype=np.float64)
    if values.ndim != 1 or not np.all(np.isfinite(values)) or np.any(values <= 0):
        raise ConfigError(
            f"{name} latencies must be finite seconds > 0, got {len(values)} values with others"
        )
    return np.sort(np.log(values))


def _bound_rank(n1: int, n2: int, z: float) -> int:
    # The normal approximation of U's null distribution gives the rank of the interval's lower bound among
    # the n1 x n2 sorted differences (Hollander & Wolfe); below rank 1 the interval is unbounded.
    total = n1 * n2
    return math.floor(total / 2 - z * math.sqrt(total * (n1 + n2 + 1) / 12))


def _verdict(x: _FloatArray, y: _FloatArray, margin: float, z: float) -> tuple[JudgeVerdict, int]:
    """The verdict from one count: the lower bound (rank k) is above the margin exactly when fewer than k
    differences are at or below it, and the upper bound (rank n1 n2 - k + 1) at or below it when at
    least that many are. Returns the verdict and k."""
    total = len(x) * len(y)
    k = _bound_rank(len(x), len(y), z)
    if k < 1:
        return JudgeVerdict.INCONCLUSIVE, k
    at_most = _count_at_most(x, y, margin)
    if at_most < k:
        return JudgeVerdict.FAIL, k
    if at_most >= total - k + 1:
        return JudgeVerdict.PASS, k
    return JudgeVerdict.INCONCLUSIVE, k


def latency_verdict(
    control: Samples, candidate: Samples, *, tolerance: float, confidence: float = 0.98
) -> JudgeVerdict:
    """`judge_latency`'s verdict alone, without the estimate, the interval and the p-value.

    The same decision in a fraction of the time (one sort and one count): for simulations that judge
    thousands of stages. An empty arm is INCONCLUSIVE.

    Raises:
        ConfigError: as `judge_latency`.
    """
    if not tolerance > 0:
        raise ConfigError(f"tolerance={tolerance!r} must be a latency ratio > 0, e.g. 1.05")
    z = _check_confidence(confidence)
    x, y = _positive("control", control), _positive("candidate", candidate)
    if not len(x) or not len(y):
        return JudgeVerdict.INCONCLUSIVE
    return _verdict(x, y, math.log(tolerance), z)[0]


def judge_latency(
    control: Samples,
    candidate: Samples,
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
    verdict, k = _verdict(x, y, margin, z)
    if k >= 1:
        low, high = _kth_difference(x, y, k), _kth_difference(x, y, total - k + 1)
    else:
        low, high = -math.inf, math.inf
    shift = (_kth_difference(x, y, (total + 1) // 2) + _kth_difference(x, y, total // 2 + 1)) / 2
    # Asymptotic, like the interval: scipy's "auto" goes exact when an arm has under 8 samples, which
    # against thousands of control samples takes a minute.
    from scipy import stats  # imported when judged: it costs a second at start-up

    p_value = float(stats.mannwhitneyu(y, x, alternative="two-sided", method="asymptotic").pvalue)
    more = _more(shift, low, high, margin, n1, n2) if verdict is JudgeVerdict.INCONCLUSIVE else None
    ratio, ratio_low, ratio_high = math.exp(shift), math.exp(low), math.exp(high)
    shown = (
        f"latency x{ratio:.3f} [{ratio_low:.3f}, {ratio_high:.3f}] vs tolerance x{tolerance:g} "
        f"({n2} candidate / {n1} control samples, {_percent(confidence)} bounds)"
    )
    if verdict is JudgeVerdict.INCONCLUSIVE:
        shown += "; inconclusive" + (
            f": about {more} more samples per arm would likely settle it" if more else ""
        )
    return LatencyJudgement(verdict, ratio, ratio_low, ratio_high, p_value, n1, n2, more, shown)


def _wilson(failures: int, total: int, level: float) -> tuple[float, float]:
    from scipy import stats  # imported when judged: it costs a second at start-up

    ci = stats.binomtest(failures, total).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def _difference_interval(
    control_failures: int, control_total: int, candidate_failures: int, candidate_total: int, level: float
) -> tuple[float, float]:
    """Bounds on candidate rate minus control rate; the candidate's Wilson interval alone without control."""
    c_low, c_high = _wilson(candidate_failures, candidate_total, level)
    if not control_total:
        return c_low, c_high
    k_low, k_high = _wilson(control_failures, control_total, level)
    p1, p2 = candidate_failures / candidate_total, control_failures / control_total
    # Newcombe (1998), method 10: each side of the difference from the matching sides of the two Wilson
    # intervals, which keeps the interval inside [-1, 1] and honest at zero counts.
    return p1 - p2 - math.hypot(p1 - c_low, k_high - p2), p1 - p2 + math.hypot(c_high - p1, p2 - k_low)


def _rate_more(
    control_failures: int, control_total: int, candidate_failures: int, candidate_total: int, limit: float,
    level: float,
) -> int | None:  # fmt: skip
    """Calls to add to each arm, at the rates seen so far, before the interval clears `limit` on a side.

    Found by search rather than a square-root rule: at zero failures Wilson's bound shrinks as 1/n, so
    the square-root rule would ask for ten times too many calls. None when a million more would not do.
    """
    p1 = candidate_failures / candidate_total
    p2 = control_failures / control_total if control_total else 0.0

    def settled(more: int) -> bool:
        k2 = control_total + more if control_total else 0
        n1 = candidate_total + more
        low, high = _difference_interval(round(p2 * k2), k2, round(p1 * n1), n1, level)
        return low > limit or high < limit

    hi = 1
    while not settled(hi):
        hi *= 2
        if hi > 1_000_000:
            return None
    lo = hi // 2  # not settled at lo (or lo == 0, which is where we are)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if settled(mid) else (mid, hi)
    return hi


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
    difference = candidate_rate - control_rate
    low, high = _difference_interval(
        control_failures, control_total, candidate_failures, candidate_total, level
    )
    from scipy import stats  # imported when judged: it costs a second at start-up

    if control_total:
        table = np.array(
            [
                [candidate_failures, candidate_total - candidate_failures],
                [control_failures, control_total - control_failures],
            ]
        )
        p_value = float(stats.fisher_exact(table, alternative="greater").pvalue)
    else:
        p_value = float(
            stats.binomtest(candidate_failures, candidate_total, limit, alternative="greater").pvalue
        )
    verdict = (
        JudgeVerdict.FAIL if low > limit else JudgeVerdict.PASS if high < limit else JudgeVerdict.INCONCLUSIVE
    )
    more = (
        _rate_more(control_failures, control_total, candidate_failures, candidate_total, limit, level)
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
