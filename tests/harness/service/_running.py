"""The reference service as its users meet it: ``python -m harness.service`` in a child process."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mock_provider import MockProvider


@dataclass(frozen=True)
class Running:
    """A started service: its URL, the token it printed (or was given), its files."""

    url: str
    host: str
    port: int
    token: str
    workdir: Path
    log: Path

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def spooled(self) -> list[Path]:
        """Request bodies on disk now, and anything else but the slots and the registry's database."""
        bodies = [p for slot in (self.workdir / "bodies").iterdir() for p in slot.iterdir()]
        others = [
            p for p in self.workdir.iterdir() if p.name != "bodies" and not p.name.startswith("registry")
        ]
        return bodies + others

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def run_service(
    mock: MockProvider, tmp_path: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[Running]:
    """Start the service on a free port, read its start-up lines, stop it (SIGTERM) afterwards."""
    workdir = tmp_path / "spool"
    log = tmp_path / "service.log"
    args = [
        sys.executable, "-m", "harness.service", "--provider-url", mock.kimi_base_url,
        "--percent", "100", "--events", str(tmp_path / "events.jsonl"),
        "--ledger", str(tmp_path / "ledger.jsonl"), "--workdir", str(workdir), *extra,
    ]  # fmt: skip
    child_env = {k: v for k, v in os.environ.items() if k != "LLMFILES_SERVICE_TOKEN"}
    with log.open("w") as stderr:
        process = subprocess.Popen(
            args, stdout=subprocess.PIPE, stderr=stderr, text=True, env={**child_env, **(env or {})}
        )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://"), log.read_text()
        token = (env or {}).get("LLMFILES_SERVICE_TOKEN", "")
        if not token:
            line = process.stdout.readline().strip()
            assert line.startswith("token: "), line
            token = line.removeprefix("token: ")
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield Running(url, host, int(port), token, workdir, log)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
