"""Real, short load runs: mock, service and Locust as processes, as `python -m harness load` runs them.

Locust is never imported here (it monkey-patches the process with gevent); it only runs as a child.
"""

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from harness.load._load import SCENARIOS, LoadConfig, run_load
from llmfiles import ConfigError

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LOCUSTFILES = Path(__file__).resolve().parents[2] / "loadtests"


def _requests(out: Path) -> int:
    with (out / "locust_stats.csv").open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    return int(rows["Aggregated"]["Request Count"])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_locustfiles_define_their_users(scenario: str) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(LOCUSTFILES / f"{scenario}.py"), "--list"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert listed.stdout.strip(), listed.stderr


def test_a_short_stage_run_loses_nothing_and_gives_a_verdict(tmp_path: Path) -> None:
    config = LoadConfig(
        scenario="stage_promotion",
        stage=10,
        profile="calm",
        users=6,
        duration_s=6,
        out=tmp_path,
        max_file_bytes=64 * 1024,
    )
    result = run_load(config, Console(width=100))

    assert _requests(tmp_path) > 0
    assert result.lost.checked > 0
    assert result.lost.ok
    assert (tmp_path / "locust.html").stat().st_size > 0
    # Six users for six seconds cannot reach the 10 % stage's 500 async uploads: HOLD, exit code 3.
    assert result.decision == "HOLD"
    assert result.exit_code == 3
    summary = json.loads((tmp_path / "load-summary.json").read_text())
    assert summary["lost"] == 0
    assert summary["exit_code"] == 3


def test_distributed_mode_runs_a_master_and_two_workers(tmp_path: Path) -> None:
    config = LoadConfig(
        scenario="mixed",
        stage=50,
        profile="calm",
        users=4,
        duration_s=6,
        out=tmp_path,
        workers=2,
        legacy_in_thread=True,
        max_file_bytes=32 * 1024,
    )
    result = run_load(config, Console(width=100))

    logs = [(tmp_path / f"locust-{i}.log").read_text() for i in range(3)]
    assert "worker" in logs[0].lower()
    assert _requests(tmp_path) > 0
    assert result.lost.ok
    assert result.exit_code == 0  # `mixed` exits by the nothing-lost check alone


@pytest.mark.parametrize(
    ("field", "value"),
    [("scenario", "nope"), ("stage", 5.0), ("users", 0), ("duration_s", 0), ("workers", -1)],
    ids=["scenario", "stage", "users", "duration", "workers"],
)
def test_bad_load_settings_are_refused_before_anything_starts(
    tmp_path: Path, field: str, value: object
) -> None:
    kwargs = {
        "scenario": "mixed",
        "stage": 10.0,
        "profile": "calm",
        "users": 1,
        "duration_s": 1,
        "out": tmp_path,
        field: value,
    }
    with pytest.raises(ConfigError, match=f"{field.removesuffix('_s')}"):
        LoadConfig(**kwargs)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
