"""Recorder: nearest-rank percentiles, sliding windows on a fake clock, rates and the comparison."""

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmfiles import ConfigError, IntegrityError, TransferTimeoutError, UnsafeFilenameError
from llmfiles.observe import ErrorKind, Recorder, classify_error, percentile
from tests.llmfiles._events import make_event


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@given(
    st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=300),
    st.floats(min_value=0, max_value=100),
)
def test_percentile_is_nearest_rank_like_numpy_inverted_cdf(samples: list[float], p: float) -> None:
    assert percentile(samples, p) == np.percentile(samples, p, method="inverted_cdf")


def test_percentile_of_nothing_is_none_and_bad_p_is_refused() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ConfigError, match="p=101"):
        percentile([1.0], 101)


def test_p99_of_hundred_samples_is_the_slowest_but_one() -> None:
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


class LaggedError(TransferTimeoutError):
    """A timeout whose name does not say so: what a rename does to a name-matching rule."""


class MangledError(IntegrityError):
    """A critical error under another name."""


class TimeoutLookalikeError(Exception):
    """Says "timeout" in its name, is not one."""


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), ErrorKind.TIMEOUT),
        (TransferTimeoutError("t"), ErrorKind.TIMEOUT),
        (httpx.ReadTimeout("t"), ErrorKind.TIMEOUT),
        (LaggedError("t"), ErrorKind.TIMEOUT),
        (IntegrityError("i"), ErrorKind.CRITICAL),
        (UnsafeFilenameError("u"), ErrorKind.CRITICAL),
        (MangledError("m"), ErrorKind.CRITICAL),
        (httpx.ConnectError("c"), ErrorKind.OTHER),
        (TimeoutLookalikeError(), ErrorKind.OTHER),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_errors_are_classified_by_type_never_by_name(error: BaseException, kind: ErrorKind) -> None:
    assert classify_error(error) is kind


def test_timeouts_are_counted_by_recorded_kind_not_by_name() -> None:
    recorder = Recorder(window_s=60, clock=FakeClock())
    recorder.record(
        make_event(ts=990, outcome="failure", error_type="LaggedError", error_kind=ErrorKind.TIMEOUT)
    )
    recorder.record(
        make_event(ts=990, outcome="failure", error_type="ReadTimeout", error_kind=ErrorKind.OTHER)
    )
    recorder.record(
        make_event(ts=990, outcome="failure", error_type="MangledError", error_kind=ErrorKind.CRITICAL)
    )
    summary = recorder.summary("async")
    assert summary.timeouts == 1
    assert dict(summary.critical_errors) == {"MangledError": 1}


def test_rates_and_percentiles_per_arm() -> None:
    clock = FakeClock()
    recorder = Recorder(window_s=60, clock=clock)
    durations = [0.1 * i for i in range(1, 11)]
    for d in durations:
        recorder.record(make_event(ts=990, duration_s=d))
    recorder.record(
        make_event(
            ts=990,
            outcome="failure",
            error_type="TransferTimeoutError",
            error_kind=ErrorKind.TIMEOUT,
            bytes=0,
        )
    )
    recorder.record(make_event(ts=990, outcome="fallback", error_type="ConnectError"))
    recorder.record(make_event(ts=990, arm="legacy", duration_s=0.5))
    summary = recorder.summary("async")
    assert (summary.count, summary.successes, summary.failures, summary.fallbacks) == (12, 10, 1, 1)
    assert summary.success_rate == pytest.approx(10 / 12)
    assert summary.error_rate == pytest.approx(1 / 12)
    assert summary.timeout_rate == pytest.approx(1 / 12)
    assert summary.fallback_rate == pytest.approx(1 / 12)
    # Latency covers successes only.
    assert summary.p50_s == pytest.approx(0.5)
    assert summary.p99_s == pytest.approx(1.0)
    assert dict(summary.error_types) == {"TransferTimeoutError": 1, "ConnectError": 1}
    assert summary.bytes == 11 * 1024  # ten successes and the fallback; the failure stored nothing
    assert recorder.summary("legacy").count == 1


def test_sliding_window_forgets_old_calls() -> None:
    clock = FakeClock(1000)
    recorder = Recorder(window_s=60, clock=clock)
    recorder.record(make_event(ts=950, duration_s=1.0))  # finished at 951
    recorder.record(make_event(ts=995, duration_s=1.0))
    assert recorder.summary("async").count == 2
    clock.now = 1012  # 951 is now more than 60 s ago
    assert recorder.summary("async").count == 1
    assert recorder.summary("async", window_s=10).count == 0
    clock.now = 1060
    recorder.record(make_event(ts=1059))
    assert len(recorder.events()) == 1


def test_throughput_divides_by_the_time_covered() -> None:
    clock = FakeClock(1000)
    recorder = Recorder(window_s=60, clock=clock)
    clock.now = 1010
    for _ in range(20):
        recorder.record(make_event(ts=1005, duration_s=0.0))
    # The recorder has lived 10 s, not a whole 60 s window.
    assert recorder.summary("async").throughput_per_s == pytest.approx(2.0)


def test_comparison_reports_relative_change() -> None:
    clock = FakeClock()
    recorder = Recorder(clock=clock)
    for _ in range(10):
        recorder.record(make_event(ts=999, arm="async", duration_s=0.06))
        recorder.record(make_event(ts=999, arm="legacy", duration_s=0.10))
    comparison = recorder.compare()
    assert comparison.candidate.arm == "async"
    assert comparison.control.arm == "legacy"
    assert comparison.relative["p95_s"] == pytest.approx(-0.4)
    assert comparison.relative["success_rate"] == pytest.approx(0.0)
    assert comparison.relative["error_rate"] is None  # control had no errors: no ratio to speak of


def test_memory_is_capped() -> None:
    recorder = Recorder(clock=FakeClock(), max_events=5)
    for i in range(10):
        recorder.record(make_event(ts=999, bytes=i))
    assert [e.bytes for e in recorder.events()] == [5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"window_s": 0}, "window_s=0"), ({"max_events": 0}, "max_events=0")],
    ids=["window", "max-events"],
)
def test_invalid_recorder_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Recorder(**kwargs)  # type: ignore[arg-type]


def test_asking_for_a_longer_window_than_kept_is_refused() -> None:
    with pytest.raises(ConfigError, match="window_s=600"):
        Recorder(window_s=300).summary("async", window_s=600)
