"""The public surfaces of llmfiles.rollout and llmfiles.observe are hand-kept: pin them."""

import llmfiles.observe
import llmfiles.rollout


def test_rollout_public_names_are_pinned() -> None:
    assert sorted(llmfiles.rollout.__all__) == sorted(
        [
            "BUCKETS", "DEFAULT_GATES", "FALLBACK_ERRORS", "LOAD_RUN_GATES", "LOAD_RUN_LATENCY_TOLERANCE",
            "LOAD_RUN_MIN_UPLOADS", "OFF",
            "AsyncArm", "CheckResult", "Decision", "Dispatcher", "EnvFlagSource", "EventSink",
            "FileFlagSource", "FlagSource", "FlagState", "GateContext", "GateTable", "GateVerdict",
            "JudgeVerdict", "LatencyJudgement", "LegacyArm", "OpenFeatureFlagSource", "Adopt",
            "OverridableFlagSource", "PromotionResult", "RateJudgement", "Reconcile", "RollbackReport",
            "RollbackRules", "RolloutController", "RolloutSettings", "RolloutState", "RolloutStateStore",
            "StageGate", "StateStore", "Uploaded", "WritableFlagSource", "bucket", "dispatched", "evaluate",
            "in_rollout", "judge_latency", "judge_rate", "latency_verdict", "load_settings",
            "load_transfer_settings", "look_confidence", "normalized_hash", "threshold",
        ]
    )  # fmt: skip
    assert all(hasattr(llmfiles.rollout, name) for name in llmfiles.rollout.__all__)


def test_observe_public_names_are_pinned() -> None:
    assert sorted(llmfiles.observe.__all__) == sorted(
        [
            "ARMS", "ArmFigures", "CRITICAL_ERRORS", "LatencySamples", "EVENT_FIELDS", "OUTCOMES",
            "REDACTED", "TIMEOUT_ERRORS", "Arm",
            "ArmSummary", "Comparison", "ErrorKind", "Event", "EventLog", "MemorySampler", "Outcome",
            "Recorder", "RolloutMetrics", "atomic_write_text", "classify_error", "compare_summaries",
            "configure_logging",
            "export_csv", "hash_key", "move_aside", "percentile", "process_rss", "read_events",
            "redact_secrets",
        ]
    )  # fmt: skip
    assert all(hasattr(llmfiles.observe, name) for name in llmfiles.observe.__all__)
