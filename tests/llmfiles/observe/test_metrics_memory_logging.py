"""Prometheus metrics in their own registry, the memory sampler, and secret redaction in logs."""

import json
import logging

import pytest
import structlog
from prometheus_client import REGISTRY

from llmfiles import ConfigError
from llmfiles.observe import (
    REDACTED,
    ErrorKind,
    MemorySampler,
    RolloutMetrics,
    configure_logging,
    process_rss,
    redact_secrets,
)
from tests.llmfiles._events import make_event


def test_each_instance_has_its_own_registry() -> None:
    first, second = RolloutMetrics(), RolloutMetrics()
    first.record(make_event())
    labels = {"arm": "async", "provider": "kimi", "outcome": "success"}
    assert first.registry.get_sample_value("llmfiles_uploads_total", labels) == 1
    # Every series starts at 0 (a fleet's Prometheus must see a series before its first call).
    assert second.registry.get_sample_value("llmfiles_uploads_total", labels) == 0
    assert REGISTRY.get_sample_value("llmfiles_uploads_total", labels) is None


def test_counters_and_histograms_by_arm_provider_outcome() -> None:
    metrics = RolloutMetrics()
    metrics.record(make_event(bytes=100, duration_s=0.2))
    metrics.record(make_event(bytes=50, duration_s=3.0))
    metrics.record(make_event(arm="legacy", outcome="failure", bytes=0))
    get = metrics.registry.get_sample_value
    labels = {"arm": "async", "provider": "kimi", "outcome": "success"}
    assert get("llmfiles_upload_bytes_total", labels) == 150
    assert get("llmfiles_upload_duration_seconds_count", labels) == 2
    assert get("llmfiles_upload_duration_seconds_bucket", {**labels, "le": "0.25"}) == 1
    assert get("llmfiles_uploads_total", {"arm": "legacy", "provider": "kimi", "outcome": "failure"}) == 1
    assert b"llmfiles_uploads_total" in metrics.exposition()


def test_rollback_raises_its_counter_and_zeroes_the_percent() -> None:
    metrics = RolloutMetrics()
    metrics.percent.set(10)
    metrics.rollback(trigger="automatic")
    assert (
        metrics.registry.get_sample_value("llmfiles_rollout_rollbacks_total", {"trigger": "automatic"}) == 1
    )
    assert metrics.registry.get_sample_value("llmfiles_rollout_percent") == 0


def test_memory_growth_against_the_stage_baseline() -> None:
    readings = iter([100, 130, 110])
    sampler = MemorySampler(rss=lambda: next(readings))
    assert sampler.reset_baseline() == 100
    assert sampler.growth() == pytest.approx(0.30)
    assert sampler.growth() == pytest.approx(0.10)
    assert sampler.peak_bytes == 130


def test_memory_baseline_defaults_to_the_first_sample() -> None:
    sampler = MemorySampler(rss=lambda: 200)
    assert sampler.growth() == 0.0
    assert sampler.baseline_bytes == 200


def test_real_rss_counts_this_process_in_bytes_and_bad_baseline_refused() -> None:
    before = process_rss()
    ballast = b"x" * (64 << 20)  # written, so every page is resident
    assert process_rss() - before >= 48 << 20
    del ballast
    with pytest.raises(ConfigError, match="baseline_bytes=0"):
        MemorySampler(baseline_bytes=0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_key", "sk-abcdefghijklmnop"),
        ("Authorization", "Bearer abc.def.ghi"),
        ("access_token", "t0k3n"),
        ("client_secret", "s3cr3t"),
        ("MOONSHOT_API_KEY", "anything"),
        ("password", "hunter2"),
    ],
)
def test_secret_named_fields_are_redacted(field: str, value: str) -> None:
    assert redact_secrets(None, "info", {field: value})[field] == REDACTED


def test_secrets_inside_text_and_nested_values_are_redacted() -> None:
    out = redact_secrets(
        None,
        "info",
        {
            "event": "upload failed",
            "error": "401 for header Authorization: Bearer sk-live-1234567890abcdef",
            "request": {"headers": {"authorization": "Bearer xyz"}, "url": "https://api/x"},
            "attempts": [{"token": "abc"}, "key sk-proj-ABCDEFGHIJKL in list"],
            "detail": "glm key 0123456789abcdef0123456789abcdef.AbCdEfGhIjKlMnOp rejected",
            "key_hash": "0123456789abcdef",
            "size": 10,
        },
    )
    assert "sk-live" not in out["error"]
    assert "Bearer [REDACTED]" in out["error"]
    assert out["request"] == {"headers": {"authorization": REDACTED}, "url": "https://api/x"}
    assert out["attempts"] == [{"token": REDACTED}, f"key {REDACTED} in list"]
    assert out["detail"] == f"glm key {REDACTED} rejected"
    assert out["key_hash"] == "0123456789abcdef"
    assert out["size"] == 10


def test_configured_logging_renders_json_without_the_secret(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(level=logging.INFO)
    try:
        structlog.get_logger("t").info("calling provider", api_key="sk-abcdefghijklmnopq", file_id="f1")
        structlog.get_logger("t").debug("hidden below INFO")
    finally:
        structlog.reset_defaults()
    captured = capsys.readouterr()
    assert captured.out == ""  # standard output is for results
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["api_key"] == REDACTED
    assert record["file_id"] == "f1"
    assert record["level"] == "info"
    assert "sk-abcdefghijklmnopq" not in lines[0]


def test_errors_are_counted_by_class_and_kind() -> None:
    metrics = RolloutMetrics()
    metrics.record(
        make_event(outcome="fallback", error_type="TransferTimeoutError", error_kind=ErrorKind.TIMEOUT)
    )
    metrics.record(make_event(outcome="failure", error_type="IntegrityError", error_kind=ErrorKind.CRITICAL))
    get = metrics.registry.get_sample_value
    base = {"arm": "async", "provider": "kimi"}
    timeout = {**base, "error_type": "TransferTimeoutError", "error_kind": "timeout"}
    critical = {**base, "error_type": "IntegrityError", "error_kind": "critical"}
    assert get("llmfiles_upload_errors_total", timeout) == 1
    assert get("llmfiles_upload_errors_total", critical) == 1
