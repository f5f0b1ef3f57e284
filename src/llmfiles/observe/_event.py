"""The one record a dispatched upload leaves behind.

Every sink (the recorder, the JSONL log, Prometheus) consumes the same `Event`, so the figures a gate
judges, the log an operator reads and the metrics a dashboard plots cannot disagree. The field order in
`EVENT_FIELDS` is the CSV column order and never changes; new fields go at the end.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any, Final, Literal, get_args

import httpx

from llmfiles._errors import ConfigError, IntegrityError, UnsafeFilenameError

Arm = Literal["async", "legacy"]
Outcome = Literal["success", "failure", "fallback"]

ARMS: Final[tuple[Arm, ...]] = get_args(Arm)
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)


class ErrorKind(StrEnum):
    """What kind of error ended a call, decided from the exception's type where it was raised.

    The gates and the figures read this, never the class name: renaming an error class (or raising a
    subclass of one) cannot turn a timeout into an unknown error or silence a critical one.
    """

    TIMEOUT = "timeout"
    CRITICAL = "critical"
    OTHER = "other"


#: Errors that are timeouts: the standard library's (which `TransferTimeoutError` is) and httpx's.
TIMEOUT_ERRORS: Final[tuple[type[BaseException], ...]] = (TimeoutError, httpx.TimeoutException)
#: Errors that roll back on the first occurrence: data that arrived corrupted, or a name that tried to
#: escape its directory.
CRITICAL_ERRORS: Final[tuple[type[BaseException], ...]] = (IntegrityError, UnsafeFilenameError)


def classify_error(error: BaseException) -> ErrorKind:
    """The `ErrorKind` of `error`, by ``isinstance`` on the types above (subclasses included)."""
    if isinstance(error, CRITICAL_ERRORS):
        return ErrorKind.CRITICAL
    if isinstance(error, TIMEOUT_ERRORS):
        return ErrorKind.TIMEOUT
    return ErrorKind.OTHER


EVENT_FIELDS: Final[tuple[str, ...]] = (
    "ts",
    "flag",
    "arm",
    "outcome",
    "duration_s",
    "bytes",
    "error_type",
    "provider",
    "stage",
    "key_hash",
    "error_kind",
)


@dataclass(frozen=True, slots=True)
class Event:
    """One dispatched call, whatever happened to it.

    Args:
        ts: wall-clock start of the call (unix seconds); the arm was chosen at this instant.
        flag: the flag that chose the arm (its salt), so several rollouts can share one log.
        arm: the arm the flag chose. A call rescued by the legacy arm stays ``"async"`` with outcome
            ``"fallback"``: the async arm failed it, and that is what the gates must see.
        outcome: ``"success"``, ``"failure"`` (the caller got an exception) or ``"fallback"``.
        duration_s: time from the decision to the answer, fallback included.
        bytes: bytes uploaded for the caller (0 when nothing was stored).
        error_type: class name of the chosen arm's error, None on success (for people to read).
        provider: ``"kimi"`` or ``"glm"``.
        stage: the rollout stage in force (``"1%"``, ``"off"`` ...).
        key_hash: `hash_key` of the bucketing key; the raw key (a user id) never leaves the process.
        error_kind: `classify_error` of the chosen arm's error, None on success: what the figures and
            the gates count. A log written before this field existed reads as None: its errors count
            as neither timeouts nor critical (the gates' critical names still apply).
    """

    ts: float
    flag: str
    arm: Arm
    outcome: Outcome
    duration_s: float
    bytes: int
    error_type: str | None
    provider: str
    stage: str
    key_hash: str
    error_kind: ErrorKind | None = None

    @property
    def finished_at(self) -> float:
        """When the caller got its answer; sliding windows count a call from here."""
        return self.ts + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready mapping in `EVENT_FIELDS` order."""
        data = asdict(self)
        data["error_kind"] = None if self.error_kind is None else self.error_kind.value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event read back from a log; raises `ConfigError` naming the bad field.

        A time or duration that is not a finite number (``NaN``, ``Infinity``, ``1e999``), or a negative
        duration, is refused: one such event would stretch or poison every window it falls in.
        """
        missing = [name for name in EVENT_FIELDS if name not in data and name != "error_kind"]
        if missing:
            raise ConfigError(f"event is missing fields={missing!r}; was it written by llmfiles' EventLog?")
        if data["arm"] not in ARMS:
            raise ConfigError(f"arm={data['arm']!r} is not one of {ARMS!r}")
        if data["outcome"] not in OUTCOMES:
            raise ConfigError(f"outcome={data['outcome']!r} is not one of {OUTCOMES!r}")
        kind = data.get("error_kind")
        if kind is not None and (not isinstance(kind, str) or kind not in {k.value for k in ErrorKind}):
            raise ConfigError(f"error_kind={kind!r} is not one of {[k.value for k in ErrorKind]!r}")
        try:
            event = cls(
                ts=float(data["ts"]),
                flag=str(data["flag"]),
                arm=data["arm"],
                outcome=data["outcome"],
                duration_s=float(data["duration_s"]),
                bytes=int(data["bytes"]),
                error_type=None if data["error_type"] in (None, "") else str(data["error_type"]),
                provider=str(data["provider"]),
                stage=str(data["stage"]),
                key_hash=str(data["key_hash"]),
                error_kind=None if kind is None else ErrorKind(kind),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"event={dict(data)!r} has a field of the wrong type: {exc}") from exc
        if not math.isfinite(event.ts) or event.ts < 0:
            raise ConfigError(f"ts={data['ts']!r} must be a finite, non-negative unix time")
        if not math.isfinite(event.duration_s) or event.duration_s < 0:
            raise ConfigError(f"duration_s={data['duration_s']!r} must be a finite number of seconds >= 0")
        return event


def hash_key(key: str, *, salt: str) -> str:
    """A short keyed BLAKE2b digest of a bucketing key: joins events of one key without revealing it."""
    return hashlib.blake2b(key.encode(), digest_size=8, key=salt.encode()[:64]).hexdigest()
