"""The client's HTTP transport: large socket reads on a real connection, and the environment's proxies."""

import asyncio
import json
from pathlib import Path
from typing import Any

import httpcore
import pytest

from llmfiles import GLM
from llmfiles.transfer import AsyncFilesClient
from llmfiles.transfer._transport import READ_SIZE


async def test_a_download_asks_the_socket_for_large_reads(
    mock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every read of the connection asks for READ_SIZE bytes, not httpcore's 64 KiB."""
    asked: list[int] = []
    stream_class = httpcore.AnyIOBackend  # the streams it opens are what the reads reach
    real_connect = stream_class.connect_tcp

    async def recording_connect(self: httpcore.AnyIOBackend, *args: Any, **kwargs: Any) -> Any:
        stream = await real_connect(self, *args, **kwargs)
        real_read = stream.read

        async def read(max_bytes: int, timeout: float | None = None) -> bytes:
            asked.append(max_bytes)
            return await real_read(max_bytes, timeout)

        stream.read = read  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(stream_class, "connect_tcp", recording_connect)
    data = b'{"n": 1}\n' * 200_000
    source = tmp_path / "f.jsonl"
    source.write_bytes(data)
    async with AsyncFilesClient(GLM, api_key="sk-test", base_url=mock.glm_base_url) as client:
        uploaded = await client.upload(source, purpose="batch")
        asked.clear()
        landed = await client.download(uploaded.file.id, tmp_path, filename="back.jsonl")
    assert landed.read_bytes() == data
    assert len(asked) >= 2
    assert min(asked) == READ_SIZE > 64 * 1024


async def test_proxies_from_the_environment_still_carry_the_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    """httpx honours HTTP(S)_PROXY only without an explicit transport; ours is a mount, so it still does."""
    request_lines: list[bytes] = []
    listing = json.dumps({"object": "list", "data": []}).encode()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        request_lines.append(head.split(b"\r\n", 1)[0])
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(listing)}\r\n\r\n".encode()
            + listing
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
    try:
        async with AsyncFilesClient(
            GLM, api_key="sk-test", base_url="http://files.example.invalid/v4"
        ) as client:
            assert await client.list() == []
    finally:
        server.close()
        await server.wait_closed()
    assert len(request_lines) == 1
    assert request_lines[0].startswith(b"GET http://files.example.invalid/v4/files")
