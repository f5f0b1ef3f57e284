import asyncio
import hashlib
import io
import os
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any, cast

import pytest
from python_multipart import parse_form

from llmfiles import ConfigError, IntegrityError
from llmfiles.transfer._multipart import MultipartFileBody


async def collect(body: MultipartFileBody) -> bytes:
    return b"".join([chunk async for chunk in body])


def parse(body: MultipartFileBody, raw: bytes) -> tuple[dict[str, bytes], dict[str, tuple[bytes, bytes]]]:
    fields: dict[str, bytes] = {}
    files: dict[str, tuple[bytes, bytes]] = {}

    def on_field(field: Any) -> None:
        fields[field.field_name.decode()] = field.value

    def on_file(file: Any) -> None:
        file.file_object.seek(0)
        files[file.field_name.decode()] = (file.file_name, file.file_object.read())

    parse_form({"Content-Type": body.headers["Content-Type"].encode()}, io.BytesIO(raw), on_field, on_file)
    return fields, files


def make_body(path: Path, **overrides: Any) -> MultipartFileBody:
    options: dict[str, Any] = {
        "filename": path.name,
        "size": path.stat().st_size,
        "fields": {"purpose": "file-extract"},
        "chunk_size": 4096,
    }
    options.update(overrides)
    return MultipartFileBody(path, **options)


async def test_body_parses_back_with_a_real_multipart_parser(tmp_path: Path) -> None:
    data = bytes(range(256)) * 100 + b"\r\n--not-a-boundary\r\n"
    path = tmp_path / "data.bin"
    path.write_bytes(data)
    body = make_body(path)
    raw = await collect(body)
    fields, files = parse(body, raw)
    assert fields == {"purpose": b"file-extract"}
    assert files == {"file": (b"data.bin", data)}


async def test_content_length_is_exact_and_sha256_matches(tmp_path: Path) -> None:
    data = b"x" * 10_001
    path = tmp_path / "a.txt"
    path.write_bytes(data)
    body = make_body(path)
    assert body.sha256 is None
    raw = await collect(body)
    assert int(body.headers["Content-Length"]) == len(raw) == body.content_length
    assert body.sha256 == hashlib.sha256(data).hexdigest()


async def test_body_is_reiterable_for_retries(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"abc" * 5000)
    body = make_body(path)
    assert await collect(body) == await collect(body)


async def test_chunks_respect_chunk_size_and_report_progress(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"z" * 10_000)
    seen: list[tuple[int, int | None]] = []
    body = make_body(path, progress=lambda done, total: seen.append((done, total)))
    chunks = [chunk async for chunk in body]
    assert max(len(chunk) for chunk in chunks[1:-1]) == 4096
    assert seen == [(4096, 10_000), (8192, 10_000), (10_000, 10_000)]


async def test_quotes_and_newlines_in_filename_cannot_break_the_header(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"1")
    body = make_body(path, filename='x".txt\r\nX-Evil: 1')
    raw = await collect(body)
    _, files = parse(body, raw)
    assert files["file"] == (b"x%22.txt%0D%0AX-Evil: 1", b"1")


@pytest.mark.parametrize(
    ("declared", "message"),
    [pytest.param(10, "shrank to 4 bytes", id="shrank"), pytest.param(2, "grew beyond 2 bytes", id="grew")],
)
async def test_file_whose_size_changed_is_an_integrity_error(
    tmp_path: Path, declared: int, message: str
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"1234")
    body = make_body(path, size=declared)
    with pytest.raises(IntegrityError, match=message):
        await collect(body)


async def test_vanished_file_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"1234")
    body = make_body(path)
    path.unlink()
    with pytest.raises(ConfigError, match="cannot be read"):
        await collect(body)


async def test_a_chunk_costs_one_worker_step_opening_and_grow_check_included(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"z" * 10_000)
    loop = asyncio.get_running_loop()
    steps: list[object] = []
    real = loop.run_in_executor

    def counting(executor: Any, func: Any, *args: Any) -> Any:  # a spy: every hop to a worker thread
        steps.append(func)
        return real(executor, func, *args)

    monkeypatch.setattr(loop, "run_in_executor", counting)
    body = make_body(path)
    raw = await collect(body)
    assert len(steps) == 3  # 4096 + 4096 + 1808: no separate open, no separate one-byte read at the end
    assert body.sha256 == hashlib.sha256(b"z" * 10_000).hexdigest()
    assert parse(body, raw)[1]["file"][1] == b"z" * 10_000


def _open_fds_to(path: Path) -> int:
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")
async def test_an_abandoned_pass_closes_its_file(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"z" * 10_000)
    body = make_body(path)
    passes = cast(AsyncGenerator[bytes, None], aiter(body))
    await anext(passes)  # the head
    await anext(passes)  # the first chunk: the file is open now
    assert _open_fds_to(path) == 1
    await passes.aclose()  # what httpx does when the send is abandoned
    assert _open_fds_to(path) == 0
    assert body.sha256 is None
