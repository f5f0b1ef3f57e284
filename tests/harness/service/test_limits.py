"""Bodies capped by Content-Length before reading and by bytes while streaming; empty bodies are 400."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmfiles.providers import KIMI
from mock_provider import MockProvider
from tests.harness.service._running import Running, run_service

pytestmark = pytest.mark.integration

_LIMIT = KIMI.limit_for("file-extract").max_bytes


@pytest.fixture
def service(mock: MockProvider, tmp_path: Path) -> Iterator[Running]:
    with run_service(mock, tmp_path, "--registry", "none") as running:
        yield running


def _raw(service: Running, head: bytes) -> tuple[int, dict[str, str]]:
    """Send a request head alone (no body) and read the answer: its status and JSON body."""
    with socket.create_connection((service.host, service.port), timeout=10) as sock:
        sock.sendall(head)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head_part, _, body = data.partition(b"\r\n\r\n")
    return int(head_part.split()[1]), json.loads(body)


def test_a_declared_110_mb_body_is_refused_before_a_byte_is_read(service: Running) -> None:
    head = (
        f"POST /upload?name=big.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.token}\r\n"
        f"Content-Length: {110 * 1024 * 1024}\r\n\r\n"
    ).encode()
    status, body = _raw(service, head)  # no body sent: an answer at all proves nothing was awaited
    assert status == 413
    assert body["error"] == "FileTooLargeError"
    assert str(_LIMIT) in body["message"]
    assert str(service.workdir) not in body["message"]
    assert service.spooled() == []


@pytest.mark.slow
def test_a_streamed_body_is_cut_off_at_the_providers_limit(service: Running) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        block = b"\0" * (1024 * 1024)
        while sent < _LIMIT + 8 * len(block):
            sent += len(block)
            yield block

    with httpx.Client(base_url=service.url, headers=service.auth, timeout=60) as client:
        try:
            answer = client.post("/upload?name=big.bin", content=chunks())  # chunked: no Content-Length
        except httpx.TransportError:
            pytest.fail("the service hung up instead of answering 413")
    assert answer.status_code == 413
    assert answer.json()["error"] == "FileTooLargeError"
    assert str(service.workdir) not in answer.json()["message"]
    assert service.spooled() == []
    # Cut off while streaming (one log line), not read to the end and refused by the upload afterwards.
    log = service.log_text()
    assert log.count("request aborted") == 1
    assert "FileTooLargeError" in log


def test_an_empty_body_is_a_400_that_names_the_problem(service: Running, mock: MockProvider) -> None:
    with httpx.Client(base_url=service.url, headers=service.auth, timeout=10) as client:
        for body in (b"", iter([b""])):  # declared empty, and chunked with nothing in it
            answer = client.post("/upload?name=empty.txt", content=body)
            assert answer.status_code == 400
            assert answer.json()["error"] == "ConfigError"
            assert "empty" in answer.json()["message"]
    assert [e for e in mock.journal() if e["operation"] == "upload"] == []
    assert service.spooled() == []
