"""``python -m mock_provider`` as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.mock_provider._helpers import cli_server


def test_cli_prints_its_url_serves_and_exits_cleanly_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    with cli_server("--profile", "calm", "--seed", "3", "--data-dir", str(data_dir)) as server:
        url = server.url
        response = httpx.post(
            f"{url}/kimi/v1/files",
            headers={"Authorization": "Bearer k"},
            data={"purpose": "file-extract"},
            files={"file": ("a.txt", b"abc")},
        )
        assert response.status_code == 200
        assert httpx.get(f"{url}/_chaos").json()["seed"] == 3
    # cli_server has checked the clean exit; a data dir that was given is kept.
    assert (data_dir / "files" / "kimi" / response.json()["id"]).read_bytes() == b"abc"


def test_cli_refuses_an_unknown_profile() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_provider", "--profile", "stormy"],
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "profile='stormy'" in result.stderr
    assert result.stdout == ""
