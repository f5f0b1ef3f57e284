"""Download guarantees: temp file then rename (also with filename=), data on disk before the name, the
single-flight key, extracted text named as such, expected_sha256 checked before it can waste a download."""

import asyncio
import hashlib
import os
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmfiles import GLM, KIMI, ConfigError, IntegrityError
from llmfiles.providers import ProviderSpec
from llmfiles.transfer import AsyncFilesClient, TransferSettings

SIZE = 300_000


def client_for(
    provider: ProviderSpec, mock: Any, settings: Callable[..., TransferSettings]
) -> AsyncFilesClient:
    base_url = mock.kimi_base_url if provider is KIMI else mock.glm_base_url
    return AsyncFilesClient(provider, api_key="sk-test", base_url=base_url, settings=settings())


@pytest.fixture
async def glm(mock: Any, settings: Callable[..., TransferSettings]) -> AsyncIterator[AsyncFilesClient]:
    async with client_for(GLM, mock, settings) as opened:
        yield opened


@pytest.fixture
async def kimi(mock: Any, settings: Callable[..., TransferSettings]) -> AsyncIterator[AsyncFilesClient]:
    async with client_for(KIMI, mock, settings) as opened:
        yield opened


@pytest.fixture
async def stored(glm: AsyncFilesClient, pattern_file: Callable[[str, int], Path]) -> tuple[str, bytes]:
    source = pattern_file("doc.jsonl", SIZE)
    return (await glm.upload(source, purpose="batch")).file.id, source.read_bytes()


def content_requests(mock: Any) -> int:
    return sum(1 for entry in mock.journal() if entry["operation"] == "content")


@pytest.mark.integration
async def test_with_filename_the_bytes_go_to_a_temp_file_first(
    glm: AsyncFilesClient, stored: tuple[str, bytes], dest: Path
) -> None:
    file_id, data = stored
    seen: list[tuple[bool, list[str]]] = []

    def progress(_done: int, _total: int | None) -> None:  # called after every chunk is written
        seen.append(((dest / "chosen.jsonl").exists(), [p.name for p in dest.iterdir()]))

    path = await glm.download(file_id, dest, filename="chosen.jsonl", progress=progress)
    assert path == dest / "chosen.jsonl"
    assert path.read_bytes() == data
    assert seen, "no progress reported"
    assert not any(final_exists for final_exists, _ in seen), "the final name appeared before the end"
    assert all(len(names) == 1 and names[0].endswith(".part") for _, names in seen)
    assert os.listdir(dest) == ["chosen.jsonl"]


@pytest.mark.integration
async def test_the_data_is_fsynced_before_the_file_gets_its_name(
    glm: AsyncFilesClient, stored: tuple[str, bytes], dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file layer that records every fsync: the temp file's data must reach the disk before the rename."""
    file_id, _ = stored
    synced: list[tuple[str, bool]] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        target = os.readlink(f"/proc/self/fd/{fd}")
        synced.append((target, (dest / "doc.jsonl").exists()))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    path = await glm.download(file_id, dest)
    files = [(target, named) for target, named in synced if target.endswith(".part")]
    assert files == [(files[0][0], False)], synced  # the temp file, once, before the name existed
    assert (str(dest), True) in synced  # then the directory, so the new name itself is durable
    assert path == dest / "doc.jsonl"


@pytest.mark.integration
async def test_cancelled_while_the_temp_file_is_created_leaves_nothing(
    glm: AsyncFilesClient, stored: tuple[str, bytes], dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file layer whose create blocks until released: the caller leaves first, the file comes later."""
    file_id, _ = stored
    entered, release = threading.Event(), threading.Event()
    real_open = os.open

    def slow_open(path: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
        if str(path).endswith(".part"):
            entered.set()
            release.wait(10)
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", slow_open)
    task = asyncio.create_task(glm.download(file_id, dest))
    assert await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    release.set()
    for _ in range(200):  # the worker's open ends after the caller left; its clean-up follows
        await asyncio.sleep(0.01)
        if not os.listdir(dest):
            break
    assert os.listdir(dest) == []


@pytest.mark.integration
async def test_same_file_into_two_directories_fills_both(
    glm: AsyncFilesClient, stored: tuple[str, bytes], tmp_path: Path
) -> None:
    file_id, data = stored
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    paths = await asyncio.gather(glm.download(file_id, a), glm.download(file_id, b))
    assert paths == [a / "doc.jsonl", b / "doc.jsonl"]
    assert (a / "doc.jsonl").read_bytes() == (b / "doc.jsonl").read_bytes() == data


@pytest.mark.integration
async def test_callers_with_other_options_are_not_given_another_callers_result(
    mock: Any, glm: AsyncFilesClient, stored: tuple[str, bytes], dest: Path
) -> None:
    file_id, data = stored
    good = hashlib.sha256(data).hexdigest()
    outcomes = await asyncio.gather(
        glm.download(file_id, dest, filename="one.jsonl"),
        glm.download(file_id, dest, filename="two.jsonl"),
        glm.download(file_id, dest, filename="checked.jsonl", expected_sha256=good.upper()),
        glm.download(file_id, dest, filename="wrong.jsonl", expected_sha256="0" * 64),
        return_exceptions=True,
    )
    assert outcomes[:3] == [dest / "one.jsonl", dest / "two.jsonl", dest / "checked.jsonl"]
    assert isinstance(outcomes[3], IntegrityError)
    assert sorted(os.listdir(dest)) == ["checked.jsonl", "one.jsonl", "two.jsonl"]


@pytest.mark.integration
async def test_kimi_extracted_text_is_named_as_such_and_an_original_hash_is_refused(
    mock: Any, kimi: AsyncFilesClient, pattern_file: Callable[[str, int], Path], dest: Path
) -> None:
    source = pattern_file("report.pdf", 5000)
    uploaded = await kimi.upload(source, purpose="file-extract")
    path = await kimi.download(uploaded.file.id, dest)
    assert path == dest / "report.pdf.extracted.json"
    before = content_requests(mock)
    with pytest.raises(ConfigError, match="extracted text, not the uploaded bytes") as caught:
        await kimi.download(uploaded.file.id, dest, expected_sha256=uploaded.sha256)
    assert "purpose='file-extract'" in str(caught.value)
    assert content_requests(mock) - before == 1  # refused after the first mismatch, not retried
    assert os.listdir(dest) == ["report.pdf.extracted.json"]


@pytest.mark.integration
@pytest.mark.parametrize("bad", ["abc", "g" * 64, "0" * 63, "0" * 65, " " + "0" * 63])
async def test_a_malformed_expected_sha256_is_refused_before_any_request(
    mock: Any, glm: AsyncFilesClient, dest: Path, bad: str
) -> None:
    with pytest.raises(ConfigError, match="64 hex digits"):
        await glm.download("file-anything", dest, expected_sha256=bad)
    assert mock.journal() == []
    assert os.listdir(dest) == []


async def test_a_body_shorter_than_its_content_length_is_never_kept(
    dest: Path, settings: Callable[..., TransferSettings]
) -> None:
    """The server ends the answer cleanly after half the declared bytes (a proxy that lost the rest)."""
    data = bytes(range(256)) * 40
    calls: list[httpx.Request] = []

    def short(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, headers={"Content-Length": str(len(data))}, content=data[: len(data) // 2])

    transport = httpx.MockTransport(short)
    async with AsyncFilesClient(
        GLM, api_key="sk", base_url="https://glm.test/api/paas/v4", settings=settings(), transport=transport
    ) as client:
        with pytest.raises(IntegrityError, match="Content-Length said"):
            await client.download("file-1", dest, filename="d.bin")
    assert len(calls) == 4  # retried like a broken transfer, then reported
    assert os.listdir(dest) == []
