"""The fleet run: three service instances, one rollout, a brownout, and a controller that dies.

Everything is real and on loopback: a throwaway PostgreSQL (flags, controller state, lease), the mock
provider, three reference-service instances routing by the PostgreSQL flags, Prometheus scraping their
``/metrics``, two `llmfiles rollout control` processes (one acts), and Locust in distributed mode (one
master, two workers) spreading users over the instances. The timeline:

1. the stage runs at 50 % on every instance;
2. at a quarter of the run the acting controller is killed (SIGKILL: no clean hand-over) and the time
   until the other one holds the lease is the failover time;
3. at half the run the async arm browns out (the mock fails most of its uploads, matched by the arm's
   request header); the time to the rollback decision (the flag history's entry) and from there to the
   last instance routing to legacy (each instance's ``/healthz``, polled every 20 ms) are measured;
4. at the end every upload an instance answered as done must be in the provider's journal with the
   same SHA-256 (nothing lost).

The bounds: decision within interval x (threshold + 1) + scrape interval of the onset, every instance on
legacy within 1 s of the decision, failover within two intervals, nothing lost.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

from harness._engines import ThrowawayPostgres, ThrowawayPrometheus
from harness._lost import find_lost
from harness._procs import MockProcess, ServerProcess
from harness._runs import locust_commands, locust_summary, read_ledger
from llmfiles.fleet import ControllerLease, PostgresFlagSource, PostgresStateStore
from llmfiles.rollout import FlagState, RolloutState

__all__ = ["FleetConfig", "FleetResult", "run_fleet"]

_LOCUSTFILE = Path(__file__).resolve().parents[2] / "loadtests" / "fleet.py"
_STAGE, _PERCENT = "50%", 50.0
_ARM_HEADER = "x-llmfiles-arm"
TOKEN = secrets.token_urlsafe(24)  # this run's service token, never reused


@dataclass(frozen=True, slots=True)
class FleetConfig:
    """How the fleet run is sized.

    Args:
        out: where logs, the JSON result and Locust's files go.
        instances: reference-service instances behind the (simulated) load balancer.
        workers: Locust workers under one master.
        users: Locust users, spread over the instances.
        duration_s: the whole run; the kill at a quarter, the brownout at half.
        interval_s: the controllers' check interval (and lease time-to-live).
        threshold: failed checks in a row that roll back.
        scrape_s: Prometheus' scrape interval.
    """

    out: Path
    instances: int = 3
    workers: int = 2
    users: int = 30
    duration_s: float = 60.0
    interval_s: float = 4.0
    threshold: int = 2
    scrape_s: float = 1.0


@dataclass(slots=True)
class FleetResult:
    """What the run measured, and the bounds it was held to."""

    onset_at: float | None = None
    decision_at: float | None = None
    instance_legacy_at: dict[str, float] = field(default_factory=dict)
    killed_at: float | None = None
    taken_over_at: float | None = None
    lost: int = -1
    answered: int = 0
    locust: dict[str, Any] = field(default_factory=dict)
    bounds: dict[str, float] = field(default_factory=dict)

    @property
    def decision_s(self) -> float | None:
        if self.onset_at is None or self.decision_at is None:
            return None
        return self.decision_at - self.onset_at

    @property
    def propagation_s(self) -> float | None:
        if self.decision_at is None or len(self.instance_legacy_at) < self.bounds.get("instances", 0):
            return None
        return max(self.instance_legacy_at.values()) - self.decision_at

    @property
    def failover_s(self) -> float | None:
        if self.killed_at is None or self.taken_over_at is None:
            return None
        return self.taken_over_at - self.killed_at

    def checks(self) -> list[tuple[str, float | None, float | None, bool]]:
        """(what, measured, bound, held) for each bound of the run."""
        rows = [
            ("decision after onset (s)", self.decision_s, self.bounds["decision_s"]),
            ("last instance on legacy after decision (s)", self.propagation_s, self.bounds["propagation_s"]),
            ("controller failover (s)", self.failover_s, self.bounds["failover_s"]),
            ("uploads lost", float(self.lost) if self.lost >= 0 else None, 0.0),
        ]
        return [(name, value, bound, value is not None and value <= bound) for name, value, bound in rows]

    @property
    def ok(self) -> bool:
        return all(held for *_, held in self.checks())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            decision_s=self.decision_s,
            propagation_s=self.propagation_s,
            failover_s=self.failover_s,
            ok=self.ok,
        )
        return data


def _poll_until(condition: Callable[[], bool], *, timeout_s: float, every_s: float = 0.02) -> float | None:
    """The wall-clock time `condition` first held, or None when it did not within `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return time.time()
        time.sleep(every_s)
    return None


class _Fleet:
    """The running parts, started in order and stopped in reverse."""

    def __init__(self, config: FleetConfig, pg: ThrowawayPostgres) -> None:
        self.config = config
        self.dsn = pg.dsn()
        self.processes: list[ServerProcess] = []
        self.controllers: dict[str, subprocess.Popen[bytes]] = {}

    def seed_stage(self) -> None:
        """Flags at 50 % and a running stage, written as an operator's promotion would."""
        with PostgresFlagSource(self.dsn) as flags:
            flags.write(
                FlagState(enabled=True, percent=_PERCENT), actor="fleet-run", reason="stage for the run"
            )
        store = PostgresStateStore(self.dsn)
        try:
            store.save(RolloutState(stage=_STAGE, status="running", stage_started_at=time.time()))
        finally:
            store.close()

    def start_instances(self, mock: MockProcess) -> list[str]:
        out = self.config.out
        urls = []
        for i in range(self.config.instances):
            service = ServerProcess(
                [
                    "-m",
                    "harness.service",
                    "--provider-url",
                    mock.kimi_base_url,
                    "--flags",
                    self.dsn,
                    "--stage",
                    _STAGE,
                    "--events",
                    str(out / f"events-{i}.jsonl"),
                    "--ledger",
                    str(out / f"uploads-{i}.jsonl"),
                    "--workdir",
                    str(out / f"spool-{i}"),
                    "--registry",
                    "none",
                    "--delete-after",  # the account holds 1000 files: a minute of load must not fill it
                    "--legacy-in-thread",
                ],
                log_path=out / f"service-{i}.log",
                env={"LLMFILES_SERVICE_TOKEN": TOKEN},  # in the environment, not on a command line `ps` shows
            ).start()
            self.processes.append(service)
            urls.append(service.url)
        return urls

    def start_controller(self, holder: str, prometheus: str) -> None:
        log = (self.config.out / f"{holder}.log").open("wb")
        self.controllers[holder] = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from llmfiles.cli import main; main()",
                "rollout",
                "control",
                "--database",
                self.dsn,
                "--prometheus",
                prometheus,
                "--interval",
                str(self.config.interval_s),
                "--threshold",
                str(self.config.threshold),
                "--settle",
                str(self.config.scrape_s),
                "--soak",
                "0",
                "--holder",
                holder,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},  # a SIGKILLed controller's last lines still land
        )
        log.close()

    def stop(self) -> None:
        for process in self.controllers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.controllers.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for service in reversed(self.processes):
            service.stop()


def _locust(config: FleetConfig, hosts: list[str]) -> list[subprocess.Popen[bytes]]:
    base = [sys.executable, "-m", "locust", "-f", str(_LOCUSTFILE)]
    lead = [
        *base,
        "--headless",
        "--host",
        hosts[0],
        "-u",
        str(config.users),
        "-r",
        str(max(1, config.users // 5)),
        "-t",
        f"{config.duration_s:.0f}s",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--csv",
        str(config.out / "locust"),
    ]
    env = {**os.environ, "LLMFILES_FLEET_HOSTS": ",".join(hosts), "LLMFILES_SERVICE_TOKEN": TOKEN}
    processes = []
    for i, command in enumerate(locust_commands(base, lead, config.workers)):
        log = (config.out / f"locust-{i}.log").open("wb")
        processes.append(subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env))
        log.close()
    return processes


def _instance_percent(url: str) -> float | None:
    try:
        answer = httpx.get(f"{url}/healthz", timeout=1.0)
        return float(answer.json()["percent"])
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def run_fleet(config: FleetConfig, console: Console) -> FleetResult:
    """Run the fleet scenario end to end (see the module docstring) and print its figures."""
    config.out.mkdir(parents=True, exist_ok=True)
    result = FleetResult()
    result.bounds = {
        "decision_s": config.interval_s * (config.threshold + 1) + config.scrape_s,
        "propagation_s": 1.0,
        "failover_s": 2 * config.interval_s,
        "instances": float(config.instances),
    }
    with (
        ThrowawayPostgres() as pg,
        MockProcess(data_dir=config.out / "mock", log_path=config.out / "mock.log") as mock,
    ):
        fleet = _Fleet(config, pg)
        fleet.seed_stage()
        try:
            urls = fleet.start_instances(mock)
            targets = [url.removeprefix("http://") for url in urls]
            with ThrowawayPrometheus(targets, scrape_s=config.scrape_s, bearer_token=TOKEN) as prometheus:
                for holder in ("controller-1", "controller-2"):
                    fleet.start_controller(holder, prometheus.url)
                console.print(f"fleet: {len(urls)} instances, prometheus {prometheus.url}, 2 controllers")
                _wait_ready(fleet, prometheus, len(urls))
                _timeline(config, fleet, mock, urls, result)
        finally:
            fleet.stop()
        done = [
            row for i in range(config.instances) for row in read_ledger(config.out / f"uploads-{i}.jsonl")
        ]
        result.answered = len(done)
        result.lost = find_lost(done, mock.journal()).lost
    (config.out / "fleet.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    console.print(_table(result))
    return result


def _wait_ready(
    fleet: _Fleet, prometheus: ThrowawayPrometheus, targets: int, timeout_s: float = 180.0
) -> None:
    """Until a controller holds the lease and Prometheus scrapes every instance: the clock starts then."""
    lease = ControllerLease(fleet.dsn, holder="fleet-run-observer")
    try:
        if _poll_until(lambda: lease.current() is not None, timeout_s=timeout_s, every_s=0.1) is None:
            raise RuntimeError(f"no controller took the lease within {timeout_s} s; see controller-*.log")
    finally:
        lease.close()

    def all_up() -> bool:
        try:
            answer = httpx.get(f"{prometheus.url}/api/v1/query", params={"query": "sum(up)"}, timeout=2.0)
            result = answer.json()["data"]["result"]
        except (httpx.HTTPError, ValueError, KeyError):
            return False
        return bool(result) and float(result[0]["value"][1]) == targets

    if _poll_until(all_up, timeout_s=timeout_s, every_s=0.2) is None:
        raise RuntimeError(f"prometheus did not scrape all {targets} instances within {timeout_s} s")


def _timeline(
    config: FleetConfig, fleet: _Fleet, mock: MockProcess, urls: list[str], result: FleetResult
) -> None:
    lease = ControllerLease(fleet.dsn, holder="fleet-run-observer")
    flags = PostgresFlagSource(fleet.dsn)
    locust = _locust(config, urls)
    started = time.monotonic()
    try:
        time.sleep(max(0.0, started + config.duration_s / 4 - time.monotonic()))
        current = lease.current()
        if current is not None:
            holder, epoch = current
            fleet.controllers[holder].kill()
            result.killed_at = time.time()
            result.taken_over_at = _poll_until(
                lambda: (lease.current() or (holder, epoch))[0] != holder, timeout_s=4 * config.interval_s
            )
        time.sleep(max(0.0, started + config.duration_s / 2 - time.monotonic()))
        mock.set_rules(
            [
                {
                    "match": {"operation": "upload", "headers": {_ARM_HEADER: "async"}},
                    "trigger": {"probability": 0.7},
                    "effect": {"kind": "error", "status": 503},
                }
            ]
        )
        result.onset_at = time.time()
        watch = threading.Thread(
            target=_watch_instances, args=(urls, result, config.duration_s / 2), daemon=True
        )
        watch.start()

        def rolled_back() -> bool:
            return any(
                change.state.effective_percent == 0.0 and change.at >= (result.onset_at or 0)
                for change in flags.history(limit=5)
            )

        if _poll_until(rolled_back, timeout_s=config.duration_s / 2, every_s=0.05) is not None:
            result.decision_at = next(
                change.at for change in flags.history(limit=5) if change.state.effective_percent == 0.0
            )
        watch.join()
        for process in locust:
            process.wait(timeout=config.duration_s + 60)
        result.locust = locust_summary(config.out)
    finally:
        for process in locust:
            if process.poll() is None:
                process.kill()
                process.wait()
        lease.close()
        flags.close()


def _watch_instances(urls: list[str], result: FleetResult, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and len(result.instance_legacy_at) < len(urls):
        for url in urls:
            if url not in result.instance_legacy_at and _instance_percent(url) == 0.0:
                result.instance_legacy_at[url] = time.time()
        time.sleep(0.02)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _table(result: FleetResult) -> Table:
    table = Table(title="fleet run")
    for column in ("figure", "measured", "bound", "held"):
        table.add_column(column)
    for name, value, bound, held in result.checks():
        table.add_row(name, _fmt(value), _fmt(bound), "yes" if held else "NO")
    table.add_row("uploads answered", str(result.answered), "", "")
    table.add_row(
        "locust requests / failures",
        f"{result.locust.get('requests', 0):.0f} / {result.locust.get('failures', 0):.0f}",
        "",
        "",
    )
    return table
