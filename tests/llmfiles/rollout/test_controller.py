"""The controller on synthetic event streams and a fake clock: detection bound, rollback, promotion."""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from llmfiles import ConfigError
from llmfiles.observe import Arm, MemorySampler, Recorder, RolloutMetrics, atomic_write_text
from llmfiles.rollout import (
    DEFAULT_GATES,
    CheckResult,
    Decision,
    FileFlagSource,
    FlagState,
    GateTable,
    OverridableFlagSource,
    RollbackRules,
    RolloutController,
    StateStore,
)
from tests.llmfiles._events import make_event

INTERVAL, THRESHOLD = 10.0, 3
# Soak shrunk to 60 s and min uploads to DESIGN's as-is: a synthetic stream, like a load run.
GATES = DEFAULT_GATES.with_soak(60)


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Rig:
    """A controller wired to a flag file and a state file, with a fake clock driving everything."""

    def __init__(
        self, tmp_path: Path, *, memory: MemorySampler | None = None, gates: GateTable = GATES
    ) -> None:
        self.clock = FakeClock()
        self.recorder = Recorder(window_s=3600, clock=self.clock)
        self.file = FileFlagSource(tmp_path / "flags.json")
        self.flags = OverridableFlagSource(self.file)
        self.store = StateStore(tmp_path / "state.json")
        self.metrics = RolloutMetrics()
        self.controller = RolloutController(
            recorder=self.recorder,
            flags=self.flags,
            store=self.store,
            gates=gates,
            interval_s=INTERVAL,
            threshold=THRESHOLD,
            clock=self.clock,
            memory=memory,
            metrics=self.metrics,
        )

    def traffic(
        self, seconds: float, *, per_second: int = 20, fail: bool = False, arm: Arm = "async"
    ) -> None:
        """Calls spread over the next `seconds`, the clock advancing with them."""
        for _ in range(int(seconds)):
            self.clock.now += 1
            for _ in range(per_second):
                self.recorder.record(
                    make_event(
                        ts=self.clock.now - 0.05,
                        arm=arm,
                        outcome="fallback" if fail else "success",
                        duration_s=0.05,
                        bytes=1,
                        error_type="ReadTimeout" if fail else None,
                        stage=self.controller.current_stage(),
                    )
                )
                self.recorder.record(
                    make_event(
                        ts=self.clock.now - 0.05,
                        arm="legacy",
                        outcome="success",
                        duration_s=0.05,
                        bytes=1,
                        stage="x",
                    )
                )


def test_detection_bound_is_interval_times_threshold(tmp_path: Path) -> None:
    assert Rig(tmp_path).controller.detection_bound_s == 40.0


def test_brownout_is_rolled_back_within_the_bound(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    assert rig.controller.promote().applied  # off -> 1%
    assert rig.file.snapshot() == FlagState(enabled=True, percent=1.0)
    assert rig.metrics.registry.get_sample_value("llmfiles_rollout_percent") == 1.0
    for _ in range(5):  # healthy checks
        rig.traffic(INTERVAL)
        assert rig.controller.check().failed_checks == 0
    onset = rig.clock.now
    checks: list[CheckResult] = []
    while not (checks and checks[-1].rolled_back):
        rig.traffic(INTERVAL, fail=True)
        checks.append(rig.controller.check())
        assert len(checks) <= THRESHOLD
    assert [c.failed_checks for c in checks[:-1]] == [1, 2]
    assert rig.clock.now - onset <= rig.controller.detection_bound_s
    assert checks[-1].verdict.decision is Decision.ROLLBACK
    # Applied everywhere at once: in-process, shared file, state file, metric.
    assert rig.flags.snapshot().effective_percent == 0
    assert FileFlagSource(tmp_path / "flags.json").snapshot().percent == 0
    stored = json.loads((tmp_path / "state.json").read_text())
    assert (stored["stage"], stored["status"]) == ("off", "rolled_back")
    assert stored["history"][-1]["trigger"] == "automatic"
    assert "success 0.00% < 95.00%" in stored["reason"]
    assert (
        rig.metrics.registry.get_sample_value("llmfiles_rollout_rollbacks_total", {"trigger": "automatic"})
        == 1
    )


def test_a_healthy_check_resets_the_streak(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()
    rig.traffic(40 * INTERVAL)  # enough healthy history that the whole stage stays above 95 %
    for fail in (True, True, False, True, True):
        rig.traffic(INTERVAL, fail=fail)
        result = rig.controller.check()
    assert result.failed_checks == 2
    assert not result.rolled_back


def test_an_interval_too_thin_to_judge_neither_counts_nor_clears(tmp_path: Path) -> None:
    rig = Rig(tmp_path, gates=GATES)
    rig.controller.promote()
    rig.traffic(40 * INTERVAL)  # enough healthy history that the whole stage never says ROLLBACK
    streak = []
    for _ in range(2):
        rig.traffic(INTERVAL, fail=True)
        streak.append(rig.controller.check().failed_checks)
    assert streak == [1, 2]
    # Calls hang: nothing finished in this interval. Neither window says ROLLBACK, and there is
    # nothing to judge, so the streak must stand rather than reset.
    rig.clock.now += INTERVAL
    empty = rig.controller.check()
    assert empty.verdict.decision is not Decision.ROLLBACK
    assert (empty.samples, empty.failed_checks) == (0, 2)
    rig.traffic(INTERVAL, per_second=1)  # ten healthy calls: fewer than min_samples, still no verdict
    thin = rig.controller.check()
    assert thin.verdict.decision is not Decision.ROLLBACK
    assert (thin.samples, thin.failed_checks) == (10, 2)
    rig.traffic(INTERVAL, fail=True)
    assert rig.controller.check().rolled_back  # the third failing check in the streak


def test_memory_spike_rolls_back(tmp_path: Path) -> None:
    rss = [100]
    rig = Rig(tmp_path, memory=MemorySampler(rss=lambda: rss[0]))
    rig.controller.promote()  # takes the baseline
    rss[0] = 130
    for _ in range(THRESHOLD):
        rig.traffic(INTERVAL)
        result = rig.controller.check()
    assert result.rolled_back
    assert any("memory +30.0%" in reason for reason in result.verdict.reasons)


def test_promote_refuses_without_promote_verdict_and_shows_it(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()
    rig.traffic(2)  # 40 calls < 100, soak 2 s < 60 s
    result = rig.controller.promote()
    assert not result.applied
    assert result.verdict is not None
    assert result.verdict.decision is Decision.HOLD
    assert "too few uploads: 40 < 100" in result.verdict.reasons
    assert rig.controller.state.stage == "1%"
    forced = rig.controller.promote(force=True)
    assert forced.applied
    assert forced.to_stage == "10%"
    assert forced.reason == "forced by the operator over HOLD"


def test_promote_on_a_promote_verdict_moves_the_flag_and_keeps_a_baseline(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()
    rig.traffic(61)  # 1220 calls over 61 s
    result = rig.controller.promote()
    assert result.applied, result.reason
    assert (result.from_stage, result.to_stage) == ("1%", "10%")
    assert rig.file.snapshot().percent == 10.0
    assert rig.controller.state.baseline_p95_s == pytest.approx(0.05)
    assert rig.controller.state.stage_started_at == rig.clock.now


def test_restart_after_rollback_needs_force(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()
    rig.controller.rollback("operator saw errors")
    refused = rig.controller.promote()
    assert not refused.applied
    assert "restart with force" in refused.reason
    assert rig.controller.promote(force=True).applied
    assert rig.flags.snapshot().effective_percent == 1.0


def test_last_stage_cannot_be_promoted(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    for _ in range(4):
        rig.controller.promote(force=True)
    result = rig.controller.promote(force=True)
    assert not result.applied
    assert result.to_stage is None


def test_another_process_sees_and_changes_the_state(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()
    other = Rig(tmp_path)  # e.g. the CLI: same files, fresh objects
    assert other.controller.state.stage == "1%"
    other.controller.rollback("from the CLI")
    assert rig.controller.check().verdict.reasons == ("rollout is rolled_back",)
    assert rig.flags.snapshot().effective_percent == 0


def test_review_band_is_timed_by_the_controller(tmp_path: Path) -> None:
    rig = Rig(tmp_path, gates=GATES)
    rig.controller.promote()
    # 96 % success: inside the review band, above the 95 % rollback line.
    for _ in range(31):
        rig.clock.now += 60
        for i in range(100):
            rig.recorder.record(
                make_event(
                    ts=rig.clock.now,
                    arm="async",
                    outcome="fallback" if i < 4 else "success",
                    duration_s=0.01,
                    bytes=1,
                    provider="k",
                )
            )
        verdict = rig.controller.check().verdict
    assert any(r.startswith("manual review: success 96.00%") for r in verdict.reasons)


def test_automatic_rollback_writes_the_flag_past_a_corrupt_state(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()
    rig.traffic(INTERVAL)
    rig.controller.check()
    state_file = tmp_path / "state.json"
    state_file.write_text('{"stage": "1%", "status": "runn')  # torn by a bad edit mid-stage
    result = None
    for _ in range(THRESHOLD):
        rig.traffic(INTERVAL, fail=True)
        result = rig.controller.check()
    assert result is not None
    assert result.rolled_back
    assert FileFlagSource(tmp_path / "flags.json").snapshot().percent == 0
    [aside] = tmp_path.glob("state.json.corrupt-*")
    assert aside.read_text() == '{"stage": "1%", "status": "runn'
    fresh = StateStore(state_file).load()
    assert (fresh.stage, fresh.status, fresh.history[-1]["trigger"]) == ("off", "rolled_back", "automatic")


def test_rollback_reports_a_flag_it_could_not_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rig = Rig(tmp_path)
    rig.controller.promote()

    def refuse(path: Path, text: str) -> None:
        if path.name == "flags.json":
            raise PermissionError(13, "Permission denied", str(path))
        atomic_write_text(path, text)

    monkeypatch.setattr("llmfiles.rollout._flags.atomic_write_text", refuse)
    report = rig.controller.rollback("incident")
    assert not report.flag_written
    assert any("could not be written" in p for p in report.problems)
    assert rig.flags.snapshot().effective_percent == 0  # this process is pinned all the same
    assert StateStore(tmp_path / "state.json").load().status == "rolled_back"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage_started_at": 1e300}, r"stage_started_at=1e\+300 must be a unix time"),
        ({"stage_started_at": float("nan")}, "stage_started_at=nan must be a unix time"),
        ({"stage_started_at": "yesterday"}, "stage_started_at='yesterday'"),
        ({"history": [5]}, r"history\[0\]=5 must be an object"),
        ({"history": [{"ts": float("inf")}]}, r"history\[0\]=.* must be an object with a unix time"),
        ({"history": "none"}, "history='none' must be a list"),
        ({"baseline_p95_s": -1}, "baseline_p95_s=-1"),
        ({"stage": 5}, "stage=5 must be a stage name"),
        ({"reason": ["x"]}, "reason=\\['x'\\]"),
    ],
)
def test_odd_state_values_are_config_errors_naming_the_key(
    tmp_path: Path, change: dict[str, Any], message: str
) -> None:
    good = {"stage": "1%", "status": "running", "stage_started_at": 1000.0, "history": []}
    (tmp_path / "state.json").write_text(json.dumps({**good, **change}))
    with pytest.raises(ConfigError, match=message):
        StateStore(tmp_path / "state.json").load()


def test_corrupt_state_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text('{"stage": "1%"}')
    with pytest.raises(ConfigError, match="is not a rollout state"):
        Rig(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "message"), [({"interval_s": 0}, "interval_s=0"), ({"threshold": 0}, "threshold=0")]
)
def test_invalid_controller_settings(tmp_path: Path, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RolloutController(
            recorder=Recorder(), flags=OverridableFlagSource(FileFlagSource(tmp_path / "f.json")), **kwargs
        )


async def test_run_checks_until_stopped(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    controller = RolloutController(
        recorder=rig.recorder,
        flags=rig.flags,
        store=rig.store,
        gates=GATES,
        interval_s=0.01,
        threshold=2,
        clock=rig.clock,
    )
    controller.promote()
    rig.traffic(INTERVAL, fail=True)
    stop = asyncio.Event()
    task = asyncio.create_task(controller.run(stop))
    for _ in range(500):
        await asyncio.sleep(0.01)
        if controller.state.status == "rolled_back":
            break
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    assert controller.state.status == "rolled_back"
    assert task.exception() is None


def test_rules_can_lower_min_samples(tmp_path: Path) -> None:
    from dataclasses import replace

    rig = Rig(tmp_path, gates=replace(GATES, rules=RollbackRules(min_samples=1000)))
    rig.controller.promote()
    rig.traffic(INTERVAL, fail=True)  # 200 calls < 1000: rates cannot roll back
    assert rig.controller.check().failed_checks == 0
