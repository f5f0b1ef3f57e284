"""The one record a dispatched upload leaves behind.

Every sink (the recorder, the JSONL log, Prometheus) consumes the same `Event`, so the figures a gate
judges, the log an operator reads and the metrics a dashboard plots cannot disagree. The field order in
`EVENT_FIELDS` is the CSV column order and never changes; new fields go at the end.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final, Literal, get_args

from llmfiles._errors import ConfigError

Arm = Literal["async", "legacy"]
Outcome = Literal["success", "failure", "fallback"]

ARMS: Final[tuple[Arm, ...]] = get_args(Arm)
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

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
        error_type: class name of the chosen arm's error, None on success.
        provider: ``"kimi"`` or ``"glm"``.
        stage: the rollout stage in force (``"1%"``, ``"off"`` ...).
        key_hash: `hash_key` of the bucketing key; the raw key (a user id) never leaves the process.
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

    @property
    def finished_at(self) -> float:
        """When the caller got its answer; sliding windows count a call from here."""
        return self.ts + self.duration_s

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-ready mapping in `EVENT_FIELDS` order."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Event:
        """Rebuild an event read back from a log; raises `ConfigError` naming the bad field."""
        missing = [name for name in EVENT_FIELDS if name not in data]
        if missing:
            raise ConfigError(f"event is missing fields={missing!r}; was it written by llmfiles' EventLog?")
        if data["arm"] not in ARMS:
            raise ConfigError(f"arm={data['arm']!r} is not one of {ARMS!r}")
        if data["outcome"] not in OUTCOMES:
            raise ConfigError(f"outcome={data['outcome']!r} is not one of {OUTCOMES!r}")
        try:
            return cls(
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
            )
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"event={dict(data)!r} has a field of the wrong type: {exc}") from exc


def hash_key(key: str, *, salt: str) -> str:
    """A short keyed BLAKE2b digest of a bucketing key: joins events of one key without revealing it."""
    return hashlib.blake2b(key.encode(), digest_size=8, key=salt.encode()[:64]).hexdigest()
