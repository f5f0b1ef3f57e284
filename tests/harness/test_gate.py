from pathlib import Path

import pytest

from harness.load._gate import EXIT_CODES, stage_name, verdict_from_events
from llmfiles import ConfigError
from llmfiles.observe import Event, EventLog


def _write(path: Path, *, async_ok: int, async_failed: int, legacy_ok: int) -> None:
    rows = [("async", "success", None)] * async_ok + [("async", "failure", "ServerError")] * async_failed
    rows += [("legacy", "success", None)] * legacy_ok
    with EventLog(path) as log:
        for i, (arm, outcome, error) in enumerate(rows):
            log.record(
                Event(
                    ts=1000.0 + i * 0.01,
                    flag="t",
                    arm=arm,
                    outcome=outcome,
                    duration_s=0.1,
                    bytes=10,
                    error_type=error,
                    provider="kimi",
                    stage="10%",
                    key_hash=f"{i:016x}",
                )
            )


@pytest.mark.parametrize(
    ("async_ok", "async_failed", "decision"),
    [(600, 0, "PROMOTE"), (40, 0, "HOLD"), (500, 100, "ROLLBACK")],
    ids=["healthy-and-enough", "too-few", "failing"],
)
def test_verdict_from_a_real_event_log(
    tmp_path: Path, async_ok: int, async_failed: int, decision: str
) -> None:
    events = tmp_path / "events.jsonl"
    _write(events, async_ok=async_ok, async_failed=async_failed, legacy_ok=600)
    verdict = verdict_from_events(events, percent=10, run_s=30)
    assert str(verdict.decision) == decision, verdict.reasons
    assert verdict.gate_set == "load-run"  # production's 500 uploads and 48 h would HOLD the healthy run
    assert EXIT_CODES[decision] == {"PROMOTE": 0, "HOLD": 3, "ROLLBACK": 4}[decision]


@pytest.mark.parametrize("percent", [0, 5, 101], ids=["zero", "not-a-stage", "over"])
def test_unknown_stage_names_the_known_ones(percent: float) -> None:
    with pytest.raises(ConfigError, match=r"stage=.* use one of 1, 10, 50, 100"):
        stage_name(percent)
