"""Helpers for the mock provider tests: a key, an upload, polling, the CLI as a subprocess."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

import httpx

KEY = {"Authorization": "Bearer sk-test"}

T = TypeVar("T")


def wait_for(probe: Callable[[], T], timeout: float = 5.0) -> T:
    """Poll `probe` until it returns something truthy: for effects the server records asynchronously."""
    deadline = time.monotonic() + timeout
    while not (result := probe()):
        if time.monotonic() > deadline:
            raise AssertionError(f"still falsy after {timeout} s: {result!r}")
        time.sleep(0.02)
    return result


def upload(
    http: httpx.Client, base: str, data: bytes, purpose: str = "file-extract", name: str = "a.txt"
) -> httpx.Response:
    """POST a multipart upload the way the SDKs do (purpose field first, then the file)."""
    return http.post(f"{base}/files", data={"purpose": purpose}, files={"file": (name, data)})


@dataclass(frozen=True)
class CliServer:
    url: str
    pid: int


@contextmanager
def cli_server(*args: str) -> Iterator[CliServer]:
    """``python -m mock_provider`` in its own process (own GIL, so its timers are not delayed by the
    test's client); yields its URL and pid, stops it with SIGTERM and checks it exits cleanly."""
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_provider", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        yield CliServer(url, process.pid)
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=10)
    assert process.returncode == 0, stderr
