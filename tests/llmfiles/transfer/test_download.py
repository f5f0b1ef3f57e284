"""Download resume decisions against a scripted transport (httpx.MockTransport: no sockets)."""

import hashlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from llmfiles import GLM, IntegrityError, TransferIncompleteError
from llmfiles.transfer import AsyncFilesClient, TransferSettings, _writer

BASE = "https://glm.test/api/paas/v4"
DATA = bytes(range(256)) * 40


class Broken(httpx.AsyncByteStream):
    """Sends `data`, then breaks the connection, as a reset mid-body does."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._data
        raise httpx.ReadError("connection reset by peer")


Script = list[Callable[[httpx.Request], httpx.Response]]


LISTING = {
    "object": "list",
    "data": [
        {"id": "file-1", "bytes": len(DATA), "created_at": 1, "filename": "d.bin", "purpose": "batch"},
    ],
    "has_more": False,
}


def scripted(script: Script, seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/files"):  # metadata, asked after a hash mismatch: not scripted
            return httpx.Response(200, json=LISTING)
        seen.append(request)
        return script[len(seen) - 1](request)

    return httpx.MockTransport(handle)


def broken_after(n: int) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(200, headers={"Content-Length": str(len(DATA))}, stream=Broken(DATA[:n]))


def whole(_request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, content=DATA, headers={"Content-Disposition": 'attachment; filename="d.bin"'})


def partial_from(start: int) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(
        206, content=DATA[start:], headers={"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"}
    )


async def run(
    script: Script, dest: Path, settings: Callable[..., TransferSettings], **kwargs: object
) -> tuple[Path, list[httpx.Request]]:
    seen: list[httpx.Request] = []
    async with AsyncFilesClient(
        GLM, api_key="sk", base_url=BASE, settings=settings(), transport=scripted(script, seen)
    ) as client:
        path = await client.download("file-1", dest, filename="d.bin", **kwargs)  # type: ignore[arg-type]
    return path, seen


async def test_resume_asks_for_the_rest(dest: Path, settings: Callable[..., TransferSettings]) -> None:
    path, seen = await run([broken_after(3000), partial_from(3000)], dest, settings)
    assert path.read_bytes() == DATA
    assert "Range" not in seen[0].headers
    assert seen[1].headers["Range"] == "bytes=3000-"
    assert seen[1].headers["Accept-Encoding"] == "identity"


async def test_a_server_ignoring_range_restarts_cleanly(
    dest: Path, settings: Callable[..., TransferSettings]
) -> None:
    path, seen = await run([broken_after(3000), whole], dest, settings)
    assert path.read_bytes() == DATA
    assert len(seen) == 2


async def test_a_wrong_content_range_is_not_spliced(
    dest: Path, settings: Callable[..., TransferSettings]
) -> None:
    path, seen = await run([broken_after(3000), partial_from(1000), whole], dest, settings)
    assert path.read_bytes() == DATA
    assert "Range" not in seen[2].headers


async def test_416_on_resume_starts_over(dest: Path, settings: Callable[..., TransferSettings]) -> None:
    path, seen = await run([broken_after(3000), lambda _r: httpx.Response(416), whole], dest, settings)
    assert path.read_bytes() == DATA
    assert "Range" not in seen[2].headers


def broken_range(start: int, stop: int) -> Callable[[httpx.Request], httpx.Response]:
    return lambda _r: httpx.Response(
        206,
        headers={"Content-Range": f"bytes {start}-{len(DATA) - 1}/{len(DATA)}"},
        stream=Broken(DATA[start:stop]),
    )


async def test_keeps_breaking_is_incomplete_and_leaves_nothing(
    dest: Path, settings: Callable[..., TransferSettings]
) -> None:
    script = [
        broken_after(1000),
        broken_range(1000, 2000),
        broken_range(2000, 2500),
        broken_range(2500, 2500),
    ]
    with pytest.raises(TransferIncompleteError, match="stopped at 2500 of 10240 bytes"):
        await run(script, dest, settings)
    assert list(dest.iterdir()) == []


async def test_a_corrupt_body_is_retried_then_reported(
    dest: Path, settings: Callable[..., TransferSettings]
) -> None:
    bad: Callable[[httpx.Request], httpx.Response] = lambda _r: httpx.Response(200, content=b"x" * len(DATA))  # noqa: E731
    path, seen = await run([bad, whole], dest, settings, expected_sha256=hashlib.sha256(DATA).hexdigest())
    assert path.read_bytes() == DATA
    assert len(seen) == 2
    with pytest.raises(IntegrityError, match="differs from expected_sha256"):
        await run([bad] * 4, dest, settings, expected_sha256="ab" * 32)
    assert [p.name for p in dest.iterdir()] == ["d.bin"]


async def test_only_a_download_with_a_hash_to_check_hashes_its_bytes(
    dest: Path, settings: Callable[..., TransferSettings], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing reads the digest of an unchecked download, so none is computed."""

    hashed: list[int] = []
    real_sha256 = hashlib.sha256

    class Counting:
        def __init__(self) -> None:
            self._inner = real_sha256()

        def update(self, data: memoryview) -> None:
            hashed.append(len(data))
            self._inner.update(data)

        def hexdigest(self) -> str:
            return self._inner.hexdigest()

    monkeypatch.setattr(_writer.hashlib, "sha256", Counting)
    path, _ = await run([whole], dest, settings, overwrite=True)
    assert path.read_bytes() == DATA
    assert hashed == []
    expected = real_sha256(DATA).hexdigest()
    path, _ = await run([whole], dest, settings, overwrite=True, expected_sha256=expected)
    assert path.read_bytes() == DATA
    assert sum(hashed) == len(DATA)
