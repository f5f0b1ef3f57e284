"""One real memory probe: a subprocess, memray, the async arm against a real mock."""

import asyncio
from pathlib import Path

import pytest

from harness._context import MB, BenchConfig, BenchContext, FileFactory
from harness._procs import MockProcess
from harness.cases._memory import probe

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_async_upload_peak_is_far_below_the_file_size(tmp_path: Path) -> None:
    (tmp_path / "files").mkdir()
    with MockProcess(data_dir=tmp_path / "mock", log_path=tmp_path / "mock.log") as mock:
        ctx = BenchContext(
            BenchConfig(quick=True, out=tmp_path), mock, tmp_path, FileFactory(tmp_path / "files")
        )
        path = ctx.files.get(4 * MB)
        async_peak, file_id = asyncio.run(probe(ctx, "async", "upload", file=path))
        legacy_peak, _ = asyncio.run(probe(ctx, "legacy", "upload", file=path))
    assert file_id
    assert 0 < async_peak < 4 * MB  # memray's own high-water mark; a streaming upload holds a few chunks
    assert legacy_peak > 4 * MB  # the old client holds the whole file (and more)
