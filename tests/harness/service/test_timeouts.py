"""Slow clients are cut off: a late head or a stalled body is a 408, spools are bounded, one log line each."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from mock_provider import MockProvider
from tests.harness.service._running import Running, run_service

pytestmark = pytest.mark.integration


@pytest.fixture
def service(mock: MockProvider, tmp_path: Path) -> Iterator[Running]:
    options = ["--header-timeout", "1", "--body-timeout", "1", "--max-spools", "2", "--registry", "none"]
    with run_service(mock, tmp_path, *options) as running:
        yield running


def _connect(service: Running) -> socket.socket:
    return socket.create_connection((service.host, service.port), timeout=10)


def _answer(sock: socket.socket) -> tuple[int, dict[str, str]]:
    """Read until the service closes the connection; its status and JSON body."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _upload_head(service: Running, length: int) -> bytes:
    return (
        f"POST /upload?name=slow.bin HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {service.token}\r\n"
        f"Content-Length: {length}\r\n\r\n"
    ).encode()


def test_connections_that_never_finish_their_head_are_answered_408_and_closed(service: Running) -> None:
    sockets = [_connect(service) for _ in range(50)]
    for sock in sockets:
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
    answers = [_answer(sock) for sock in sockets]  # each returns only once the service closed it
    for sock in sockets:
        sock.close()
    assert {status for status, _ in answers} == {408}
    assert {body["error"] for _, body in answers} == {"RequestTimeout"}
    log = service.log_text()
    assert log.count("request aborted") == 50
    assert "Traceback" not in log


def test_a_stalled_body_is_answered_408_and_its_spool_removed(service: Running) -> None:
    with _connect(service) as sock:
        sock.sendall(_upload_head(service, 1000) + b"x" * 10)
        status, body = _answer(sock)
    assert status == 408
    assert body["error"] == "RequestTimeout"
    assert service.spooled() == []
    log = service.log_text()
    assert log.count("request aborted") == 1
    assert "Traceback" not in log


def test_a_client_that_hangs_up_mid_body_leaves_one_log_line_and_no_spool(service: Running) -> None:
    with _connect(service) as sock:
        sock.sendall(_upload_head(service, 100_000) + b"x" * 5000)
        time.sleep(0.3)  # let the service start reading the body
    deadline = time.monotonic() + 10
    while "request aborted" not in service.log_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = service.log_text()
    assert log.count("request aborted") == 1
    assert "client disconnected" in log
    assert "Traceback" not in log
    assert service.spooled() == []


def test_no_more_bodies_are_spooled_at_once_than_max_spools(service: Running) -> None:
    stop = threading.Event()
    holders = [_connect(service) for _ in range(2)]

    def trickle(sock: socket.socket) -> None:
        # A byte every 0.3 s: within the body timeout, so each holds its spool slot.
        sock.sendall(_upload_head(service, 1_000_000) + b"x")
        while not stop.wait(0.3):
            sock.sendall(b"x")

    threads = [threading.Thread(target=trickle, args=(sock,)) for sock in holders]
    for thread in threads:
        thread.start()
    try:
        time.sleep(0.5)
        third = httpx.post(f"{service.url}/upload", headers=service.auth, content=b"y" * 10, timeout=10)
        assert third.status_code == 503
        assert third.json()["error"] == "ServiceBusy"
        assert third.headers["retry-after"] == "1"
    finally:
        stop.set()
        for thread in threads:
            thread.join()
        for sock in holders:
            sock.close()
    after = httpx.post(f"{service.url}/upload", headers=service.auth, content=b"z" * 10, timeout=10)
    assert after.status_code == 200
