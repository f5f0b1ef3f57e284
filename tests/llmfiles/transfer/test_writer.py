"""The download's file side: batches, short writes, restarts, and a close that never races a write."""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from pathlib import Path

import pytest

from llmfiles.transfer._writer import BatchWriter


def _open(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The length of every ``os.pwrite`` the writer makes, in order (the writes still happen)."""
    lengths: list[int] = []
    real_pwrite = os.pwrite

    def counting_pwrite(fd: int, data: memoryview, offset: int) -> int:
        lengths.append(len(data))
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", counting_pwrite)
    return lengths


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


async def test_bytes_reach_the_file_in_order_and_hashed(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    writer = BatchWriter(_open(path), batch_size=10_000, hashed=True)
    chunks = [bytes([i]) * (3_000 + i) for i in range(20)]
    for chunk in chunks:
        await writer.write(chunk)
    await writer.finish(lambda: None)
    data = b"".join(chunks)
    assert path.read_bytes() == data
    assert writer.received == len(data)
    assert writer.hasher is not None
    assert writer.hasher.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_a_chunk_larger_than_the_batch_is_split_across_batches(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    writer = BatchWriter(_open(path), batch_size=4096, hashed=True)
    data = os.urandom(3 * 4096 + 100)
    await writer.write(data[:50])
    await writer.write(data[50:])
    await writer.finish(lambda: None)
    assert path.read_bytes() == data
    assert writer.hasher is not None
    assert writer.hasher.hexdigest() == hashlib.sha256(data).hexdigest()


async def test_an_announced_small_body_gets_a_small_batch(tmp_path: Path, writes: list[int]) -> None:
    """A 10 KB file must not hold a 1 MiB buffer; a body longer than announced still arrives whole."""
    path = tmp_path / "out.bin"
    writer = BatchWriter(_open(path), batch_size=1024 * 1024, hashed=True)
    writer.expect(10_000)
    data = os.urandom(25_000)
    for start in range(0, len(data), 1000):
        await writer.write(data[start : start + 1000])
    await writer.finish(lambda: None)
    assert writes == [10_000, 10_000, 5_000]
    assert path.read_bytes() == data


async def test_batches_wait_until_full(tmp_path: Path, writes: list[int]) -> None:
    """One worker step per batch, not per chunk: that is the whole point of the writer."""
    path = tmp_path / "out.bin"
    writer = BatchWriter(_open(path), batch_size=64 * 1024, hashed=True)
    for _ in range(40):
        await writer.write(b"x" * 4096)
    await writer.finish(lambda: None)
    assert writes == [64 * 1024, 64 * 1024, 32 * 1024]
    assert path.stat().st_size == 40 * 4096


async def test_short_writes_are_completed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file layer that writes at most 1,000 bytes per call: nothing may be lost or reordered."""
    path = tmp_path / "out.bin"
    real_pwrite = os.pwrite
    monkeypatch.setattr(os, "pwrite", lambda fd, data, offset: real_pwrite(fd, data[:1000], offset))
    writer = BatchWriter(_open(path), batch_size=8192, hashed=True)
    data = os.urandom(50_000)
    for start in range(0, len(data), 4096):
        await writer.write(data[start : start + 4096])
    await writer.finish(lambda: None)
    assert path.read_bytes() == data


async def test_restart_drops_written_and_waiting_bytes(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    writer = BatchWriter(_open(path), batch_size=1000, hashed=True)
    await writer.write(b"a" * 1500)  # written
    await writer.write(b"b" * 200)  # waiting in the batch
    await writer.restart()
    assert writer.received == 0
    await writer.write(b"fresh")
    await writer.finish(lambda: None)
    assert path.read_bytes() == b"fresh"
    assert writer.hasher is not None
    assert writer.hasher.hexdigest() == hashlib.sha256(b"fresh").hexdigest()


async def test_close_waits_for_a_running_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelled mid-write: the descriptor stays open until the worker's write ends, then closes."""
    path = tmp_path / "out.bin"
    entered, release = threading.Event(), threading.Event()
    real_pwrite = os.pwrite

    def slow_pwrite(fd: int, data: memoryview, offset: int) -> int:
        entered.set()
        release.wait(10)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", slow_pwrite)
    fd = _open(path)
    writer = BatchWriter(fd, batch_size=10, hashed=True)
    task = asyncio.create_task(writer.write(b"x" * 10))  # fills the batch: its write starts
    await asyncio.to_thread(entered.wait, 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    writer.close(asyncio.get_running_loop())
    assert _is_open(fd), "closed under a running write"
    release.set()
    for _ in range(200):
        if not _is_open(fd):
            break
        await asyncio.sleep(0.01)
    assert not _is_open(fd)
    assert path.read_bytes() == b"x" * 10


async def test_finish_writes_syncs_and_closes_the_file_before_the_rename_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "out.bin"
    fd = _open(path)
    synced: list[int] = []
    real_fsync = os.fsync

    def recording_fsync(descriptor: int) -> None:
        synced.append(descriptor)
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    writer = BatchWriter(fd, batch_size=1000, hashed=True)
    await writer.write(b"a" * 1500)
    await writer.write(b"b" * 300)  # still waiting in the batch when finish starts

    def rename() -> tuple[bytes, bool, list[int]]:
        return path.read_bytes(), _is_open(fd), list(synced)

    content, still_open, synced_before = await writer.finish(rename)
    assert content == b"a" * 1500 + b"b" * 300
    assert not still_open
    assert synced_before == [fd]


async def test_an_unhashed_writer_writes_the_same_bytes_and_keeps_no_hash(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    writer = BatchWriter(_open(path), batch_size=4096, hashed=False)
    data = os.urandom(10_000)
    await writer.write(data)
    await writer.restart()
    await writer.write(data)
    await writer.finish(lambda: None)
    assert path.read_bytes() == data
    assert writer.hasher is None


async def test_a_write_after_close_is_refused(tmp_path: Path) -> None:
    writer = BatchWriter(_open(tmp_path / "out.bin"), batch_size=10, hashed=True)
    writer.close(asyncio.get_running_loop())
    with pytest.raises(ValueError, match="abandoned"):
        await writer.write(b"x" * 100)
