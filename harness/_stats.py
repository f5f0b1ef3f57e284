"""Small statistics the runners share: percentiles and the chi-square p-value.

Hand-written because the only library that does them well here (scipy) is a 40 MB dependency for two
functions; numpy's percentile would do, but the nearest-rank definition below is what the gates use too.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["chi_square_p_value", "percentile"]


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank `q`-th percentile (0 < q <= 100) of `values`; NaN for no values."""
    if not 0 < q <= 100:
        raise ValueError(f"q={q!r} must be in (0, 100]")
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def chi_square_p_value(statistic: float, dof: int) -> float:
    """Upper-tail p-value of a chi-square statistic with `dof` degrees of freedom.

    Uses the Wilson-Hilferty cube-root normal approximation, accurate to about 1e-3 for dof >= 30, which
    is plenty to tell 0.001 from 0.5 (the gate the split claim uses).
    """
    if dof < 1:
        raise ValueError(f"dof={dof!r} must be at least 1")
    if statistic <= 0:
        return 1.0
    z = ((statistic / dof) ** (1 / 3) - (1 - 2 / (9 * dof))) / math.sqrt(2 / (9 * dof))
    return 0.5 * math.erfc(z / math.sqrt(2))
