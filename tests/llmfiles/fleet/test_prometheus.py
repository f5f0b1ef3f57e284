"""`PrometheusFigures` against a real Prometheus server scraping a real `RolloutMetrics` endpoint."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client import start_http_server
from typer.testing import CliRunner

from harness._engines import PROMETHEUS_INSTALL_HINT, ThrowawayPrometheus, free_port, prometheus_binary
from llmfiles import SharedStateError
from llmfiles.cli import app
from llmfiles.fleet import PrometheusFigures, histogram_samples
from llmfiles.observe import ErrorKind, Event, RolloutMetrics
from llmfiles.rollout import RolloutState

pytestmark = pytest.mark.integration


def _event(
    arm: str, outcome: str, duration_s: float, error_type: str | None = None, kind: ErrorKind | None = None
) -> Event:
    return Event(
        ts=time.time(),
        flag="f",
        arm=arm,  # type: ignore[arg-type]
        outcome=outcome,  # type: ignore[arg-type]
        duration_s=duration_s,
        bytes=1000,
        error_type=error_type,
        error_kind=kind,
        provider="glm",
        stage="10%",
        key_hash="k",
    )


@pytest.fixture
def scraped() -> Iterator[tuple[RolloutMetrics, ThrowawayPrometheus]]:
    if prometheus_binary() is None:
        pytest.skip(f"no prometheus binary; install it with `{PROMETHEUS_INSTALL_HINT}`")
    metrics = RolloutMetrics()
    port = free_port()
    server, thread = start_http_server(port, addr="127.0.0.1", registry=metrics.registry)
    try:
        with ThrowawayPrometheus([f"127.0.0.1:{port}"], scrape_s=0.5) as prom:
            yield metrics, prom
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _wait_for_total(prom: ThrowawayPrometheus, expected: int, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    query = "sum(llmfiles_uploads_total)"
    while time.monotonic() < deadline:
        result = httpx.get(f"{prom.url}/api/v1/query", params={"query": query}).json()["data"]["result"]
        if result and float(result[0]["value"][1]) == expected:
            return
        time.sleep(0.2)
    pytest.fail(f"prometheus never saw {expected} uploads")


def test_the_fleet_figures_count_every_call_exactly(
    scraped: tuple[RolloutMetrics, ThrowawayPrometheus],
) -> None:
    metrics, prom = scraped
    _wait_for_total(prom, 0)  # scraped once at zero: every later call falls inside the window
    for _ in range(30):
        metrics.record(_event("async", "success", 0.2))
    for _ in range(5):
        metrics.record(_event("async", "fallback", 1.0, "TransferTimeoutError", ErrorKind.TIMEOUT))
    for _ in range(2):
        metrics.record(_event("async", "failure", 0.05, "IntegrityError", ErrorKind.CRITICAL))
    for _ in range(10):
        metrics.record(_event("legacy", "success", 0.07))
    _wait_for_total(prom, 47)
    with PrometheusFigures(prom.url, window_s=60.0) as figures:
        window = figures.compare(window_s=30.0)
    cand, ctrl = window.candidate, window.control
    assert (cand.count, cand.successes, cand.fallbacks, cand.failures) == (37, 30, 5, 2)
    assert cand.timeouts == 5
    assert dict(cand.critical_errors) == {"IntegrityError": 2}
    assert dict(cand.error_types) == {"TransferTimeoutError": 5, "IntegrityError": 2}
    assert cand.bytes == 37_000
    assert (ctrl.count, ctrl.successes) == (10, 10)
    # Bucket midpoints: 0.2 s falls in (0.1, 0.25], 0.07 s in (0.05, 0.1].
    assert cand.p50_s == pytest.approx(0.175)
    assert ctrl.p95_s == pytest.approx(0.075)
    assert window.relative["p50_s"] == pytest.approx(0.175 / 0.075 - 1)

    time.sleep(3.0)  # the calls above fall out of a 2 s window
    for _ in range(4):
        metrics.record(_event("legacy", "success", 0.07))
    _wait_for_total(prom, 51)
    with PrometheusFigures(prom.url, window_s=60.0) as figures:
        recent = figures.compare(window_s=2.0)
    assert (recent.candidate.count, recent.control.count) == (0, 4)


def test_an_unreachable_prometheus_is_a_typed_error() -> None:
    with (
        PrometheusFigures(f"http://127.0.0.1:{free_port()}", timeout_s=0.5) as figures,
        pytest.raises(SharedStateError, match="cannot be reached"),
    ):
        figures.compare(window_s=10.0)


def test_histogram_samples_place_each_call_in_its_bucket() -> None:
    buckets = [("0.1", 2.0), ("0.25", 5.0), ("1.0", 5.0), ("+Inf", 6.0)]
    assert histogram_samples(buckets) == [0.05, 0.05, 0.175, 0.175, 0.175, 1.0]


def _state_file(tmp_path: Path, stage: str = "10%") -> Path:
    path = tmp_path / "state.json"
    path.write_text(
        json.dumps(RolloutState(stage=stage, status="running", stage_started_at=time.time() - 60).to_dict())
    )
    return path


def test_evaluate_judges_the_fleet_from_prometheus(
    scraped: tuple[RolloutMetrics, ThrowawayPrometheus], tmp_path: Path
) -> None:
    metrics, prom = scraped
    _wait_for_total(prom, 0)
    for _ in range(40):
        metrics.record(_event("async", "success", 0.2))
        metrics.record(_event("legacy", "success", 0.2))
    _wait_for_total(prom, 80)
    state = _state_file(tmp_path)
    result = CliRunner().invoke(
        app, ["rollout", "evaluate", "--prometheus", prom.url, "--state", str(state), "--soak", "0", "--json"]
    )
    verdict = json.loads(result.stdout)
    assert verdict["figures"]["count"] == 40  # the fleet's async calls, read with PromQL
    assert verdict["prometheus"] == prom.url
    assert result.exit_code == 3  # HOLD: 40 uploads are too few for stage 10%'s gate


def test_evaluate_without_prometheus_holds_and_says_why(tmp_path: Path) -> None:
    state = _state_file(tmp_path)
    down = f"http://127.0.0.1:{free_port()}"
    result = CliRunner().invoke(app, ["rollout", "evaluate", "--prometheus", down, "--state", str(state)])
    assert result.exit_code == 3
    assert "no verdict without the fleet's figures" in result.output
