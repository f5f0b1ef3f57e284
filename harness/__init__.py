"""The proving ground of llmfiles: every claim measured, a report written, load runs through a service.

Run it as ``python -m harness bench [--quick] [--out DIR]`` or ``python -m harness load ...``.

The names below are imported on first use: any ``import harness.X`` runs this file first, and a memory
probe (a fresh interpreter per figure) must not pay for the report's matplotlib to measure one transfer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness._lost import LostReport, find_lost
    from harness.report._claims import CLAIMS, TOPICS, Claim, Op, Priority, claim_by_id
    from harness.report._report import ReportFiles, write_report
    from harness.report._series import (
        Collected,
        MemoryPoint,
        PeerFigure,
        ScalePoint,
        ThroughputPoint,
        TimelinePoint,
    )
    from harness.report._verdict import Measurement, Outcome, Verdict, exit_code, judge, judge_all

_HOMES = {
    "harness._lost": ("LostReport", "find_lost"),
    "harness.report._claims": ("CLAIMS", "TOPICS", "Claim", "Op", "Priority", "claim_by_id"),
    "harness.report._report": ("ReportFiles", "write_report"),
    "harness.report._series": (
        "Collected",
        "MemoryPoint",
        "PeerFigure",
        "ScalePoint",
        "ThroughputPoint",
        "TimelinePoint",
    ),
    "harness.report._verdict": ("Measurement", "Outcome", "Verdict", "exit_code", "judge", "judge_all"),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = [
    "CLAIMS",
    "TOPICS",
    "Claim",
    "Collected",
    "LostReport",
    "Measurement",
    "MemoryPoint",
    "Op",
    "Outcome",
    "PeerFigure",
    "Priority",
    "ReportFiles",
    "ScalePoint",
    "ThroughputPoint",
    "TimelinePoint",
    "Verdict",
    "claim_by_id",
    "exit_code",
    "find_lost",
    "judge",
    "judge_all",
    "write_report",
]


def __getattr__(name: str) -> object:
    home = _HOME_OF.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
