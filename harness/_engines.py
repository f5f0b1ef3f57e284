"""Throwaway PostgreSQL and Prometheus servers on loopback, for the fleet run and the tests.

Both are the real engines from the machine's packages (Debian's ``postgresql`` and ``prometheus``), each
started on a free port with its data in a temporary directory, and removed on exit. PostgreSQL runs with
durability off (the cluster lives for one run) and as the ``postgres`` user when we are root, because the
server refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

__all__ = [
    "POSTGRES_INSTALL_HINT",
    "PROMETHEUS_INSTALL_HINT",
    "EngineError",
    "ThrowawayPostgres",
    "ThrowawayPrometheus",
    "free_port",
    "postgres_bindir",
    "prometheus_binary",
]

POSTGRES_INSTALL_HINT = "apt-get update && apt-get install -y postgresql"
PROMETHEUS_INSTALL_HINT = "apt-get update && apt-get install -y prometheus"
_PG_BIN_GLOB = "/usr/lib/postgresql/*/bin"


class EngineError(RuntimeError):
    """An engine would not start or stop; the message quotes what it printed."""


def free_port() -> int:
    """A port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def postgres_bindir() -> Path | None:
    """The newest PostgreSQL server's binaries on this machine, or None."""

    def version(path: str) -> int:
        name = Path(path).parent.name
        return int(name) if name.isdigit() else 0

    for bindir in sorted(glob.glob(_PG_BIN_GLOB), key=version, reverse=True):
        if all(os.access(Path(bindir) / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres", "psql")):
            return Path(bindir)
    return None


def prometheus_binary() -> Path | None:
    """The Prometheus server binary on this machine, or None."""
    found = shutil.which("prometheus")
    return Path(found) if found else None


def _run(argv: Sequence[str], *, stdin: str | None = None) -> str:
    result = subprocess.run(list(argv), input=stdin, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise EngineError(f"{' '.join(argv)} exited {result.returncode}:\n{result.stdout}{result.stderr}")
    return result.stdout.strip()


class ThrowawayPostgres:
    """A PostgreSQL cluster for one run: ``with ThrowawayPostgres() as pg: pg.dsn()``.

    Args:
        bindir: the server's binaries; the newest installed when None.
    """

    def __init__(self, bindir: Path | None = None) -> None:
        found = bindir if bindir is not None else postgres_bindir()
        if found is None:
            raise EngineError(
                f"no PostgreSQL server binaries under {_PG_BIN_GLOB}; `{POSTGRES_INSTALL_HINT}`"
            )
        self.bindir = found
        self.port = 0
        self._root: Path | None = None
        self._run_as: list[str] = []

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def psql(self, sql: str) -> str:
        """Run `sql` with psql (stops at the first error); its unaligned output."""
        argv = [str(self.bindir / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", self.dsn()]
        return _run(argv, stdin=sql)

    def start(self) -> Self:
        self._root = Path(tempfile.mkdtemp(prefix="llmfiles-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self._root, user="postgres")
            self._run_as = ["runuser", "-u", "postgres", "--"]
        self.port = free_port()
        options = (
            f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        data = self._root / "data"
        initdb = [str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8"]
        _run([*self._run_as, *initdb, "--no-sync"])
        _run([*self._pg_ctl(), "-l", str(self._root / "server.log"), "-o", options, "start"])
        return self

    def stop(self) -> None:
        if self._root is None:
            return
        subprocess.run([*self._pg_ctl(), "-m", "fast", "stop"], capture_output=True, check=False)
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def pause(self) -> None:
        """Stop the server, keep its data (a database outage); `resume` starts it on the same port."""
        _run([*self._pg_ctl(), "-m", "immediate", "stop"])

    def resume(self) -> None:
        assert self._root is not None
        options = f"-p {self.port} -k {self._root} -c listen_addresses=127.0.0.1 -c fsync=off"
        _run([*self._pg_ctl(), "-l", str(self._root / "server.log"), "-o", options, "start"])

    def _pg_ctl(self) -> list[str]:
        assert self._root is not None
        return [*self._run_as, str(self.bindir / "pg_ctl"), "-D", str(self._root / "data"), "-w"]

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class ThrowawayPrometheus:
    """A Prometheus server scraping `targets` every `scrape_s`: ``with ThrowawayPrometheus([...]) as prom``.

    Args:
        targets: ``host:port`` of each ``/metrics`` endpoint, all in one job named `job`.
        scrape_s: the scrape interval (also the evaluation interval).
        job: the job label of our series.
        binary: the server; the one on PATH when None.
        bearer_token: sent on every scrape (the reference service guards ``/metrics`` too); kept in a
            file beside the configuration, never on a command line.
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        scrape_s: float = 1.0,
        job: str = "llmfiles",
        binary: Path | None = None,
        bearer_token: str | None = None,
    ) -> None:
        found = binary if binary is not None else prometheus_binary()
        if found is None:
            raise EngineError(f"no prometheus binary on PATH; `{PROMETHEUS_INSTALL_HINT}`")
        self.binary = found
        self.targets = list(targets)
        self.scrape_s = scrape_s
        self.job = job
        self.bearer_token = bearer_token
        self.port = 0
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 30.0) -> Self:
        self._root = Path(tempfile.mkdtemp(prefix="llmfiles-prom-"))
        interval = f"{max(1, round(self.scrape_s * 1000))}ms"
        targets = ", ".join(f'"{target}"' for target in self.targets)
        config = self._root / "prometheus.yml"
        auth = ""
        if self.bearer_token is not None:
            secret = self._root / "scrape-token"
            secret.write_text(self.bearer_token, encoding="utf-8")
            secret.chmod(0o600)
            auth = f"    authorization:\n      credentials_file: {secret}\n"
        config.write_text(
            f"global:\n  scrape_interval: {interval}\n  evaluation_interval: {interval}\n"
            f"scrape_configs:\n  - job_name: {self.job}\n{auth}"
            f"    static_configs:\n      - targets: [{targets}]\n",
            encoding="utf-8",
        )
        self.port = free_port()
        log = (self._root / "prometheus.log").open("wb")
        self._process = subprocess.Popen(
            [
                str(self.binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={self._root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--storage.tsdb.retention.time=1h",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EngineError(f"prometheus exited {self._process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise EngineError(f"prometheus not ready within {timeout_s} s: {self.log_tail()}")

    def log_tail(self, lines: int = 20) -> str:
        if self._root is None or not (self._root / "prometheus.log").exists():
            return ""
        text = (self._root / "prometheus.log").read_text(encoding="utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
