"""``python -m harness load``: mock provider, reference service and Locust, each in its own process.

Order of a run: the mock starts with the chosen chaos profile; the service starts at the stage's
percentage, pointed at the mock; Locust runs headless (alone, or as a master with local workers) and
keeps its CSV and HTML; the service stops (flushing its event log and ledger); then two verdicts:
nothing lost (every upload the service answered as done is in the mock's journal with the same SHA-256)
and, from the service's events, the stage gate's PROMOTE / HOLD / ROLLBACK.

Exit code: 1 when anything was lost or a process failed; otherwise 0 for PROMOTE, 3 for HOLD, 4 for
ROLLBACK (`EXIT_CODES`). Only the `stage_promotion` scenario exits by the verdict; the others exit 0
once nothing was lost, and print the verdict for information.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from harness._lost import LostReport, find_lost
from harness._procs import MockProcess, ServerProcess
from harness.load._gate import EXIT_CODES, stage_name, verdict_from_events
from llmfiles import ConfigError

__all__ = ["SCENARIOS", "LoadConfig", "LoadResult", "run_load"]

SCENARIOS = ("upload_burst", "mixed", "stage_promotion")
_LOCUSTFILES = Path(__file__).resolve().parents[2] / "loadtests"


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """One load run.

    Args:
        scenario: a locustfile in loadtests/ (`SCENARIOS`).
        stage: the rollout percentage the service routes to the async arm (1, 10, 50 or 100).
        profile: the mock's chaos profile.
        users: concurrent Locust users.
        duration_s: how long Locust runs.
        out: directory for Locust's CSV and HTML, the logs, events, ledger and the summary.
        workers: 0 runs Locust alone; N > 0 runs a master and N local workers (distributed mode).
        spawn_rate: users started per second (default: all within about five seconds).
        seed: the mock's chaos seed.
        legacy_in_thread: run the service's legacy arm off the event loop (the default is on it, as the
            old service did).
        max_file_bytes: cap on upload sizes (the scenarios' 20 MB by default); tests lower it.
        registry: the service's ``--registry`` (a registry URL, or ``none`` to upload every request);
            None for its default, a SQLite file in the run's temp dir that lives exactly as long as the
            mock's files do.
    """

    scenario: str
    stage: float
    profile: str
    users: int
    duration_s: int
    out: Path
    workers: int = 0
    spawn_rate: float | None = None
    seed: int = 0
    legacy_in_thread: bool = False
    max_file_bytes: int | None = None
    registry: str | None = None

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"scenario={self.scenario!r} is unknown; use one of {', '.join(SCENARIOS)}")
        stage_name(self.stage)
        for name in ("users", "duration_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be at least 1")
        if self.workers < 0:
            raise ConfigError(f"workers={self.workers!r} must be 0 (no workers) or more")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load run found: the exit code and the evidence behind it."""

    exit_code: int
    decision: str
    reasons: tuple[str, ...]
    lost: LostReport
    locust: dict[str, Any]
    locust_exit: int


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _locust_commands(config: LoadConfig, host: str) -> list[list[str]]:
    """The master (or lone) command first, then one per worker."""
    locustfile = str(_LOCUSTFILES / f"{config.scenario}.py")
    spawn = config.spawn_rate or max(1.0, config.users / 5)
    base = [sys.executable, "-m", "locust", "-f", locustfile]
    lead = [
        *base,
        "--headless",
        "--host",
        host,
        "-u",
        str(config.users),
        "-r",
        f"{spawn:g}",
        "-t",
        f"{config.duration_s}s",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--csv",
        str(config.out / "locust"),
        "--html",
        str(config.out / "locust.html"),
    ]
    if config.workers == 0:
        return [lead]
    port = _free_port()
    lead += [
        "--master",
        "--expect-workers",
        str(config.workers),
        "--master-bind-host",
        "127.0.0.1",
        "--master-bind-port",
        str(port),
    ]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", str(port)]
    return [lead] + [worker] * config.workers


def _run_locust(config: LoadConfig, host: str, env: dict[str, str]) -> int:
    commands = _locust_commands(config, host)
    logs = [(config.out / f"locust-{i}.log").open("w") for i in range(len(commands))]
    processes = [
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        for cmd, log in zip(commands, logs, strict=True)
    ]
    try:
        code = processes[0].wait(timeout=config.duration_s + 120)
        for worker in processes[1:]:
            worker.wait(timeout=30)
        return code
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def _locust_summary(out: Path) -> dict[str, Any]:
    """The Aggregated row of Locust's stats CSV, as numbers."""
    path = out / "locust_stats.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows.get("Aggregated", {})
    keys = {
        "Request Count": "requests",
        "Failure Count": "failures",
        "Median Response Time": "p50_ms",
        "95%": "p95_ms",
        "99%": "p99_ms",
        "Requests/s": "rps",
    }
    return {name: float(total[key]) for key, name in keys.items() if total.get(key) not in (None, "", "N/A")}


def _ledger(path: Path) -> list[tuple[str, str]]:
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["file_id"], row["sha256"]) for row in rows]


def run_load(config: LoadConfig, console: Console) -> LoadResult:
    """Run one load test end to end and print its summary; see the module docstring for the exit code."""
    config.out.mkdir(parents=True, exist_ok=True)
    for stale in ("events.jsonl", "uploads.jsonl"):
        (config.out / stale).unlink(missing_ok=True)
    env = {"LLMFILES_LOAD_MAX_BYTES": str(config.max_file_bytes)} if config.max_file_bytes else {}
    # One token per run, handed to the service and to Locust through the environment (not argv: ps shows it).
    token = {"LLMFILES_SERVICE_TOKEN": secrets.token_urlsafe(32)}
    started = time.monotonic()
    # The mock's stored bytes can reach gigabytes in a long run; they live only as long as the run.
    with (
        tempfile.TemporaryDirectory(prefix="llmfiles-load-") as tmp,
        MockProcess(
            profile=config.profile,
            seed=config.seed,
            data_dir=Path(tmp) / "mock",
            log_path=config.out / "mock.log",
        ) as mock,
    ):
        service_args = [
            "-m", "harness.service", "--provider-url", mock.kimi_base_url, "--percent", f"{config.stage:g}",
            "--events", str(config.out / "events.jsonl"), "--ledger", str(config.out / "uploads.jsonl"),
            "--workdir", str(Path(tmp) / "spool"), "--delete-after",
        ]  # fmt: skip
        if config.legacy_in_thread:
            service_args.append("--legacy-in-thread")
        if config.registry is not None:
            service_args += ["--registry", config.registry]
        with ServerProcess(service_args, log_path=config.out / "service.log", env=token) as service:
            console.print(
                f"mock {mock.url} ({config.profile}) · service {service.url} (stage {config.stage:g}%)"
            )
            locust_exit = _run_locust(config, service.url, {**os.environ, **env, **token})
        journal = mock.journal()
    run_s = time.monotonic() - started
    lost = find_lost(_ledger(config.out / "uploads.jsonl"), journal)
    verdict = verdict_from_events(config.out / "events.jsonl", percent=config.stage, run_s=run_s)
    locust = _locust_summary(config.out)
    decision = str(verdict.decision)
    if not lost.ok:
        code = 1
    elif config.scenario == "stage_promotion":
        code = EXIT_CODES[decision]
    else:
        code = 0
    result = LoadResult(code, decision, tuple(verdict.reasons), lost, locust, locust_exit)
    summary = {
        "scenario": config.scenario,
        "stage": config.stage,
        "profile": config.profile,
        "users": config.users,
        "duration_s": config.duration_s,
        "workers": config.workers,
        "locust": locust,
        "locust_exit": locust_exit,
        "uploads_done": lost.checked,
        "lost": lost.lost,
        "missing": list(lost.missing),
        "mismatched": dict(lost.mismatched),
        "verdict": verdict.to_dict(),
        "exit_code": code,
    }
    (config.out / "load-summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    _print(console, config, result)
    return result


def _print(console: Console, config: LoadConfig, result: LoadResult) -> None:
    table = Table(
        title=f"load: {config.scenario}, {config.users} users, {config.duration_s} s, stage {config.stage:g}%"
    )
    table.add_column("figure")
    table.add_column("value")
    for key, value in result.locust.items():
        table.add_row(f"locust {key}", f"{value:g}")
    table.add_row("uploads answered done", str(result.lost.checked))
    table.add_row(
        "lost (missing or other SHA-256)", f"[{'green' if result.lost.ok else 'red'}]{result.lost.lost}[/]"
    )
    table.add_row("gate verdict", f"[bold]{result.decision}[/]")
    console.print(table)
    for reason in result.reasons:
        console.print(f"  - {reason}")
    console.print(f"Locust CSV/HTML and logs in {config.out}; exit code {result.exit_code}")
