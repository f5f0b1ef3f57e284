"""`llmfiles rollout status | evaluate | promote | rollback` on real state, flag and event files."""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from typer.testing import CliRunner

from llmfiles.cli import app
from llmfiles.observe import Arm, EventLog
from llmfiles.rollout import FileFlagSource, StateStore
from tests.llmfiles._events import make_event

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    # The rollout commands configure structlog for the process; leave it as other tests expect it.
    yield
    structlog.reset_defaults()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    monkeypatch.setenv("LLMFILES_STATE_FILE", str(tmp_path / "state.json"))
    monkeypatch.setenv("LLMFILES_FLAG_FILE", str(tmp_path / "flags.json"))
    return {"state": tmp_path / "state.json", "flags": tmp_path / "flags.json", "dir": tmp_path}


def write_events(path: Path, *, ok: int, failed: int = 0, end: float = 1_700_000_000.0) -> Path:
    with EventLog(path) as log:
        for i in range(ok + failed):
            arms: tuple[Arm, Arm] = ("async", "legacy")
            for arm in arms:
                log.record(
                    make_event(
                        ts=end - 100 + i * 0.01,
                        arm=arm,
                        outcome="failure" if arm == "async" and i < failed else "success",
                        duration_s=0.05,
                        bytes=10,
                        error_type="ServerError" if arm == "async" and i < failed else None,
                    )
                )
    return path


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["rollout", *args])
    return result.exit_code, result.output


def test_status_of_a_fresh_rollout(files: dict[str, Path]) -> None:
    code, out = run("status", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["state"]["stage"] == "off"
    assert data["flags"] == {"enabled": False, "percent": 0.0, "fallback": True}
    code, out = run("status")
    assert code == 0
    assert "off" in out


def test_promote_from_off_starts_the_first_stage(files: dict[str, Path]) -> None:
    code, out = run("promote")
    assert code == 0, out
    assert "promoted off -> 1%" in out
    assert FileFlagSource(files["flags"]).snapshot().percent == 1.0
    assert StateStore(files["state"]).load().stage == "1%"


@pytest.mark.parametrize(
    ("ok", "failed", "code", "word"),
    [(1000, 0, 0, "PROMOTE"), (50, 0, 3, "HOLD"), (150, 50, 4, "ROLLBACK")],
)
def test_evaluate_prints_the_verdict_and_exits_by_it(
    files: dict[str, Path], ok: int, failed: int, code: int, word: str
) -> None:
    events = write_events(files["dir"] / "events.jsonl", ok=ok, failed=failed)
    exit_code, out = run("evaluate", "--events", str(events), "--stage", "1%", "--soak", "0")
    assert exit_code == code, out
    assert word in out
    assert "Arms side by side" in out
    exit_code, out = run("evaluate", "--events", str(events), "--stage", "1%", "--soak", "0", "--json")
    assert json.loads(out)["decision"] == word


def test_promote_shows_the_evidence_and_refuses_on_hold(files: dict[str, Path]) -> None:
    assert run("promote")[0] == 0
    events = write_events(files["dir"] / "events.jsonl", ok=50)
    code, out = run("promote", "--events", str(events), "--soak", "0")
    assert code == 3
    assert "refused 1% -> 10%" in out
    assert "too few uploads" in out
    code, out = run("promote", "--events", str(events), "--soak", "0", "--force")
    assert code == 0
    assert "promoted 1% -> 10%" in out
    assert FileFlagSource(files["flags"]).snapshot().percent == 10.0


def test_rollback_reaches_the_flag_file_and_the_history(files: dict[str, Path]) -> None:
    assert run("promote")[0] == 0
    code, out = run("rollback", "--reason", "p95 doubled on the dashboard")
    assert code == 0, out
    assert "rolled back 1% -> off" in out
    assert FileFlagSource(files["flags"]).snapshot().percent == 0.0
    state = StateStore(files["state"]).load()
    assert (state.status, state.history[-1]["trigger"]) == ("rolled_back", "manual")
    code, out = run("status")
    assert "p95 doubled on the dashboard" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("rollback", "--reason", " "), "reason=' ' must say why"),
        (("evaluate", "--events", "missing.jsonl", "--stage", "1%"), "does not exist"),
        (("evaluate", "--events", "EVENTS"), "the rollout is off; pass --stage"),
        (("evaluate", "--events", "EVENTS", "--stage", "3%"), "stage='3%' is unknown"),
    ],
    ids=["empty-reason", "missing-events", "off-without-stage", "unknown-stage"],
)
def test_usage_errors_exit_2_with_the_reason(
    files: dict[str, Path], args: tuple[str, ...], message: str
) -> None:
    events = write_events(files["dir"] / "events.jsonl", ok=1)
    code, out = run(*(str(events) if a == "EVENTS" else a for a in args))
    assert code == 2
    assert message in " ".join(out.split())
