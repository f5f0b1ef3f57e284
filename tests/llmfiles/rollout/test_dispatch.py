"""Dispatcher with fake arms: routing, fallback only on transport errors, reconcile, one event per call."""

import asyncio
import concurrent.futures
import hashlib
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmfiles import (
    ConfigError,
    IntegrityError,
    ProviderError,
    TransferTimeoutError,
    TransportError,
    UnsafeFilenameError,
)
from llmfiles.observe import ErrorKind, Event, LatencySamples, Recorder
from llmfiles.rollout import (
    DEFAULT_GATES,
    Decision,
    Dispatcher,
    FlagState,
    dispatched,
    evaluate,
    in_rollout,
)

SALT = "test.flag"


@dataclass(frozen=True)
class Result:
    size: int
    arm: str
    file_id: str = "file-1"


@dataclass(frozen=True)
class FoundFile:
    id: str
    bytes: int


class Flags:
    def __init__(self, percent: float = 100, *, fallback: bool = True) -> None:
        self.state = FlagState(enabled=True, percent=percent, fallback=fallback)

    def snapshot(self) -> FlagState:
        return self.state


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def record(self, event: Event) -> None:
        self.events.append(event)


class Arms:
    """Fake arms that count their calls and fail on demand."""

    def __init__(
        self, async_error: BaseException | None = None, legacy_error: BaseException | None = None
    ) -> None:
        self.async_error, self.legacy_error = async_error, legacy_error
        self.async_calls = 0
        self.legacy_calls = 0
        self.legacy_threads: list[int] = []

    async def upload_async(self, path: Path, *, purpose: str) -> Result:
        self.async_calls += 1
        if self.async_error is not None:
            raise self.async_error
        return Result(size=path.stat().st_size, arm="async")

    def upload_legacy(self, path: Path, *, purpose: str) -> Result:
        self.legacy_calls += 1
        self.legacy_threads.append(threading.get_ident())
        if self.legacy_error is not None:
            raise self.legacy_error
        return Result(size=path.stat().st_size, arm="legacy")


@pytest.fixture
def file(tmp_path: Path) -> Path:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"x" * 1234)
    return path


def make(arms: Arms, flags: Flags, sink: Sink, **kwargs: Any) -> Dispatcher[Result]:
    return Dispatcher(
        flags,
        async_arm=arms.upload_async,
        legacy_arm=arms.upload_legacy,
        recorder=sink,
        provider="kimi",
        salt=SALT,
        stage="10%",
        **kwargs,
    )


@pytest.mark.parametrize(("percent", "arm"), [(0, "legacy"), (100, "async")])
async def test_routes_by_percentage_and_records_one_event(file: Path, percent: float, arm: str) -> None:
    arms, sink = Arms(), Sink()
    result = await make(arms, Flags(percent), sink).upload(file, purpose="file-extract", key="alice")
    assert result.arm == arm
    assert len(sink.events) == 1
    event = sink.events[0]
    assert (event.arm, event.outcome, event.bytes, event.provider, event.stage) == (
        arm,
        "success",
        1234,
        "kimi",
        "10%",
    )
    assert event.error_type is None
    assert "alice" not in event.key_hash


async def test_the_same_key_gets_the_same_arm(file: Path) -> None:
    arms, sink = Arms(), Sink()
    dispatcher = make(arms, Flags(50), sink)
    for key in ("k1", "k2", "k3", "k4", "k5", "k6"):
        first = (await dispatcher.upload(file, purpose="p", key=key)).arm
        second = (await dispatcher.upload(file, purpose="p", key=key)).arm
        assert first == second == ("async" if in_rollout(key, 50, SALT) else "legacy")


async def test_without_a_key_each_call_draws_afresh(file: Path) -> None:
    arms, sink = Arms(), Sink()
    dispatcher = make(arms, Flags(50), sink)
    for _ in range(60):
        await dispatcher.upload(file, purpose="p")
    assert {e.arm for e in sink.events} == {"async", "legacy"}
    assert len({e.key_hash for e in sink.events}) == 60


@pytest.mark.parametrize(
    "error",
    [
        TimeoutError("t"),
        ConnectionResetError("reset"),
        OSError("network unreachable"),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        TransportError("closed early"),
        TransferTimeoutError("read timeout"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_transport_errors_fall_back_to_legacy(file: Path, error: BaseException) -> None:
    arms, sink = Arms(async_error=error), Sink()
    result = await make(arms, Flags(100), sink).upload(file, purpose="p", key="k")
    assert result.arm == "legacy"
    assert (arms.async_calls, arms.legacy_calls) == (1, 1)
    [event] = sink.events
    assert (event.arm, event.outcome, event.error_type, event.bytes) == (
        "async",
        "fallback",
        type(error).__name__,
        1234,
    )


@pytest.mark.parametrize(
    "error",
    [
        ProviderError("bad purpose", provider="kimi", status=400),
        ValueError("bug"),
        FileNotFoundError("gone"),
        PermissionError("denied"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_other_errors_do_not_fall_back(file: Path, error: BaseException) -> None:
    arms, sink = Arms(async_error=error), Sink()
    with pytest.raises(type(error)):
        await make(arms, Flags(100), sink).upload(file, purpose="p", key="k")
    assert arms.legacy_calls == 0
    [event] = sink.events
    assert (event.outcome, event.error_type, event.bytes) == ("failure", type(error).__name__, 0)


async def test_no_fallback_when_the_flag_forbids_it(file: Path) -> None:
    arms, sink = Arms(async_error=TimeoutError()), Sink()
    with pytest.raises(TimeoutError):
        await make(arms, Flags(100, fallback=False), sink).upload(file, purpose="p", key="k")
    assert arms.legacy_calls == 0
    assert sink.events[0].outcome == "failure"


async def test_both_arms_failing_raises_the_legacy_error_chained(file: Path) -> None:
    arms, sink = Arms(async_error=TimeoutError("async"), legacy_error=ConnectionError("legacy")), Sink()
    with pytest.raises(ConnectionError, match="legacy") as info:
        await make(arms, Flags(100), sink).upload(file, purpose="p", key="k")
    assert isinstance(info.value.__cause__, TimeoutError)
    [event] = sink.events
    assert (event.outcome, event.error_type) == ("failure", "TimeoutError")


class Reconciler:
    def __init__(self, found: FoundFile | None = None, error: BaseException | None = None) -> None:
        self.found, self.error = found, error
        self.calls: list[dict[str, Any]] = []

    async def __call__(
        self, *, filename: str, size: int, created_after: float, purpose: str, sha256: str
    ) -> FoundFile | None:
        self.calls.append(
            {
                "filename": filename,
                "size": size,
                "created_after": created_after,
                "purpose": purpose,
                "sha256": sha256,
            }
        )
        if self.error is not None:
            raise self.error
        return self.found


def adopt(found: FoundFile, path: Path, *, sha256: str) -> Result:
    return Result(size=found.bytes, arm="reconciled", file_id=found.id)


async def test_a_file_that_landed_is_adopted_not_uploaded_twice(file: Path) -> None:
    arms, sink = Arms(async_error=httpx.ReadTimeout("lost response")), Sink()
    reconcile = Reconciler(found=FoundFile("file-landed", 1234))
    dispatcher = make(
        arms, Flags(100), sink, reconcile=reconcile, adopt=adopt, clock=lambda: 1000.0, reconcile_skew_s=5
    )
    result = await dispatcher.upload(file, purpose="p", key="k")
    assert (result.arm, result.file_id) == ("reconciled", "file-landed")
    assert arms.legacy_calls == 0
    # The caller's own hash goes along, so a provider that serves stored bytes proves the file by content.
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    assert reconcile.calls == [
        {"filename": "report.pdf", "size": 1234, "created_after": 995.0, "purpose": "p", "sha256": digest}
    ]
    [event] = sink.events
    assert (event.outcome, event.error_type) == ("success", "ReadTimeout")


async def test_nothing_landed_falls_back(file: Path) -> None:
    arms, sink = Arms(async_error=httpx.ConnectError("refused")), Sink()
    dispatcher = make(arms, Flags(100), sink, reconcile=Reconciler(found=None), adopt=adopt)
    assert (await dispatcher.upload(file, purpose="p", key="k")).arm == "legacy"
    assert sink.events[0].outcome == "fallback"


async def test_unknown_whether_it_landed_fails_rather_than_duplicate(file: Path) -> None:
    arms, sink = Arms(async_error=httpx.ReadTimeout("lost")), Sink()
    dispatcher = make(
        arms, Flags(100), sink, reconcile=Reconciler(error=httpx.ConnectError("down")), adopt=adopt
    )
    with pytest.raises(httpx.ReadTimeout):
        await dispatcher.upload(file, purpose="p", key="k")
    assert arms.legacy_calls == 0
    assert sink.events[0].outcome == "failure"


async def test_adopt_gets_the_digest_reconcile_was_given_not_a_second_read(file: Path) -> None:
    # One hash of the caller's file serves both: the proof by content and the result's SHA-256.
    given: list[str] = []

    def adopt_and_note(found: FoundFile, path: Path, *, sha256: str) -> Result:
        given.append(sha256)
        return adopt(found, path, sha256=sha256)

    arms, sink = Arms(async_error=httpx.ReadTimeout("lost response")), Sink()
    reconcile = Reconciler(found=FoundFile("f", 1234))
    dispatcher = make(arms, Flags(100), sink, reconcile=reconcile, adopt=adopt_and_note)
    await dispatcher.upload(file, purpose="p", key="k")
    assert given == [reconcile.calls[0]["sha256"]] == [hashlib.sha256(file.read_bytes()).hexdigest()]


class ChecksumMismatchError(IntegrityError):
    """A critical error under a name no list of class names knows: what a rename looks like to a gate."""


class EscapedNameError(UnsafeFilenameError):
    """Another one."""


class ProviderStalledError(TransferTimeoutError):
    """A timeout whose name does not say "timeout"."""


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ChecksumMismatchError("sha256 differs"), ErrorKind.CRITICAL),
        (EscapedNameError("../x"), ErrorKind.CRITICAL),
        (ProviderStalledError("read"), ErrorKind.TIMEOUT),
        (httpx.ReadTimeout("read"), ErrorKind.TIMEOUT),
        (ProviderError("500", provider="kimi", status=500), ErrorKind.OTHER),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
async def test_the_event_records_the_error_kind_by_type(
    file: Path, error: BaseException, kind: ErrorKind
) -> None:
    arms, sink = Arms(async_error=error), Sink()
    with pytest.raises(type(error)):
        await make(arms, Flags(100, fallback=False), sink).upload(file, purpose="p", key="k")
    [event] = sink.events
    assert (event.error_type, event.error_kind) == (type(error).__name__, kind)


async def test_a_renamed_critical_error_still_rolls_back(file: Path) -> None:
    # Dispatcher -> recorder -> gates, as in production: one critical error under an unknown name must
    # still say ROLLBACK. Matching class names would let a rename silence this trigger.
    recorder = Recorder(window_s=60)
    dispatcher = Dispatcher(
        Flags(100, fallback=False),
        async_arm=Arms(async_error=ChecksumMismatchError("sha256 differs")).upload_async,
        legacy_arm=Arms().upload_legacy,
        recorder=recorder,
        salt=SALT,
    )
    with pytest.raises(ChecksumMismatchError):
        await dispatcher.upload(file, purpose="p", key="k")
    summary = recorder.summary("async")
    assert dict(summary.critical_errors) == {"ChecksumMismatchError": 1}
    latencies = LatencySamples.from_events(recorder.events())
    verdict = evaluate(
        DEFAULT_GATES.stage("1%"), recorder.compare(), latencies=latencies, rules=DEFAULT_GATES.rules
    )
    assert verdict.decision is Decision.ROLLBACK
    assert "ChecksumMismatchError" in verdict.reasons[0]


async def test_a_renamed_timeout_is_still_counted_as_one(file: Path) -> None:
    recorder = Recorder(window_s=60)
    dispatcher = Dispatcher(
        Flags(100),
        async_arm=Arms(async_error=ProviderStalledError("read")).upload_async,
        legacy_arm=Arms().upload_legacy,
        recorder=recorder,
        salt=SALT,
    )
    await dispatcher.upload(file, purpose="p", key="k")  # rescued by the legacy arm
    assert recorder.summary("async").timeouts == 1


def test_reconcile_needs_adopt() -> None:
    arms = Arms()
    with pytest.raises(ConfigError, match="pass both"):
        Dispatcher(
            Flags(), async_arm=arms.upload_async, legacy_arm=arms.upload_legacy, reconcile=Reconciler()
        )


async def test_legacy_runs_in_a_worker_thread_or_inline(file: Path) -> None:
    loop_thread = threading.get_ident()
    threaded, inline = Arms(), Arms()
    await make(threaded, Flags(0), Sink()).upload(file, purpose="p", key="k")
    await make(inline, Flags(0), Sink(), legacy_in_thread=False).upload(file, purpose="p", key="k")
    assert threaded.legacy_threads != [loop_thread]
    assert inline.legacy_threads == [loop_thread]


async def test_the_legacy_arm_has_its_own_pool_not_the_loops_default_executor(file: Path) -> None:
    """A legacy upload holds its thread for the provider's whole answer: in the loop's default executor a
    few slow ones would queue every short hop the async arm makes there. Here that executor is blocked
    outright, and legacy uploads still finish.
    """
    loop = asyncio.get_running_loop()
    blocked = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    release = threading.Event()
    loop.set_default_executor(blocked)
    hog = loop.run_in_executor(None, release.wait)
    try:
        dispatcher = make(Arms(), Flags(0), Sink())
        result = await asyncio.wait_for(dispatcher.upload(file, purpose="p", key="k"), timeout=5)
        assert result.arm == "legacy"
        dispatcher.close()
    finally:
        release.set()
        await hog


async def test_legacy_threads_bounds_the_legacy_uploads_in_flight(file: Path) -> None:
    in_flight, peak, lock = 0, 0, threading.Lock()

    def slow_legacy(path: Path, *, purpose: str) -> Result:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        try:
            time.sleep(0.05)  # long enough for the pool's other thread to start a call meanwhile
            return Result(size=path.stat().st_size, arm="legacy")
        finally:
            with lock:
                in_flight -= 1

    dispatcher = Dispatcher(Flags(0), async_arm=Arms().upload_async, legacy_arm=slow_legacy, legacy_threads=2)
    await asyncio.gather(*(dispatcher.upload(file, purpose="p", key=f"k{i}") for i in range(8)))
    dispatcher.close()
    assert peak == 2


def test_legacy_threads_must_be_positive() -> None:
    arms = Arms()
    with pytest.raises(ConfigError, match="legacy_threads=0"):
        Dispatcher(Flags(), async_arm=arms.upload_async, legacy_arm=arms.upload_legacy, legacy_threads=0)


async def test_decorator_form(file: Path) -> None:
    arms, sink = Arms(), Sink()

    @dispatched(Flags(100), legacy_arm=arms.upload_legacy, recorder=sink, salt=SALT)
    async def upload(path: Path, *, purpose: str) -> Result:
        return await arms.upload_async(path, purpose=purpose)

    assert isinstance(upload, Dispatcher)
    assert (await upload(file, purpose="p", key="k")).arm == "async"
    assert len(sink.events) == 1


async def test_a_broken_sink_never_fails_an_upload(file: Path) -> None:
    class Broken:
        def record(self, event: Event) -> None:
            raise OSError("disk full")

    arms, sink = Arms(), Sink()
    dispatcher = make(arms, Flags(100), sink, sinks=[Broken()])
    assert (await dispatcher.upload(file, purpose="p", key="k")).arm == "async"
    assert len(sink.events) == 1


async def test_a_cancelled_call_still_leaves_one_event(file: Path) -> None:
    started = asyncio.Event()

    async def hang(path: Path, *, purpose: str) -> Result:
        started.set()
        await asyncio.sleep(3600)
        raise AssertionError("unreachable")

    sink = Sink()
    dispatcher = Dispatcher(
        Flags(100), async_arm=hang, legacy_arm=Arms().upload_legacy, recorder=sink, salt=SALT
    )
    task = asyncio.create_task(dispatcher.upload(file, purpose="p", key="k"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [event] = sink.events
    assert (event.outcome, event.error_type) == ("failure", "CancelledError")


async def test_stage_is_read_per_call(file: Path) -> None:
    stages = iter(["1%", "10%"])
    sink = Sink()
    dispatcher = Dispatcher(
        Flags(100),
        async_arm=Arms().upload_async,
        legacy_arm=Arms().upload_legacy,
        recorder=sink,
        stage=lambda: next(stages),
    )
    await dispatcher.upload(file, purpose="p", key="k")
    await dispatcher.upload(file, purpose="p", key="k")
    assert [e.stage for e in sink.events] == ["1%", "10%"]
