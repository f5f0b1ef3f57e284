"""``python -m harness load``: mock provider, reference service and Locust, each in its own process.

Order of a run: the mock starts with the chosen chaos profile (plus per-arm profiles matched on the
header each arm's client sends); the service starts at the first phase's stage, reading a flag file;
Locust runs headless (alone, or as a master with local workers) at a paced rate for the whole run,
keeping its CSV and HTML and one line per request; meanwhile the phase driver switches the flag file
between phases and samples the service's RSS; the service stops (flushing its event log and ledger).
Then: nothing lost (every upload the service answered as done is in the mock's journal with the same
SHA-256), per-phase and per-arm figures, the statistical judge's verdict (`harness.load._fair`), a
JSON and a Markdown report and a timeline PNG beside Locust's report.

The ``stage_promotion`` scenario is a before/after at equal load: control phases at the current stage
and candidate phases at the target stage, alternated (`harness.load._phases`). Other scenarios run one
phase at the stage.

Exit code: 1 when anything was lost or a process failed; otherwise 0 for PROMOTE, 3 for HOLD, 4 for
ROLLBACK (`EXIT_CODES`). Only the `stage_promotion` scenario exits by the verdict; the others exit 0
once nothing was lost, and print the verdict for information.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from harness._lost import LostReport, find_lost
from harness._procs import MockProcess, ServerProcess
from harness._runs import locust_commands, locust_summary, read_ledger
from harness.load._fair import Criteria, RunVerdict, judge_run
from harness.load._figures import PhaseFigures, arm_labeller, phase_figures, read_run_events, read_samples
from harness.load._gate import EXIT_CODES, stage_name
from harness.load._phases import PhaseDriver, plan_phases
from harness.load._report import print_report, write_reports
from harness.load._timeline import draw_timeline
from harness.service._config import ARM_HEADER
from llmfiles import ConfigError
from llmfiles.rollout import LOAD_RUN_GATES
from loadtests import SAMPLES_ENV
from mock_provider import load_profile

__all__ = ["DEFAULT_RATE", "SCENARIOS", "LoadConfig", "LoadResult", "run_load"]

SCENARIOS = ("upload_burst", "mixed", "stage_promotion")
_LOCUSTFILES = Path(__file__).resolve().parents[2] / "loadtests"
#: Requests per second the stage-promotion scenario offers (all users together) unless told otherwise:
#: what an idle 2-core box sustains at 150 users with the `realistic` profile, measured with the queue
#: check (Locust's p50 278 ms within 2 x (the dispatcher's p50 214 ms + 50 ms)) and every phase serving
#: 39-41 requests/s, using under half the box's CPU.
DEFAULT_RATE = 40.0

ControlArm = Literal["legacy", "async"]


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """One load run.

    Args:
        scenario: a locustfile in loadtests/ (`SCENARIOS`).
        stage: the rollout percentage the service routes to the async arm (1, 10, 50 or 100); in
            ``stage_promotion`` the candidate phases' stage, the control phases running the one before.
        profile: the mock's chaos profile for every request.
        users: concurrent Locust users.
        duration_s: how long Locust runs (the warm-up, then the phases).
        out: directory for Locust's CSV and HTML, the logs, events, ledger, reports and the timeline.
        workers: 0 runs Locust alone; N > 0 runs a master and N local workers (distributed mode).
        spawn_rate: users started per second (default: all within the warm-up).
        seed: the mock's chaos seed.
        legacy_in_thread: run the service's legacy arm in a worker thread (the default), so the new arm is
            not timed while the old one freezes the loop; False runs it on the event loop, as the old
            service did, to show that cost.
        max_file_bytes: cap on upload sizes (the scenarios' 20 MB by default); tests lower it.
        registry: the service's ``--registry`` (a registry URL, or ``none`` to upload every request);
            None for its default, a SQLite file in the run's temp dir that lives exactly as long as the
            mock's files do.
        rate: requests per second offered by all users together (``stage_promotion`` only): a pace the
            service sustains, so latencies describe the arms and not a queue.
        async_profile: a mock profile applied on top of `profile` to the async arm's requests only.
        legacy_profile: the same for the legacy arm's requests.
        control_arm: ``"legacy"``, or ``"async"`` for an A/A run: the service sends everyone to the async
            client and the harness splits the calls by the stage's buckets, so both sides run the same
            code and the verdict must never be ROLLBACK.
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
    legacy_in_thread: bool = True
    max_file_bytes: int | None = None
    registry: str | None = None
    rate: float = DEFAULT_RATE
    async_profile: str | None = None
    legacy_profile: str | None = None
    control_arm: ControlArm = "legacy"

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"scenario={self.scenario!r} is unknown; use one of {', '.join(SCENARIOS)}")
        stage_name(self.stage)
        for name in ("users", "duration_s"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}={getattr(self, name)!r} must be at least 1")
        if self.workers < 0:
            raise ConfigError(f"workers={self.workers!r} must be 0 (no workers) or more")
        if self.rate <= 0:
            raise ConfigError(f"rate={self.rate!r} must be a positive number of requests per second")
        if self.control_arm not in ("legacy", "async"):
            raise ConfigError(f"control_arm={self.control_arm!r} must be 'legacy' or 'async' (A/A)")
        if self.control_arm == "async" and (self.async_profile or self.legacy_profile):
            raise ConfigError(
                "control_arm='async' runs both sides on the async client, so async_profile/legacy_profile "
                "cannot tell them apart; drop the per-arm profile or the A/A mode"
            )
        for name in ("profile", "async_profile", "legacy_profile"):
            value = getattr(self, name)
            if value is not None:
                load_profile(value)  # ProfileError (a ValueError) names the profile and the shipped ones

    @property
    def warmup_s(self) -> float:
        """Seconds before the first phase: one pacing cycle (each user's first call lands somewhere in
        it), at least 6 s for Locust's users to spawn, at most a fifth of the run."""
        return min(self.duration_s * 0.2, max(6.0, self.users / self.rate))

    @property
    def alternates(self) -> bool:
        """Whether the run alternates control and candidate phases (the stage-promotion run)."""
        return self.scenario == "stage_promotion"


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What a load run found: the exit code and the evidence behind it."""

    exit_code: int
    verdict: RunVerdict
    lost: LostReport
    locust: dict[str, Any]
    locust_exit: int
    phases: tuple[PhaseFigures, ...]

    @property
    def decision(self) -> str:
        return str(self.verdict.decision)


def criteria_for(stage: float) -> Criteria:
    """The load-run gate set's criteria for `stage`: its latency and error limits, its minimums."""
    gate = LOAD_RUN_GATES.stage(stage_name(stage))
    return Criteria(
        gate_set=f"{LOAD_RUN_GATES.name} {gate.name}",
        latency_tolerance=gate.max_latency_ratio,
        max_error_rate=gate.max_error_rate,
        min_samples=LOAD_RUN_GATES.rules.min_samples,
        min_to_pass=gate.min_uploads,
    )


#: Seconds Locust keeps running after the last phase, so calls started in it can finish.
_GRACE_S = 10.0
#: Seconds allowed for Locust to start (import, spawn) before its backstop ``-t`` would cut the phases.
_BOOT_S = 30


def _locust_seconds(config: LoadConfig) -> int:
    """Locust's ``-t``: a backstop past the phases, its start-up and the grace period."""
    return config.duration_s + _BOOT_S + int(_GRACE_S)


def _locust_commands(config: LoadConfig, host: str) -> list[list[str]]:
    """The master (or lone) command first, then one per worker."""
    locustfile = str(_LOCUSTFILES / f"{config.scenario}.py")
    spawn = config.spawn_rate or config.users / max(config.warmup_s * 0.8, 0.5)
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
        f"{_locust_seconds(config)}s",
        "--stop-timeout",
        "10",
        "--only-summary",
        "--csv",
        str(config.out / "locust"),
        "--html",
        str(config.out / "locust.html"),
    ]
    return locust_commands(base, lead, config.workers)


def _interruptible() -> None:
    """In Locust's process before it starts: SIGINT back to its default, so Locust installs its handler.

    A shell starts background jobs with SIGINT ignored, and an ignored signal stays ignored across exec;
    Locust would then never see the SIGINT that makes it stop and write its report.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _run_locust(
    config: LoadConfig, host: str, env: dict[str, str], driver: PhaseDriver, pid: int | None
) -> int:
    """Run Locust while the driver runs the phases; stop Locust once they are over (and a grace period).

    Locust's own ``-t`` is only a backstop: its start-up on a busy machine takes seconds the phases must
    not lose. When the last phase ends, Locust gets `_GRACE_S` for the calls started in that phase to
    finish (so its slowest calls are not cut off), then SIGINT, on which it writes its CSV and HTML.
    """
    commands = _locust_commands(config, host)
    logs = [(config.out / f"locust-{i}.log").open("w") for i in range(len(commands))]
    processes = [
        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, preexec_fn=_interruptible)
        for cmd, log in zip(commands, logs, strict=True)
    ]
    samples = Path(env[SAMPLES_ENV])
    driver.start(pid, ready=lambda: any(p.stat().st_size > 0 for p in samples.glob("samples-*.jsonl")))
    lead = processes[0]
    try:
        backstop = time.monotonic() + _locust_seconds(config) + 120
        while lead.poll() is None and not driver.finished.wait(0.2) and time.monotonic() < backstop:
            pass
        if lead.poll() is None and driver.finished.is_set():
            with contextlib.suppress(subprocess.TimeoutExpired):
                lead.wait(timeout=_GRACE_S)
            if lead.poll() is None:
                lead.send_signal(signal.SIGINT)
        code = lead.wait(timeout=60)
        for worker in processes[1:]:
            worker.wait(timeout=30)
        return code
    finally:
        driver.stop()
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        for log in logs:
            log.close()


def arm_rules(profile: str, *, async_profile: str | None, legacy_profile: str | None) -> list[dict[str, Any]]:
    """`profile`'s rules for every request, then each per-arm profile's rules for that arm's requests only.

    The arm's rules match on the header its client sends (`ARM_HEADER`), on top of whatever else they
    match; latencies of all firing rules add up, so a brownout on one arm lands on top of the day's
    ordinary latency.
    """
    rules = [rule.model_dump(mode="json") for rule in load_profile(profile).rules]
    for arm, name in (("async", async_profile), ("legacy", legacy_profile)):
        if name is None:
            continue
        for rule in load_profile(name).rules:
            data = rule.model_dump(mode="json")
            data["match"]["headers"] = {**data["match"]["headers"], ARM_HEADER.lower(): arm}
            rules.append(data)
    return rules


def run_load(config: LoadConfig, console: Console) -> LoadResult:
    """Run one load test end to end and print its summary; see the module docstring for the exit code."""
    config.out.mkdir(parents=True, exist_ok=True)
    samples_dir = config.out / "samples"
    samples_dir.mkdir(exist_ok=True)
    for stale in (config.out / "events.jsonl", config.out / "uploads.jsonl", *samples_dir.glob("*.jsonl")):
        stale.unlink(missing_ok=True)
    env = {
        SAMPLES_ENV: str(samples_dir),
        "LLMFILES_LOAD_RATE_PER_USER": f"{config.rate / config.users:.6g}",
        **({"LLMFILES_LOAD_MAX_BYTES": str(config.max_file_bytes)} if config.max_file_bytes else {}),
    }
    phases = plan_phases(
        config.stage, config.duration_s, warmup_s=config.warmup_s, alternate=config.alternates
    )
    # One token per run, handed to the service and to Locust through the environment (not argv: ps shows it).
    token = {"LLMFILES_SERVICE_TOKEN": secrets.token_urlsafe(32)}
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
        if config.async_profile or config.legacy_profile:
            mock.set_rules(
                arm_rules(
                    config.profile, async_profile=config.async_profile, legacy_profile=config.legacy_profile
                ),
                seed=config.seed,
            )
        driver = PhaseDriver(
            Path(tmp) / "flags.json",
            phases,
            warmup_s=config.warmup_s,
            serve_percent=100.0 if config.control_arm == "async" else None,
        )
        driver.prepare()
        service_args = [
            "-m", "harness.service", "--provider-url", mock.kimi_base_url, "--percent", f"{config.stage:g}",
            "--events", str(config.out / "events.jsonl"), "--ledger", str(config.out / "uploads.jsonl"),
            "--workdir", str(Path(tmp) / "spool"), "--delete-after", "--flags", str(driver.flags_path),
        ]  # fmt: skip
        if config.legacy_in_thread:
            service_args.append("--legacy-in-thread")
        if config.registry is not None:
            service_args += ["--registry", config.registry]
        with ServerProcess(service_args, log_path=config.out / "service.log", env=token) as service:
            console.print(
                f"mock {mock.url} ({_chaos_label(config)}) · service {service.url} · "
                f"phases: {', '.join(p.name for p in phases)}"
            )
            locust_exit = _run_locust(
                config, service.url, {**os.environ, **env, **token}, driver, service.pid
            )
        journal = mock.journal()
    lost = find_lost(read_ledger(config.out / "uploads.jsonl"), journal)
    samples = read_samples(samples_dir)
    events = read_run_events(config.out / "events.jsonl")
    label = arm_labeller(samples, control_arm=config.control_arm)
    figures = phase_figures(driver.windows, samples, events, label=label)
    offered = config.rate if config.scenario == "stage_promotion" else None
    verdict = judge_run(
        figures,
        criteria_for(config.stage),
        offered_per_s=offered,
        legacy_on_loop=not config.legacy_in_thread,
    )
    if not lost.ok:
        code = 1
    elif config.scenario == "stage_promotion":
        code = EXIT_CODES[str(verdict.decision)]
    else:
        code = 0
    result = LoadResult(code, verdict, lost, locust_summary(config.out), locust_exit, tuple(figures))
    title = (
        f"{config.scenario}, stage {config.stage:g}%, {_chaos_label(config)}, "
        f"{config.users} users, {config.rate:g} req/s"
    )
    timeline = draw_timeline(
        config.out / "load-timeline.png",
        driver.windows,
        events,
        samples=samples,
        label=label,
        title=title,
        decision=result.decision,
    )
    write_reports(config, result, timeline)
    print_report(console, config, result)
    return result


def _chaos_label(config: LoadConfig) -> str:
    parts = [config.profile]
    if config.async_profile:
        parts.append(f"async +{config.async_profile}")
    if config.legacy_profile:
        parts.append(f"legacy +{config.legacy_profile}")
    if config.control_arm == "async":
        parts.append("A/A")
    return ", ".join(parts)
