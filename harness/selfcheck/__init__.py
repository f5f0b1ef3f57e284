"""Negative controls: each claim measured against a deliberately broken part, which it must FAIL.

`CONTROLS` is the registry (one entry a claim and broken variant), `run_self_check` runs it
(``python -m harness bench --self-check``), and `harness.selfcheck._broken` holds the broken parts.
"""

from harness.selfcheck._controls import CONTROLS, Control
from harness.selfcheck._run import ControlResult, run_controls, run_self_check, uncovered_claims

__all__ = [
    "CONTROLS",
    "Control",
    "ControlResult",
    "run_controls",
    "run_self_check",
    "uncovered_claims",
]
