"""Split case: is the rollout's hash bucketing uniform, sticky and monotonic in the percentage?

Pure computation over `llmfiles.rollout.bucket`/`in_rollout`; no mock involved.
"""

from __future__ import annotations

import asyncio
import itertools

from harness._context import BenchContext
from harness.cases._stats import chi_square_p_value
from harness.report._verdict import Measurement
from llmfiles.rollout import bucket, in_rollout

__all__ = ["STAGES", "measure_split", "split_figures"]

#: The rollout's stage percentages (DESIGN.md), with 0 in front: the path a key must only ever join.
STAGES = (0.0, 1.0, 10.0, 50.0, 100.0)
_BINS = 100
_SALT = "bench-split"


def split_figures(keys: int, *, salt: str = _SALT) -> tuple[float, float, int, int]:
    """(chi-square statistic, p-value, sticky changes, monotonicity violations) over `keys` keys.

    Stickiness and monotonicity are checked on the first tenth of the keys: they are exact properties,
    one counterexample is enough, and 10^5 keys keep the case within a few seconds.
    """

    counts = [0] * _BINS
    width = 10_000 // _BINS
    for i in range(keys):
        counts[bucket(f"user-{i}", salt=salt) // width] += 1
    expected = keys / _BINS
    statistic = sum((c - expected) ** 2 / expected for c in counts)
    p_value = chi_square_p_value(statistic, _BINS - 1)
    sample = [f"user-{i}" for i in range(max(1, keys // 10))]
    changes = sum(bucket(key, salt=salt) != bucket(key, salt=salt) for key in sample)
    violations = 0
    for key in sample:
        joined = [in_rollout(key, percent, salt) for percent in STAGES]
        violations += any(earlier and not later for earlier, later in itertools.pairwise(joined))
    return statistic, p_value, changes, violations


async def measure_split(ctx: BenchContext) -> list[Measurement]:
    keys = ctx.config.split_keys
    statistic, p_value, changes, violations = await asyncio.to_thread(split_figures, keys)
    detail = {"keys": keys, "bins": _BINS, "chi_square": round(statistic, 2), "dof": _BINS - 1}
    return [
        Measurement("split.uniform", p_value, detail),
        Measurement("split.sticky", changes, {"keys": max(1, keys // 10)}),
        Measurement(
            "split.monotonic", violations, {"keys": max(1, keys // 10), "stages_percent": list(STAGES)}
        ),
    ]
