"""What the rollout sees: events, JSONL log and CSV export, per-arm windows, Prometheus, memory, logs."""

from llmfiles.observe._event import ARMS, EVENT_FIELDS, OUTCOMES, Arm, Event, Outcome, hash_key
from llmfiles.observe._eventlog import EventLog, export_csv, read_events
from llmfiles.observe._files import atomic_write_text
from llmfiles.observe._logging import REDACTED, configure_logging, redact_secrets
from llmfiles.observe._memory import MemorySampler, process_rss
from llmfiles.observe._metrics import RolloutMetrics
from llmfiles.observe._recorder import (
    ArmSummary,
    Comparison,
    Recorder,
    compare_summaries,
    is_timeout,
    percentile,
)

__all__ = [
    "ARMS",
    "EVENT_FIELDS",
    "OUTCOMES",
    "REDACTED",
    "Arm",
    "ArmSummary",
    "Comparison",
    "Event",
    "EventLog",
    "MemorySampler",
    "Outcome",
    "Recorder",
    "RolloutMetrics",
    "atomic_write_text",
    "compare_summaries",
    "configure_logging",
    "export_csv",
    "hash_key",
    "is_timeout",
    "percentile",
    "process_rss",
    "read_events",
    "redact_secrets",
]
