"""Peak memory of a 50 MB upload and a 50 MB download stays under 4 MB (pytest-memray, run with --memray).

The mock runs in its own process here: memray counts every allocation in the test's process, and the
server's buffers are not the client's.
"""

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmfiles import GLM
from llmfiles.transfer import AsyncFilesClient

pytestmark = [pytest.mark.memory, pytest.mark.integration, pytest.mark.slow]

SIZE = 50 * 1024 * 1024


@pytest.fixture(scope="module")
def mock_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("mock-data")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mock_provider",
            "--port",
            "0",
            "--profile",
            "calm",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


@pytest.fixture(scope="module")
def big_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    block = bytes(range(251)) * 4096
    with path.open("wb") as handle:
        while handle.tell() < SIZE:
            handle.write(block[: SIZE - handle.tell()])
    return path


@pytest.fixture(scope="module")
def uploaded_id(mock_url: str, big_file: Path) -> str:
    async def upload() -> str:
        async with AsyncFilesClient(GLM, api_key="sk-mem", base_url=f"{mock_url}/glm/api/paas/v4") as glm:
            return (await glm.upload(big_file, purpose="batch")).file.id

    return asyncio.run(upload())


@pytest.mark.limit_memory("4 MB")
async def test_50mb_upload_under_4mb(mock_url: str, big_file: Path) -> None:
    async with AsyncFilesClient(GLM, api_key="sk-mem", base_url=f"{mock_url}/glm/api/paas/v4") as glm:
        result = await glm.upload(big_file, purpose="batch")
    assert result.size == SIZE


@pytest.mark.limit_memory("4 MB")
async def test_50mb_download_under_4mb(mock_url: str, uploaded_id: str, tmp_path: Path) -> None:
    async with AsyncFilesClient(GLM, api_key="sk-mem", base_url=f"{mock_url}/glm/api/paas/v4") as glm:
        path = await glm.download(uploaded_id, tmp_path, expected_size=SIZE)
    assert path.stat().st_size == SIZE
