"""Servers the harness runs as child processes: the mock provider and the reference service.

Why processes and not `MockProvider`'s thread: a mock in our own process shares our GIL, so its request
parsing would show up as event-loop stalls and lost throughput of the client under test. A real provider
is another machine; another process on loopback is the closest honest stand-in.

Each server prints its base URL as the first line on stdout (the mock's CLI contract; the reference
service follows it), is stopped with SIGTERM, and killed if it does not exit in time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

__all__ = ["MockProcess", "ServerProcess", "ServerStartError"]

_START_TIMEOUT_S = 30.0
_STOP_TIMEOUT_S = 10.0


class ServerStartError(RuntimeError):
    """A child server exited or stayed silent instead of printing its URL; the message quotes its stderr."""


class ServerProcess:
    """A child process that serves HTTP on the URL it prints first.

    Args:
        args: the command after the Python interpreter, e.g. ``["-m", "mock_provider", "--port", "0"]``.
        log_path: where the child's stderr goes (kept for the post-mortem of a failed run).
        env: extra environment variables for the child.
    """

    def __init__(self, args: Sequence[str], *, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.args = [sys.executable, *args]
        self.log_path = log_path
        self._env = {**os.environ, **(env or {})}
        self._process: subprocess.Popen[str] | None = None
        self._drain: threading.Thread | None = None
        self.url = ""

    def start(self) -> Self:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("w") as log:
            self._process = subprocess.Popen(
                self.args,
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env=self._env,
                start_new_session=True,
            )
        first: list[str] = []
        reader = threading.Thread(target=lambda: first.append(self._stdout().readline()), daemon=True)
        reader.start()
        reader.join(_START_TIMEOUT_S)
        url = first[0].strip() if first else ""
        if not url.startswith("http"):
            self.stop()
            tail = self.log_path.read_text(errors="replace").strip().splitlines()[-3:]
            raise ServerStartError(f"args={self.args[1:]!r} did not print a URL; stderr: {' | '.join(tail)}")
        self.url = url.rstrip("/")
        # Drain stdout so a chatty child never blocks on a full pipe.
        self._drain = threading.Thread(target=self._stdout().read, daemon=True)
        self._drain.start()
        return self

    def _stdout(self) -> Any:
        assert self._process is not None
        return self._process.stdout

    def stop(self) -> None:
        """SIGTERM, wait, then SIGKILL: the child and anything it started (its own session)."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._drain is not None:
            self._drain.join(_STOP_TIMEOUT_S)  # the pipe is at EOF now that the child is gone
        if process.stdout is not None:
            process.stdout.close()

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for its memory figures), else None."""
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class MockProcess(ServerProcess):
    """`python -m mock_provider` in a child process, with the same control methods as `MockProvider`.

    Args:
        profile: chaos profile name or TOML file.
        seed: chaos seed.
        data_dir: where the mock keeps uploaded bytes.
        log_path: the mock's stderr.
        max_file_bytes: raise the per-file limit (the 1 GB memory case); None keeps the real limits.
    """

    def __init__(
        self,
        *,
        profile: str = "calm",
        seed: int = 0,
        data_dir: Path,
        log_path: Path,
        max_file_bytes: int | None = None,
    ) -> None:
        args = [
            "-m",
            "mock_provider",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--profile",
            profile,
            "--seed",
            str(seed),
            "--data-dir",
            str(data_dir),
        ]
        if max_file_bytes is not None:
            args += ["--max-file-bytes", str(max_file_bytes)]
        data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(args, log_path=log_path)

    @property
    def kimi_base_url(self) -> str:
        return f"{self.url}/kimi/v1"

    @property
    def glm_base_url(self) -> str:
        return f"{self.url}/glm/api/paas/v4"

    def _control(self, method: str, path: str, payload: Any = None) -> Any:
        response = httpx.request(method, f"{self.url}{path}", json=payload, timeout=60)
        if response.status_code != 200:
            raise RuntimeError(
                f"mock control {method} {path} answered {response.status_code}: {response.text[:200]}"
            )
        return response.json()

    def set_profile(self, name: str, seed: int | None = None) -> None:
        self._control("PUT", "/_chaos", {"profile": name, **({"seed": seed} if seed is not None else {})})

    def set_rules(self, rules: Sequence[dict[str, Any]], seed: int | None = None) -> None:
        self._control(
            "PUT", "/_chaos", {"rules": list(rules), **({"seed": seed} if seed is not None else {})}
        )

    def reset(self) -> None:
        self._control("POST", "/_reset")

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = self._control("GET", f"/_journal?since={since}")
        return entries

    def stats(self) -> dict[str, Any]:
        stats: dict[str, Any] = self._control("GET", "/_stats")
        return stats
