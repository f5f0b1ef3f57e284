"""The reference service's settings, validated once when the process starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from llmfiles import ConfigError

__all__ = ["ServiceConfig"]


@dataclass(frozen=True, slots=True)
class ServiceConfig:
    """How the reference upload service is wired.

    Args:
        provider_url: the provider's API root (the mock's ``kimi_base_url``).
        percent: share of users routed to the async arm (the rollout stage), 0-100.
        stage: the stage name stamped on events (``"10%"``).
        events_path: the JSONL event log the gates read after a load run.
        ledger_path: one JSON line per upload the service answered as done (file id and SHA-256): what
            the nothing-lost check compares with the provider's journal.
        workdir: where request bodies are spooled before upload.
        legacy_in_thread: False runs the legacy arm on the event loop, as the old service did.
        delete_after: delete each provider file once the caller has its answer, as a service that hands
            files to a model and cleans up would; keeps long load runs under the account's file count.
        api_key: the provider key; never logged.
        purpose: the provider purpose of every upload.
    """

    provider_url: str
    percent: float
    stage: str
    events_path: Path
    ledger_path: Path
    workdir: Path
    legacy_in_thread: bool = False
    delete_after: bool = False
    api_key: str = "service-key"
    purpose: str = "file-extract"

    def __post_init__(self) -> None:
        if not 0 <= self.percent <= 100:
            raise ConfigError(f"percent={self.percent!r} must be within [0, 100]")
        if not self.provider_url.startswith(("http://", "https://")):
            raise ConfigError(f"provider_url={self.provider_url!r} must be an http(s) URL")
