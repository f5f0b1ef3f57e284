"""The kill switch and the controller command against a fleet's PostgreSQL, through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness._engines import ThrowawayPostgres, free_port
from llmfiles.cli import app
from llmfiles.fleet import PostgresFlagSource, PostgresStateStore
from llmfiles.rollout import FlagState, RolloutState

pytestmark = pytest.mark.integration

runner = CliRunner()


def test_rollback_with_a_database_url_reaches_every_instance_with_its_reason(dsn: str) -> None:
    with PostgresFlagSource(dsn, poll_s=60.0) as instance:
        instance.write(FlagState(enabled=True, percent=50.0))
        store = PostgresStateStore(dsn)
        store.save(RolloutState(stage="50%", status="running", stage_started_at=time.time()))
        result = runner.invoke(
            app, ["rollout", "rollback", "--reason", "incident 42", "--flags", dsn, "--state", dsn]
        )
        assert result.exit_code == 0, result.output
        deadline = time.monotonic() + 1.0
        while instance.snapshot().percent != 0.0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert instance.snapshot() == FlagState(enabled=True, percent=0.0)  # by notification, within 1 s
        newest = instance.history(limit=1)[0]
        assert newest.actor == "llmfiles rollout rollback"
        assert newest.reason is not None
        assert "incident 42" in newest.reason
        assert store.load().status == "rolled_back"
        store.close()


def test_rollback_with_the_database_down_says_so_loudly() -> None:
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/gone"
    result = runner.invoke(
        app, ["rollout", "rollback", "--reason", "incident", "--flags", down, "--state", down]
    )
    assert result.exit_code == 6
    assert "ROLLBACK INCOMPLETE" in result.output
    assert "Traceback" not in result.output


def test_rollback_to_a_flag_file_works_when_the_state_database_is_down(tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps({"enabled": True, "percent": 50}))
    down = f"postgresql://postgres@127.0.0.1:{free_port()}/gone"
    result = runner.invoke(
        app, ["rollout", "rollback", "--reason", "incident", "--flags", str(flags), "--state", down]
    )
    assert result.exit_code == 5, result.output  # rolled back, with a problem to report
    assert json.loads(flags.read_text())["percent"] == 0.0
    assert "cannot be reached" in result.output


def test_a_controller_process_hands_the_lease_over_when_stopped(
    postgres_server: ThrowawayPostgres, dsn: str
) -> None:
    command = [sys.executable, "-c", "from llmfiles.cli import main; main()", "rollout", "control"]
    args = ["--database", dsn, "--prometheus", f"http://127.0.0.1:{free_port()}", "--interval", "1"]
    first = subprocess.Popen([*command, *args, "--holder", "one"], stderr=subprocess.PIPE, text=True)
    try:
        holder = _wait_for_holder(postgres_server, dsn, lambda name: name == "one")
        assert holder == "one"
    finally:
        first.terminate()
        _, err = first.communicate(timeout=30)
    assert first.returncode == 0, err
    released = postgres_server.psql(
        f"\\c {dsn.rsplit('/', 1)[1]}\nSELECT expires_at < now() FROM llmfiles_controller_lease"
    )
    assert released.strip().endswith("t")  # given up at once on SIGTERM, not left to expire


def _wait_for_holder(
    server: ThrowawayPostgres, dsn: str, wanted: object, timeout_s: float = 60.0
) -> str | None:
    database = dsn.rsplit("/", 1)[1]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            out = server.psql(f"\\c {database}\nSELECT holder FROM llmfiles_controller_lease")
        except Exception:  # the table does not exist before the controller's first connection
            out = ""
        name = out.strip().splitlines()[-1] if out.strip() else None
        if name is not None and wanted(name):  # type: ignore[operator]
            return name
        time.sleep(0.2)
    return None
