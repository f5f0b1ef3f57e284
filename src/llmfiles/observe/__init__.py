"""What the rollout sees: events, JSONL log and CSV export, per-arm windows, Prometheus, memory, logs."""

from llmfiles.observe._event import (
    ARMS,
    CRITICAL_ERRORS,
    EVENT_FIELDS,
    OUTCOMES,
    TIMEOUT_ERRORS,
    Arm,
    ErrorKind,
    Event,
    Outcome,
    classify_error,
    hash_key,
)
from llmfiles.observe._eventlog import EventLog, export_csv, read_events
from llmfiles.observe._files import atomic_write_text, move_aside
from llmfiles.observe._logging import REDACTED, configure_logging, redact_secrets
from llmfiles.observe._memory import MemorySampler, process_rss
from llmfiles.observe._metrics import RolloutMetrics
from llmfiles.observe._recorder import (
    ArmFigures,
    ArmSummary,
    Comparison,
    LatencySamples,
    Recorder,
    compare_summaries,
    percentile,
)

__all__ = [
    "ARMS",
    "CRITICAL_ERRORS",
    "EVENT_FIELDS",
    "OUTCOMES",
    "REDACTED",
    "TIMEOUT_ERRORS",
    "Arm",
    "ArmFigures",
    "ArmSummary",
    "Comparison",
    "ErrorKind",
    "Event",
    "EventLog",
    "LatencySamples",
    "MemorySampler",
    "Outcome",
    "Recorder",
    "RolloutMetrics",
    "atomic_write_text",
    "classify_error",
    "compare_summaries",
    "configure_logging",
    "export_csv",
    "hash_key",
    "move_aside",
    "percentile",
    "process_rss",
    "read_events",
    "redact_secrets",
]
