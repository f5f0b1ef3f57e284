"""Measurements and verdicts: what a runner saw, and what that means for a claim.

Runners never decide; they return `Measurement`s. `judge` compares one with its claim's threshold, so the
rule "a missing number is not a pass" lives in one place: a claim nobody measured is UNMEASURED, and an
UNMEASURED ``must`` claim fails the run like a FAIL does (a claim is settled by a number, not by silence).
"""

from __future__ import annotations

import enum
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.report._claims import CLAIMS, Claim, Priority

__all__ = ["Measurement", "Outcome", "Verdict", "exit_code", "judge", "judge_all"]


@dataclass(frozen=True, slots=True)
class Measurement:
    """One number a runner measured for one claim.

    Args:
        claim_id: the claim it settles.
        value: the measured number in the claim's unit; None when the runner could not measure it.
        detail: the figures behind the number (both arms, sample counts), for the report.
        note: why `value` is None, or a caveat worth reading next to the number.
    """

    claim_id: str
    value: float | None
    detail: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""

    @classmethod
    def failed(cls, claim_id: str, note: str) -> Measurement:
        """A measurement that could not be taken, with the reason."""
        return cls(claim_id=claim_id, value=None, note=note)


class Outcome(enum.StrEnum):
    """The verdict on one claim."""

    PASS = "PASS"  # noqa: S105 - a verdict, not a password
    FAIL = "FAIL"
    UNMEASURED = "UNMEASURED"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A claim, what was measured for it, and the outcome."""

    claim: Claim
    measurement: Measurement | None
    outcome: Outcome

    @property
    def fails_run(self) -> bool:
        """True when this verdict must make the bench exit non-zero."""
        return self.claim.priority is Priority.MUST and self.outcome is not Outcome.PASS

    @property
    def measured(self) -> str:
        """The measured value formatted for a table, or the reason it is missing."""
        if self.measurement is None:
            return "not measured"
        if self.measurement.value is None or not math.isfinite(self.measurement.value):
            return f"not measured ({self.measurement.note})" if self.measurement.note else "not measured"
        return f"{_fmt(self.measurement.value)} {self.claim.unit}".rstrip()


def _fmt(value: float) -> str:
    if value == int(value) and abs(value) < 1e12:
        return str(int(value))
    if abs(value) < 0.01:
        return f"{value:.2e}"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.1f}"


def judge(claim: Claim, measurement: Measurement | None) -> Verdict:
    """The verdict on `claim` given `measurement` (None: nobody measured it)."""
    if measurement is not None and measurement.claim_id != claim.id:
        raise ValueError(
            f"measurement.claim_id={measurement.claim_id!r} does not match claim.id={claim.id!r}"
        )
    if measurement is None or measurement.value is None or not math.isfinite(measurement.value):
        return Verdict(claim, measurement, Outcome.UNMEASURED)
    held = claim.op.holds(measurement.value, claim.threshold)
    return Verdict(claim, measurement, Outcome.PASS if held else Outcome.FAIL)


def judge_all(measurements: Iterable[Measurement], claims: Sequence[Claim] = CLAIMS) -> list[Verdict]:
    """One verdict per claim, in the table's order; the last measurement of a claim wins.

    Raises:
        KeyError: a measurement names a claim that is not in `claims` (a typo would otherwise vanish).
    """
    known = {claim.id for claim in claims}
    latest: dict[str, Measurement] = {}
    for measurement in measurements:
        if measurement.claim_id not in known:
            raise KeyError(f"measurement.claim_id={measurement.claim_id!r} is not in the claims table")
        latest[measurement.claim_id] = measurement
    return [judge(claim, latest.get(claim.id)) for claim in claims]


def exit_code(verdicts: Iterable[Verdict]) -> int:
    """1 when any ``must`` claim did not pass (failed or unmeasured), else 0."""
    return 1 if any(verdict.fails_run for verdict in verdicts) else 0
