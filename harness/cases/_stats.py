"""The chi-square p-value for the split case.

Hand-written because the library that does it well (scipy) is a large dependency for one function.
Percentiles come from `llmfiles.observe.percentile`, the nearest-rank definition the gates use.
"""

from __future__ import annotations

import math

__all__ = ["chi_square_p_value"]


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
