"""`MockProvider`: the server on a background thread with its own event loop, for tests and the harness."""

from __future__ import annotations

import asyncio
import http.client
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from mock_provider._rules import Rule, load_profile, parse_rules
from mock_provider._server import Server
from mock_provider._state import MockState
from mock_provider._wire import DEFAULT_BODY_TIMEOUT

_START_TIMEOUT_S = 10.0


class MockProviderError(RuntimeError):
    """The mock could not start, or a control call was refused (the message carries the server's reason)."""


class MockProvider:
    """A running mock of Kimi's and GLM's Files APIs, with chaos, on a free loopback port.

    Use it as ``with MockProvider("realistic", seed=1) as mock:`` (or ``async with``); it stops cleanly on
    exit, ending hung connections too.

    It shares the caller's process, hence its GIL: fine for functional tests, but a benchmark that
    measures throughput or latency should start ``python -m mock_provider`` as a separate process, or
    the client's own CPU work would slow the server down and show up as provider latency.

    Args:
        profile: a shipped profile name (``calm``, ``realistic``, ``flaky``, ``brownout``, ``outage``,
            ``stalls``) or a path to a TOML profile.
        seed: seeds the chaos and the file ids; the same seed and request order give the same faults.
        data_dir: where uploaded bytes are kept; None makes a temporary directory, removed on exit.
        host, port: where to listen; port 0 picks a free one.
        max_file_bytes: replaces every per-purpose size limit (for benchmarks beyond 100 MB); None keeps
            the providers' real limits.
        body_timeout: seconds a request body may go without a byte before the server answers 408 and
            closes (a client that declared more than it sends does not hold a connection forever).
        clock: wall-clock seconds for ``created_at`` and the journal.
    """

    def __init__(
        self,
        profile: str | Path = "calm",
        seed: int = 0,
        data_dir: str | Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_file_bytes: int | None = None,
        body_timeout: float = DEFAULT_BODY_TIMEOUT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_file_bytes is not None and max_file_bytes < 1:
            raise ValueError(f"max_file_bytes={max_file_bytes!r} must be a positive integer or None")
        if not body_timeout > 0:
            raise ValueError(f"body_timeout={body_timeout!r} must be a positive number of seconds")
        self._body_timeout = body_timeout
        self._profile = str(profile)
        self._rules = load_profile(profile).rules  # fail here, in the caller's thread, on a bad profile
        self._seed = seed
        self._own_dir = data_dir is None
        self.data_dir = Path(tempfile.mkdtemp(prefix="mock-provider-") if data_dir is None else data_dir)
        self._host, self._port = host, port
        self._max_file_bytes = max_file_bytes
        self._clock = clock
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopped: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self.url = ""

    @property
    def kimi_base_url(self) -> str:
        return self.url + "/kimi/v1"

    @property
    def glm_base_url(self) -> str:
        return self.url + "/glm/api/paas/v4"

    def start(self) -> MockProvider:
        """Serve on a background thread; returns once the port is bound, so `url` is ready to use."""
        if self._thread is not None:
            raise MockProviderError("this MockProvider is already started; make a new one")
        self._thread = threading.Thread(target=self._run, name="mock-provider", daemon=True)
        self._thread.start()
        if not self._ready.wait(_START_TIMEOUT_S) or self._failure is not None:
            self.stop()
            raise MockProviderError(f"mock provider failed to start: {self._failure!r}") from self._failure
        return self

    def stop(self) -> None:
        """Stop serving and wait for the thread; a temporary `data_dir` this mock made is removed."""
        if self._loop is not None and self._stopped is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stopped.set)
        if self._thread is not None:
            self._thread.join()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def _run(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopped = asyncio.Event()
        state = MockState(
            self.data_dir,
            self._rules,
            self._profile,
            self._seed,
            self._clock,
            self._max_file_bytes,
            body_timeout=self._body_timeout,
        )
        server = Server(state, self._host, self._port)
        try:
            await server.start()
        except OSError as exc:
            self._failure = exc
            self._ready.set()
            return
        self.url = server.url
        self._ready.set()
        try:
            await self._stopped.wait()
        finally:
            await server.stop()

    def __enter__(self) -> MockProvider:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> MockProvider:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)

    # Control, over plain HTTP so it works from any thread and exactly as a separate process would see it.

    def set_rules(self, rules: Sequence[Rule | dict[str, Any]], seed: int | None = None) -> None:
        """Replace the chaos rules (models or their JSON form); the fault sequence starts over."""
        payload = [r.model_dump(mode="json") if isinstance(r, Rule) else r for r in rules]
        parse_rules(payload)  # a bad rule fails here with the key and value, not as an HTTP 400
        self._call("PUT", "/_chaos", {"rules": payload, **({"seed": seed} if seed is not None else {})})

    def set_profile(self, name: str, seed: int | None = None) -> None:
        """Switch to a shipped profile by name; the fault sequence starts over.

        The server reads no files on request: for a TOML profile file, send its rules with
        ``set_rules(load_profile(path).rules)``.
        """
        self._call("PUT", "/_chaos", {"profile": name, **({"seed": seed} if seed is not None else {})})

    def set_max_file_bytes(self, value: int | None) -> None:
        """Raise (or restore, with None) the per-file size limit while running."""
        self._call("PUT", "/_config", {"max_file_bytes": value})

    def reset(self) -> None:
        """Forget all files and the journal; the fault and id sequences start over."""
        self._call("POST", "/_reset", None)

    def journal(self, since: int = 0) -> list[dict[str, Any]]:
        """Journal entries with ``seq`` above `since`, in request order."""
        entries: list[dict[str, Any]] = self._call("GET", f"/_journal?since={since}", None)
        return entries

    def stats(self) -> dict[str, Any]:
        """Counters of the running server (files per provider, requests, faults) for assertions."""
        stats: dict[str, Any] = self._call("GET", "/_stats", None)
        return stats

    def _call(self, method: str, path: str, payload: Any) -> Any:
        if not self.url:
            raise MockProviderError("the mock is not running; use it inside `with MockProvider(...)`")
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        try:
            body = json.dumps(payload).encode() if payload is not None else None
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            response = conn.getresponse()
            data = json.loads(response.read())
        finally:
            conn.close()
        if response.status != 200:
            raise MockProviderError(
                f"{method} {path} refused ({response.status}): {data['error']['message']}"
            )
        return data
