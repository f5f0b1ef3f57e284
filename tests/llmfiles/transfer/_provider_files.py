"""What the mock provider really holds, read from its data directory (never through the client)."""

import hashlib
import time
from pathlib import Path
from typing import Any

from llmfiles.providers import ProviderSpec


def stored_sha256(mock: Any, provider: ProviderSpec, file_id: str) -> str:
    """SHA-256 of the bytes the mock stored under `file_id`, from its data directory."""
    return hashlib.sha256((Path(mock.data_dir) / "files" / provider.name / file_id).read_bytes()).hexdigest()


def stored_ids(mock: Any, provider: ProviderSpec) -> set[str]:
    """Ids of the files the mock holds for `provider`, from its data directory."""
    directory = Path(mock.data_dir) / "files" / provider.name
    return {path.name for path in directory.iterdir()} if directory.exists() else set()


def mock_temp_files(mock: Any) -> list[str]:
    """Uploads the mock left half received in its ``tmp/`` directory."""
    return sorted(path.name for path in (Path(mock.data_dir) / "tmp").iterdir())


def settle_uploads(mock: Any, timeout: float = 10.0) -> list[dict[str, Any]]:
    """The journal's upload entries once no upload is still being received (blocking, up to `timeout`).

    The mock journals a request when it ends; a body still arriving (a slow rule) has a temp file.
    """
    deadline = time.monotonic() + timeout
    while mock_temp_files(mock) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [entry for entry in mock.journal() if entry["operation"] == "upload"]


class OffsetClock:
    """The mock's clock: real time plus `offset` seconds, so a test decides which second files land in."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset
