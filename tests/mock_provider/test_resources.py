"""The mock must not be the bottleneck: its memory stays flat however big or many the uploads."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx
import psutil
import pytest

from tests.mock_provider._helpers import KEY, cli_server

MB = 1024 * 1024


@pytest.mark.slow
def test_rss_stays_under_100_mb_while_receiving_ten_50_mb_uploads(tmp_path: Path) -> None:
    source = tmp_path / "fifty.jsonl"
    with source.open("wb") as handle:
        handle.truncate(50 * MB)
    statuses: list[int] = []

    with cli_server() as server:
        process = psutil.Process(server.pid)
        peak = process.memory_info().rss
        done = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.wait(0.005):
                peak = max(peak, process.memory_info().rss)

        def send() -> None:
            with source.open("rb") as body:  # a file object: httpx streams it instead of loading it
                response = httpx.post(
                    f"{server.url}/glm/api/paas/v4/files",
                    headers=KEY,
                    data={"purpose": "batch"},
                    files={"file": ("fifty.jsonl", body)},
                    timeout=120,
                )
            statuses.append(response.status_code)

        sampler = threading.Thread(target=sample)
        senders = [threading.Thread(target=send) for _ in range(10)]
        sampler.start()
        for thread in senders:
            thread.start()
        for thread in senders:
            thread.join()
        done.set()
        sampler.join()
        stored = httpx.get(f"{server.url}/_stats").json()["stored_bytes"]["glm"]

    assert statuses == [200] * 10
    assert stored == 10 * 50 * MB
    assert peak < 100 * MB, f"peak RSS {peak / MB:.1f} MiB"
