"""`llmfiles rollout status | evaluate | promote | rollback` on real state, flag and event files."""

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner

from llmfiles.cli import app
from llmfiles.observe import Arm, EventLog
from llmfiles.rollout import FileFlagSource, FlagState, StateStore
from tests.llmfiles._events import make_event

runner = CliRunner()


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    # The rollout commands configure structlog for the process; leave it as other tests expect it.
    yield
    structlog.reset_defaults()


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    for name in ("LLMFILES_STAGE", "LLMFILES_SALT", "LLMFILES_ROLLOUT_PERCENT", "LLMFILES_ENABLED"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "flags.json").write_text('{"enabled": false, "percent": 0, "fallback": true}\n')
    monkeypatch.setenv("LLMFILES_STATE_FILE", str(tmp_path / "state.json"))
    monkeypatch.setenv("LLMFILES_FLAG_FILE", str(tmp_path / "flags.json"))
    return {"state": tmp_path / "state.json", "flags": tmp_path / "flags.json", "dir": tmp_path}


def write_events(path: Path, *, ok: int, failed: int = 0, end: float | None = None) -> Path:
    """`ok + failed` calls on each arm over the 100 s before `end` (default: a second ago)."""
    end = time.time() - 1 if end is None else end
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
    """Exit code and stdout+stderr of ``llmfiles rollout ARGS``."""
    result = runner.invoke(app, ["rollout", *args])
    return result.exit_code, result.output


def run3(*args: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr apart: results must go to stdout, errors to stderr."""
    result = runner.invoke(app, ["rollout", *args])
    return result.exit_code, result.stdout, result.stderr


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
    exit_code, out, _ = run3("evaluate", "--events", str(events), "--stage", "1%", "--soak", "0", "--json")
    assert json.loads(out)["decision"] == word


def test_promote_shows_the_evidence_and_refuses_on_hold(files: dict[str, Path]) -> None:
    stage_running(files, "1%", hours=1)
    events = write_events(files["dir"] / "events.jsonl", ok=50)
    code, out = run("promote", "--events", str(events), "--soak", "0")
    assert code == 3
    assert "refused 1% -> 10%" in out
    assert "too few uploads: 50 < 100" in out
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
def test_usage_errors_exit_2_with_the_reason_on_stderr(
    files: dict[str, Path], args: tuple[str, ...], message: str
) -> None:
    events = write_events(files["dir"] / "events.jsonl", ok=1)
    code, out, err = run3(*(str(events) if a == "EVENTS" else a for a in args))
    assert code == 2
    assert message in " ".join(err.split())
    assert out == ""  # stdout is for results: a script reading it must not parse an error as one


# --- the kill switch: nothing about the state or the flag file may stop a rollback -------------------

FIFTY = '{"enabled": true, "percent": 50, "fallback": true}\n'


def running_state(stage: str = "50%", *, started: float | None = None, **extra: Any) -> str:
    started = time.time() - 3600 if started is None else started
    return json.dumps(
        {"stage": stage, "status": "running", "stage_started_at": started, "history": [], **extra}
    )


def rollback(files: dict[str, Path]) -> tuple[int, str, str]:
    return run3(
        "rollback", "--reason", "incident", "--state", str(files["state"]), "--flags", str(files["flags"])
    )


def flat(text: str) -> str:
    """`text` without the rich error box and its line breaks, for matching a message it wrapped."""
    return " ".join(text.replace("│", " ").split())


def no_traceback(*texts: str) -> None:
    for text in texts:
        assert "Traceback" not in text


@pytest.mark.parametrize(
    "state",
    [
        '{"stage": "50%", "status": "running", "stage_st',  # truncated
        running_state(started=1e300),
        '{"stage": "50%", "status": "running", "stage_started_at": NaN, "history": []}',
        running_state(history=[5, "x"]),
        "[]",
    ],
    ids=[
        "truncated",
        "started-1e300",
        "started-nan",
        "history-not-objects",
        "not-an-object",
    ],
)
def test_rollback_moves_traffic_past_a_broken_state(files: dict[str, Path], state: str) -> None:
    files["flags"].write_text(FIFTY)
    files["state"].write_text(state)
    code, out, err = rollback(files)
    assert code == 5, err  # rolled back, with a problem to look at
    assert FileFlagSource(files["flags"]).snapshot().percent == 0.0  # the flag went first
    assert "rolled back unknown -> off: incident" in out
    assert "set aside" in err
    [aside] = files["dir"].glob("state.json.corrupt-*")
    assert aside.read_text() == state  # the evidence is kept
    fresh = StateStore(files["state"]).load()  # ... and a fresh state records why
    assert (fresh.status, fresh.reason, fresh.history[-1]["trigger"]) == ("rolled_back", "incident", "manual")
    no_traceback(out, err)


@pytest.mark.parametrize("broken", ["{not json", '{"percent": 250}', "[1]"])
def test_rollback_replaces_a_corrupt_flag_file_and_keeps_it_aside(
    files: dict[str, Path], broken: str
) -> None:
    files["flags"].write_text(broken)
    files["state"].write_text(running_state())
    code, out, err = rollback(files)
    assert code == 5, err
    assert "rolled back 50% -> off: incident" in out
    assert FileFlagSource(files["flags"]).snapshot() == FlagState(enabled=False, percent=0.0)
    [aside] = files["dir"].glob("flags.json.corrupt-*")
    assert aside.read_text() == broken
    assert "set aside" in err
    assert StateStore(files["state"]).load().status == "rolled_back"


def test_rollback_that_cannot_write_the_flag_says_so_loudly(files: dict[str, Path]) -> None:
    blocker = files["dir"] / "not-a-directory"
    blocker.write_text("x")
    files["flags"] = blocker / "flags.json"  # no file can ever be created there
    files["state"].write_text(running_state())
    code, out, err = rollback(files)
    assert code == 6
    assert "ROLLBACK INCOMPLETE" in err
    assert "other processes still route to the async arm" in " ".join(err.split())
    assert "rolled back" not in out
    no_traceback(out, err)
    # The history still says an operator tried, and why.
    assert StateStore(files["state"]).load().reason == "incident"


def test_rollback_without_any_flag_file_exits_6(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMFILES_FLAG_FILE")
    code, _, err = run3("rollback", "--reason", "incident")
    assert code == 6
    assert "no flag file is set" in " ".join(err.split())


def test_rollback_is_not_stopped_by_bad_settings(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    files["flags"].write_text(FIFTY)
    monkeypatch.setenv("LLMFILES_STAGE", "bogus")
    code, out, err = run3("rollback", "--reason", "incident")
    assert code == 0, err
    assert "rolled back off -> off: incident" in out
    assert "LLMFILES_STAGE='bogus'" in err
    assert FileFlagSource(files["flags"]).snapshot().percent == 0.0


def test_rollback_exit_codes_are_in_the_help() -> None:
    result = runner.invoke(app, ["rollout", "rollback", "--help"])
    text = flat(result.output)
    assert "5 rolled back (traffic is on the legacy arm) but something needed repair" in text
    assert "6 rollback could NOT write the flag" in text


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (running_state(started=1e300), "stage_started_at=1e+300 must be a unix time"),
        (running_state(history=[5]), "history[0]=5 must be an object"),
        ('{"stage": "50%"', "cannot be read"),
    ],
    ids=["started-1e300", "history-not-objects", "truncated"],
)
def test_odd_state_is_a_clear_error_for_status_evaluate_and_promote(
    files: dict[str, Path], state: str, message: str
) -> None:
    files["state"].write_text(state)
    events = write_events(files["dir"] / "events.jsonl", ok=1)
    for args in (("status",), ("evaluate", "--events", str(events)), ("promote",)):
        code, out, err = run3(*args)
        assert code == 2, (args, out, err)
        assert message in err
        assert "rollback` still works" in " ".join(err.split())
        assert out == ""
        no_traceback(err)


# --- the gates: only this flag's events, within the stage the state file says is running -----------


def stage_running(files: dict[str, Path], stage: str, *, hours: float) -> None:
    files["state"].write_text(running_state(stage, started=time.time() - hours * 3600))
    files["flags"].write_text(json.dumps({"enabled": True, "percent": float(stage[:-1]), "fallback": True}))


def append_line(path: Path, **changes: Any) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(make_event(**changes).to_dict()) + "\n")


def test_one_ancient_event_cannot_stretch_the_soak(files: dict[str, Path]) -> None:
    stage_running(files, "10%", hours=1)  # 1 h into a 48 h soak
    events = write_events(files["dir"] / "events.jsonl", ok=600)
    append_line(events, ts=0.0, duration_s=0.05)  # 1970: used to make the soak 56 years long
    code, out, err = run3("evaluate", "--events", str(events), "--json")
    assert code == 3, out
    verdict = json.loads(out)
    assert verdict["decision"] == "HOLD"
    assert 3590 <= verdict["figures"]["soak_s"] <= 3700  # from the state file, not from the events
    assert verdict["events"]["before_the_stage"] == 1
    assert "1 from before the stage began" in err
    code, out, err = run3("promote", "--events", str(events))
    assert code == 3
    assert "refused 10% -> 50%" in out
    assert FileFlagSource(files["flags"]).snapshot().percent == 10.0


def test_events_of_other_flags_do_not_count(files: dict[str, Path]) -> None:
    stage_running(files, "1%", hours=1)
    events = write_events(files["dir"] / "events.jsonl", ok=1000)
    for i in range(300):
        append_line(
            events,
            ts=time.time() - 50 + i * 0.01,
            flag="someone.else",
            outcome="failure",
            error_type="ServerError",
            bytes=0,
        )
    code, out, err = run3("evaluate", "--events", str(events), "--soak", "0", "--json")
    assert code == 0, out  # PROMOTE on this flag's 1000 clean calls; the 300 failures are not ours
    assert json.loads(out)["events"] == {
        "judged": 2000,
        "other_flags": 300,
        "from_the_future": 0,
        "before_the_stage": 0,
    }
    assert "300 of other flags" in err


def test_events_from_the_future_are_set_aside_and_reported(files: dict[str, Path]) -> None:
    stage_running(files, "1%", hours=1)
    events = write_events(files["dir"] / "events.jsonl", ok=1000)
    for _ in range(2):
        append_line(events, ts=time.time() + 3600, outcome="failure", error_type="ServerError", bytes=0)
    code, out, err = run3("evaluate", "--events", str(events), "--soak", "0", "--json")
    assert code == 0, out
    assert json.loads(out)["events"]["from_the_future"] == 2
    assert "2 from the future" in err


def test_a_non_finite_duration_is_refused_with_its_line(files: dict[str, Path]) -> None:
    stage_running(files, "1%", hours=1)
    events = write_events(files["dir"] / "events.jsonl", ok=10)
    with events.open("a") as handle:
        handle.write(
            json.dumps(make_event(ts=time.time() - 5).to_dict()).replace(
                '"duration_s": 0.125', '"duration_s": Infinity'
            )
            + "\n"
        )
    code, out, err = run3("evaluate", "--events", str(events), "--soak", "0")
    assert code == 2
    assert "line 21: duration_s=inf must be a finite number" in " ".join(err.split())  # 20 good lines
    assert out == ""


@pytest.mark.parametrize("soak", ["nan", "inf", "-1"])
def test_a_soak_that_is_not_a_finite_number_is_refused(files: dict[str, Path], soak: str) -> None:
    stage_running(files, "1%", hours=1)
    events = write_events(files["dir"] / "events.jsonl", ok=200)
    for command in ("evaluate", "promote"):
        code, out, err = run3(command, "--events", str(events), "--soak", soak)
        assert code == 2, (command, out)
        assert f"--soak={float(soak)!r} must be a finite number of seconds >= 0" in flat(err)
    assert FileFlagSource(files["flags"]).snapshot().percent == 1.0


# --- promote needs a flag file to promote anything ---------------------------------------------------


def test_promote_without_a_flag_file_refuses_and_changes_nothing(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LLMFILES_FLAG_FILE")
    code, out, err = run3("promote")
    assert code == 2
    assert "no flag file" in err
    assert out == ""
    assert not files["state"].exists()


def test_promote_creates_the_flag_file_it_is_given_and_says_so(files: dict[str, Path]) -> None:
    new = files["dir"] / "fresh" / "flags.json"
    code, out, err = run3("promote", "--flags", str(new))
    assert code == 0, err
    assert "promoted off -> 1%" in out
    assert f"created flag file {new}" in " ".join(err.split())
    assert FileFlagSource(new).snapshot() == FlagState(enabled=True, percent=1.0)


@pytest.mark.parametrize(
    ("env", "value", "quoted"),
    [
        ("LLMFILES_STAGE", "bogus", "LLMFILES_STAGE='bogus'"),
        ("LLMFILES_FLAG_FILE", "/no/such/flags.json", "LLMFILES_FLAG_FILE='/no/such/flags.json'"),
    ],
)
def test_bad_rollout_variables_are_rejected_by_name(
    files: dict[str, Path], monkeypatch: pytest.MonkeyPatch, env: str, value: str, quoted: str
) -> None:
    monkeypatch.setenv(env, value)
    for args in (("status",), ("promote",)):
        code, out, err = run3(*args)
        assert code == 2, (args, out)
        assert quoted in err
        assert out == ""
    assert not files["state"].exists()


def test_rollback_whose_state_cannot_be_saved_still_moves_traffic(files: dict[str, Path]) -> None:
    files["flags"].write_text(FIFTY)
    blocker = files["dir"] / "not-a-directory"
    blocker.write_text("x")
    files["state"] = blocker / "state.json"
    code, out, err = rollback(files)
    assert code == 5
    assert FileFlagSource(files["flags"]).snapshot().percent == 0.0
    assert "rolled back" in out
    assert "could not record the rollback" in flat(err)
    no_traceback(out, err)
