"""End to end: real mock provider on loopback, real clients, a brownout mid-run, automatic rollback.

Traffic runs through a `Dispatcher` at a 50 % stage while the `RolloutController` checks every 0.2 s
(threshold 3: rollback within 4 checks, a 0.8 s detection bound). The mock then browns out (503s and
lost responses on uploads); the rollback must follow within the bound, every call started after it must
go to the legacy arm, and no call may have left a second provider file behind.
"""

import asyncio
import contextlib
import time
from pathlib import Path

import pytest

import mock_provider
from llmfiles import KIMI, LLMFilesError, legacy, transfer
from llmfiles.observe import EventLog, Recorder, RolloutMetrics, read_events
from llmfiles.rollout import (
    CheckResult,
    Dispatcher,
    FileFlagSource,
    GateTable,
    OverridableFlagSource,
    RollbackRules,
    RolloutController,
    StageGate,
    StateStore,
)

pytestmark = pytest.mark.integration

INTERVAL, THRESHOLD = 0.2, 3
WORKERS = 6
BROWNOUT = [
    {
        "match": {"provider": "kimi", "operation": "upload"},
        "trigger": {"probability": 0.5},
        "effect": {"kind": "error", "status": 503},
    },
    {
        "match": {"provider": "kimi", "operation": "upload"},
        "trigger": {"probability": 0.2},
        "effect": {"kind": "lost_response"},
    },
]
GATES = GateTable(
    stages=(StageGate("50%", 50.0, 0.99, 10.0, 0.01, 10, 0.0),),
    # A few calls per 0.2 s interval are enough evidence here; production keeps 20.
    rules=RollbackRules(min_samples=3),
)


def rolled_back(controller: RolloutController) -> bool:
    return controller.state.status == "rolled_back"


async def test_brownout_is_rolled_back_within_the_bound_and_traffic_moves_to_legacy(tmp_path: Path) -> None:
    payload = tmp_path / "doc.txt"
    payload.write_bytes(b"rollout " * 128)
    flag_file = FileFlagSource(tmp_path / "flags.json")
    flags = OverridableFlagSource(flag_file)
    recorder = Recorder(window_s=60)
    metrics = RolloutMetrics()
    controller = RolloutController(
        recorder=recorder,
        flags=flags,
        store=StateStore(tmp_path / "state.json"),
        gates=GATES,
        interval_s=INTERVAL,
        threshold=THRESHOLD,
        metrics=metrics,
    )
    assert controller.promote().applied  # off -> 50 %
    checks: list[tuple[float, CheckResult]] = []
    real_check = controller.check

    def timed_check() -> CheckResult:
        started = time.time()
        result = real_check()
        checks.append((started, result))
        return result

    controller.check = timed_check  # type: ignore[method-assign]
    settings = transfer.TransferSettings(retries=0, read_timeout=5.0)

    with mock_provider.MockProvider("calm", seed=3) as mock, EventLog(tmp_path / "events.jsonl") as log:
        async with transfer.AsyncFilesClient(
            KIMI, api_key="sk-test", base_url=mock.kimi_base_url, settings=settings
        ) as client:
            old = legacy.LegacyFilesClient(KIMI, api_key="sk-test", base_url=mock.kimi_base_url, timeout=5.0)
            dispatcher = Dispatcher(
                flags,
                async_arm=client.upload,
                legacy_arm=old.upload,
                recorder=recorder,
                sinks=[log, metrics],
                provider="kimi",
                stage=controller.current_stage,
                reconcile=client.find_uploaded,
                adopt=transfer.UploadResult.adopted,
            )
            stop_traffic, stop_controller = asyncio.Event(), asyncio.Event()

            async def worker() -> None:
                while not stop_traffic.is_set():
                    # The event records a failure; the brownout is supposed to hurt.
                    with contextlib.suppress(LLMFilesError):
                        await dispatcher.upload(payload, purpose="file-extract")

            workers = [asyncio.create_task(worker()) for _ in range(WORKERS)]
            checker = asyncio.create_task(controller.run(stop_controller))
            try:
                # Healthy traffic on both arms first, however slow the machine is today.
                warm_until = time.time() + 30
                while (
                    time.time() < warm_until
                    and min(recorder.summary("async").successes, recorder.summary("legacy").successes)
                    < 2 * GATES.rules.min_samples
                ):
                    await asyncio.sleep(INTERVAL)
                assert controller.state.status == "running", controller.state.reason

                # In a thread: a blocking control call would stall the loop, the checks and the traffic.
                await asyncio.to_thread(mock.set_rules, BROWNOUT, seed=11)
                onset = time.time()
                deadline = onset + 20 * controller.detection_bound_s
                while not rolled_back(controller) and time.time() < deadline:
                    await asyncio.sleep(0.02)
                await asyncio.sleep(3 * INTERVAL)  # traffic after the rollback
            finally:
                stop_traffic.set()
                stop_controller.set()
                await asyncio.gather(*workers, checker)

        files_stored = mock.stats()["files"]["kimi"]

    state = controller.state
    assert state.status == "rolled_back", "no rollback within 20x the detection bound"
    rollback = state.history[-1]
    assert (rollback["action"], rollback["trigger"]) == ("rollback", "automatic")
    detected_after = rollback["ts"] - onset
    # The bound, interval x (threshold + 1), counted in checks rather than wall-clock seconds (a shared
    # machine would make that a timing test; the controller's tests pin the seconds on a fake clock).
    # A check that saw too few async calls to judge and left the streak as it was is neutral by design
    # (the bound assumes traffic), so it is not counted.
    after_onset = [result for started, result in checks if onset < started <= rollback["ts"]]
    streak, decisive = 0, 0
    for result in after_onset:
        neutral = result.samples < GATES.rules.min_samples and result.failed_checks == streak
        decisive += not neutral or result.rolled_back
        streak = result.failed_checks
    trace = [(round(t - onset, 2), r.samples, r.failed_checks, r.rolled_back) for t, r in checks]
    assert 1 <= decisive <= THRESHOLD + 1, (
        f"{detected_after:.2f} s; (t, samples, streak, rolled back): {trace}"
    )
    assert flag_file.snapshot().percent == 0
    assert (
        metrics.registry.get_sample_value("llmfiles_rollout_rollbacks_total", {"trigger": "automatic"}) == 1
    )

    events = list(read_events(tmp_path / "events.jsonl"))
    after = [e for e in events if e.ts > rollback["ts"]]
    assert after, "no traffic after the rollback"
    assert {e.arm for e in after} == {"legacy"}
    assert {e.arm for e in events if e.ts < onset} == {"async", "legacy"}
    # Every delivered upload is exactly one provider file. The only other files are those the legacy arm
    # stored behind a lost response (it has no reconcile: the old path's flaw, kept on purpose) and those
    # an async upload reported as possibly stored (UploadMayExistError: its answer was lost and no
    # candidate could be proven its own); the async arm never uploaded a second time.
    delivered = sum(1 for e in events if e.outcome in ("success", "fallback"))
    legacy_orphans = sum(1 for e in events if e.arm == "legacy" and e.error_type == "TransportError")
    may_exist = sum(1 for e in events if e.error_type == "UploadMayExistError")
    assert delivered + legacy_orphans <= files_stored <= delivered + legacy_orphans + may_exist
    print(f"rollback {detected_after:.3f} s / {len(after_onset)} checks after onset; {len(events)} calls")
