"""The proving ground of llmfiles: every claim measured, a report written, load runs through a service.

Run it as ``python -m harness bench [--quick] [--out DIR]`` or ``python -m harness load ...``.
"""

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
