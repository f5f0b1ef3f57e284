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

from harness.load._gate import EXIT_CODES
from harness.load._load import SCENARIOS, LoadConfig, run_load
from llmfiles import ConfigError
from mock_provider import ProfileError

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


def test_a_short_stage_run_alternates_phases_and_reports_them(tmp_path: Path) -> None:
    config = LoadConfig(
        scenario="stage_promotion",
        stage=50,
        profile="calm",
        users=20,
        duration_s=12,
        out=tmp_path,
        rate=20,
        max_file_bytes=64 * 1024,
    )
    result = run_load(config, Console(width=160))

    assert result.lost.checked > 0
    assert result.lost.ok
    assert (tmp_path / "locust.html").stat().st_size > 0
    assert (tmp_path / "load-timeline.png").read_bytes()[:4] == b"\x89PNG"
    summary = json.loads((tmp_path / "load-summary.json").read_text())
    phases = summary["phases"]
    assert [(p["role"], p["percent"]) for p in phases] == [
        ("control", 10.0),
        ("candidate", 50.0),
        ("control", 10.0),
        ("candidate", 50.0),
    ]
    # Each phase saw requests, and the switch took effect: more async calls at 50 % than at 10 %.
    assert all(p["service"]["n"] > 0 for p in phases)
    async_share = [
        p["arms"]["async"]["n"] / max(1, p["arms"]["async"]["n"] + p["arms"]["legacy"]["n"]) for p in phases
    ]
    assert async_share[1] > async_share[0]
    assert async_share[3] > async_share[2]
    assert summary["verdict"]["gate_set"]
    assert len(summary["verdict"]["judgements"]) == 6
    assert result.exit_code == EXIT_CODES[result.decision]
    assert summary["exit_code"] == result.exit_code
    assert "Verdict" in (tmp_path / "load-report.md").read_text()


def test_an_async_arm_whose_provider_fails_rolls_back(tmp_path: Path) -> None:
    # Per-arm chaos: only the async arm's uploads get 500s (it retries, then gives up); the legacy arm's
    # uploads in the same phases all succeed, and the new arm's failed-calls judgement rolls it back.
    failing = tmp_path / "failing.toml"
    failing.write_text(
        '[[rules]]\nmatch = { operation = "upload" }\neffect = { kind = "error", status = 500 }\n'
    )
    config = LoadConfig(
        scenario="stage_promotion",
        stage=50,
        profile="calm",
        users=40,
        duration_s=24,
        out=tmp_path / "out",
        rate=8,
        max_file_bytes=64 * 1024,
        async_profile=str(failing),
    )
    result = run_load(config, Console(width=160))

    assert result.lost.ok
    candidate = [p for p in result.phases if p.window.phase.role == "candidate"]
    assert all(p.arm("async").tally.failures == p.arm("async").tally.n > 0 for p in candidate)
    assert sum(p.arm("legacy").tally.failures for p in candidate) == 0
    failed = next(j for j in result.verdict.judgements if j.name.startswith("new arm failed calls"))
    assert str(failed.verdict) == "FAIL"
    assert (result.decision, result.exit_code) == ("ROLLBACK", 4)


def test_an_aa_run_serves_everyone_async_and_splits_them_by_the_stage(tmp_path: Path) -> None:
    config = LoadConfig(
        scenario="stage_promotion",
        stage=50,
        profile="calm",
        users=20,
        duration_s=16,
        out=tmp_path,
        rate=20,
        max_file_bytes=64 * 1024,
        control_arm="async",
    )
    result = run_load(config, Console(width=160))

    served = {json.loads(line)["arm"] for line in (tmp_path / "events.jsonl").read_text().splitlines()}
    assert served == {"async"}
    candidate = [p for p in result.phases if p.window.phase.role == "candidate"]
    assert sum(p.arm("async").tally.n for p in candidate) > 0
    assert sum(p.arm("legacy").tally.n for p in candidate) > 0
    assert result.decision != "ROLLBACK"


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
    [
        ("scenario", "nope"),
        ("stage", 5.0),
        ("users", 0),
        ("duration_s", 0),
        ("workers", -1),
        ("rate", 0.0),
        ("control_arm", "nobody"),
    ],
    ids=["scenario", "stage", "users", "duration", "workers", "rate", "control_arm"],
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


def test_an_aa_run_refuses_per_arm_profiles(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="A/A"):
        LoadConfig(
            "stage_promotion", 10, "calm", 1, 10, tmp_path, control_arm="async", async_profile="brownout"
        )


def test_an_unknown_arm_profile_is_refused_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="nope"):
        LoadConfig("stage_promotion", 10, "calm", 1, 10, tmp_path, legacy_profile="nope")
    assert list(tmp_path.iterdir()) == []
