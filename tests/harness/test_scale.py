"""The scale case end to end at toy size: real mock process, every client, the fairness bookkeeping."""

import asyncio
from collections import Counter
from pathlib import Path

import pytest

from harness._context import MB, BenchConfig, BenchContext, FileFactory
from harness._procs import MockProcess
from harness.cases._scale import clients_for, measure_scale

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_client_runs_the_same_rounds_at_every_level(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    config = BenchConfig(
        quick=True, out=tmp_path, scale_levels=(2, 5), scale_rounds=2, scale_min_files=4,
        scale_file_size=MB // 8, scale_extras=True,
    )  # fmt: skip
    with MockProcess(data_dir=tmp_path / "mock", log_path=tmp_path / "mock.log") as mock:
        ctx = BenchContext(config, mock, tmp_path, FileFactory(tmp_path / "files"))
        measurements = asyncio.run(measure_scale(ctx))

    timed = [p for p in ctx.data.scale if p.wall_s is not None]
    for op in ("upload", "download"):
        expected = {(name, level) for name in clients_for(op, extras=True) for level in (2, 5)}
        assert {(p.client, p.concurrency) for p in timed if p.op == op} == expected
    assert {p.rounds for p in timed} == {2}
    assert sum(p.errors for p in timed) == 0
    # curl has no event loop to stall; every other client has both stall figures
    assert all((p.stall_p99_ms is None) == (p.client == "curl") for p in timed)
    assert all(p.cpu_s_per_gb is not None and p.cpu_s_per_gb[0] > 0 for p in timed)
    memory = [p for p in ctx.data.scale if p.peak_mb_per_transfer is not None]
    assert Counter((p.client, p.op, p.concurrency) for p in memory) == {
        ("ours", "upload", 5): 1,
        ("ours", "download", 5): 1,
    }
    assert all(0 < p.peak_mb_per_transfer < 2 for p in memory if p.peak_mb_per_transfer)
    by_id = {m.claim_id: m for m in measurements}
    assert set(by_id) == {"scale.stall-p99-150", "scale.lead"}
    assert by_id["scale.stall-p99-150"].detail["concurrency"] == 5
    assert by_id["scale.lead"].value > 0
