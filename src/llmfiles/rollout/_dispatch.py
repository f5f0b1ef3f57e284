"""The dispatcher: pick an arm per call, run it, fall back on transport errors, leave one event.

The arms are plain callables, so the dispatcher knows nothing of the clients behind them:

- async arm: ``async (path, *, purpose) -> result`` (`AsyncFilesClient.upload`);
- legacy arm: ``(path, *, purpose) -> result``, synchronous (`LegacyFilesClient.upload`), run in the
  dispatcher's own thread pool, or inline on the event loop (``legacy_in_thread=False``) to reproduce the
  old blocking path. Its own pool, not the loop's default executor: a blocking upload holds its thread
  for the provider's whole answer, and in the default executor (``cpu_count + 4`` threads) a few slow
  answers would queue every short hop the async arm (and the rest of the application) makes there, so
  the new arm would be timed waiting behind the old one;
- reconcile: ``async (*, filename, size, created_after, purpose, sha256) -> found | None``
  (`AsyncFilesClient.find_uploaded`) with ``adopt(found, path, *, sha256) -> result``
  (`UploadResult.adopted`) to turn what it found into the caller's result. The dispatcher hashes the
  caller's file once (in a worker thread) and gives that digest to both: where the provider serves the
  stored bytes, `reconcile` proves a candidate by its content, never by name and size, and says so in
  what it returns; `adopt` takes the label from there and the digest from the dispatcher, so it need not
  read the file again.

Fallback happens only on transport errors (`FALLBACK_ERRORS`): the provider gave no verdict, so the
file may or may not be stored. Before trying the legacy arm the dispatcher asks `reconcile` whether the
async arm's upload landed after all; if it did, that file is the answer, and if the question itself
fails the call fails rather than risk a second provider file.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, Generic, Protocol, TypeVar

import httpx
import structlog

from llmfiles._errors import ConfigError
from llmfiles._errors import TransportError as LLMFilesTransportError
from llmfiles.observe import Arm, Event, Outcome, classify_error, hash_key
from llmfiles.rollout._bucket import in_rollout
from llmfiles.rollout._flags import FlagSource
from llmfiles.transfer import file_sha256

_log = structlog.get_logger("llmfiles.rollout")
# Reads of the caller's file when a lost upload is looked for: rare, so plain 1 MiB chunks.
_HASH_CHUNK_SIZE = 1024 * 1024
#: Legacy uploads in flight at once when the dispatcher runs them in its pool: a blocking client's
#: concurrency is its threads, and 64 covers a service's usual in-flight uploads at the providers'
#: latencies without a thread per request.
DEFAULT_LEGACY_THREADS = 64

FALLBACK_ERRORS: Final[tuple[type[BaseException], ...]] = (
    TimeoutError,
    ConnectionError,
    OSError,
    httpx.TransportError,
    LLMFilesTransportError,
)
# OSError also covers the local file being missing or unreadable: no transport failed, and the legacy arm
# would fail the same way, so these are not fallback cases.
_LOCAL_FILE_ERRORS: Final = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


class Uploaded(Protocol):
    """What the dispatcher needs from an upload result (`UploadResult` has it)."""

    @property
    def size(self) -> int: ...


R = TypeVar("R", bound=Uploaded)
R_co = TypeVar("R_co", bound=Uploaded, covariant=True)


class AsyncArm(Protocol[R_co]):
    """The candidate arm's shape, `AsyncFilesClient.upload`: one path in, an awaitable result out."""

    def __call__(self, path: Path, /, *, purpose: str) -> Awaitable[R_co]: ...


class LegacyArm(Protocol[R_co]):
    """The control arm's shape, `LegacyFilesClient.upload`: blocking, so it may be run in a thread."""

    def __call__(self, path: Path, /, *, purpose: str) -> R_co: ...


class Reconcile(Protocol):
    """`AsyncFilesClient.find_uploaded`: finds a file the failed async attempt may have stored after all."""

    def __call__(
        self, *, filename: str, size: int, created_after: float, purpose: str, sha256: str
    ) -> Awaitable[Any | None]: ...


class Adopt(Protocol[R_co]):
    """`UploadResult.adopted`: the caller's result for what `Reconcile` found.

    `found` is `Reconcile`'s answer as it came (`FoundUpload`: the file and whether its content proved
    it); `sha256` is the hex SHA-256 of the caller's file that the dispatcher computed and gave
    `Reconcile`, so the file is read once and a content-proven file keeps its verified label. Called on
    the event loop: it must not block (it has no reason to read the file).
    """

    def __call__(self, found: Any, path: Path, /, *, sha256: str) -> R_co: ...


class EventSink(Protocol):
    """Anything that takes events: `Recorder`, `EventLog`, `RolloutMetrics`."""

    def record(self, event: Event) -> None: ...


class Dispatcher(Generic[R]):
    """Routes each upload to the async or the legacy arm by sticky bucketing; call it like the arm.

    Args:
        flags: consulted on every call, so a rollback applies to the next one.
        async_arm: the new path.
        legacy_arm: the old synchronous path.
        recorder: the first event sink (usually a `Recorder`); None for none.
        sinks: more event sinks (`EventLog`, `RolloutMetrics`); a sink that raises is logged, never
            allowed to fail an upload.
        provider: provider name stamped on events.
        salt: the flag's name in the bucketing hash and in `Event.flag`.
        stage: the stage stamped on events, or a callable returning the current one.
        reconcile: asked before a fallback whether the failed async upload landed anyway.
        adopt: builds the caller's result from what `reconcile` found, given the digest the dispatcher
            computed (see `Adopt`); required with `reconcile`.
        reconcile_skew_s: how far before the call's start a provider ``created_at`` may lie and still
            match. 0 by default: `AsyncFilesClient.find_uploaded` already allows for provider clock skew.
        legacy_in_thread: run the legacy arm in the dispatcher's thread pool (True) or block the loop
            like the old code did (False).
        legacy_threads: the size of that pool: legacy uploads in flight at once (each holds a thread
            until the provider answers); more wait for a thread. `close` shuts the pool down.
        clock: wall-clock seconds for event timestamps.
        timer: monotonic seconds for durations.

    Raises:
        ConfigError: `reconcile` without `adopt`, or the other way round.
    """

    def __init__(
        self,
        flags: FlagSource,
        *,
        async_arm: AsyncArm[R],
        legacy_arm: LegacyArm[R],
        recorder: EventSink | None = None,
        sinks: Sequence[EventSink] = (),
        provider: str = "unknown",
        salt: str = "llmfiles.async_upload",
        stage: str | Callable[[], str] = "unknown",
        reconcile: Reconcile | None = None,
        adopt: Adopt[R] | None = None,
        reconcile_skew_s: float = 0.0,
        legacy_in_thread: bool = True,
        legacy_threads: int = DEFAULT_LEGACY_THREADS,
        clock: Callable[[], float] = time.time,
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        if (reconcile is None) != (adopt is None):
            raise ConfigError(
                f"reconcile={reconcile!r} and adopt={adopt!r}: pass both (to avoid duplicate provider "
                "files on fallback) or neither"
            )
        if legacy_threads < 1:
            raise ConfigError(f"legacy_threads={legacy_threads!r} must be at least 1")
        self.flags = flags
        self.provider = provider
        self.salt = salt
        self._async_arm = async_arm
        self._legacy_arm = legacy_arm
        self._sinks: tuple[EventSink, ...] = (*(() if recorder is None else (recorder,)), *sinks)
        self._stage = stage if callable(stage) else functools.partial(str, stage)
        self._reconcile = reconcile
        self._adopt = adopt
        self._skew = reconcile_skew_s
        self._legacy_in_thread = legacy_in_thread
        self._legacy_threads = legacy_threads
        self._legacy_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._clock = clock
        self._timer = timer

    async def __call__(self, path: Path | str, *, purpose: str, key: str | None = None) -> R:
        """Same as `upload`, so a `Dispatcher` stands in for the arm it wraps."""
        return await self.upload(path, purpose=purpose, key=key)

    async def upload(self, path: Path | str, *, purpose: str, key: str | None = None) -> R:
        """Upload `path` through the arm `key` buckets into, falling back when allowed.

        Args:
            path: the local file.
            purpose: the provider purpose.
            key: the stickiness key (user, session, file SHA-256). None uses a fresh request id, which
                is not sticky: the same caller may get either arm on the next call.

        Raises:
            Whatever the chosen arm raised when there was no fallback, or the legacy arm's error when the
            fallback failed too (chained to the async arm's).
        """
        source = Path(path)
        started, t0 = self._clock(), self._timer()
        state = self.flags.snapshot()
        bucket_key = key if key is not None else uuid.uuid4().hex
        arm: Arm = "async" if in_rollout(bucket_key, state.effective_percent, self.salt) else "legacy"
        outcome: Outcome = "failure"
        error: BaseException | None = None
        size = 0
        try:
            if arm == "legacy":
                result = await self._run_legacy(source, purpose)
                outcome = "success"
            else:
                try:
                    result = await self._async_arm(source, purpose=purpose)
                    outcome = "success"
                except FALLBACK_ERRORS as exc:
                    if isinstance(exc, _LOCAL_FILE_ERRORS) or not state.fallback:
                        raise
                    error = exc
                    result, outcome = await self._recover(source, purpose, started, exc)
            size = result.size
            return result
        except BaseException as exc:
            if error is None:
                error = exc
            raise
        finally:
            self._emit(
                Event(
                    ts=started,
                    flag=self.salt,
                    arm=arm,
                    outcome=outcome,
                    duration_s=self._timer() - t0,
                    bytes=size,
                    error_type=None if error is None else type(error).__name__,
                    provider=self.provider,
                    stage=self._stage(),
                    key_hash=hash_key(bucket_key, salt=self.salt),
                    error_kind=None if error is None else classify_error(error),
                )
            )

    async def _recover(
        self, path: Path, purpose: str, started: float, cause: BaseException
    ) -> tuple[R, Outcome]:
        """After an async transport error: adopt the file if it landed, else run the legacy arm."""
        if self._reconcile is not None and self._adopt is not None:
            try:
                size = (await asyncio.to_thread(os.stat, path)).st_size
                sha256 = await asyncio.to_thread(file_sha256, path, _HASH_CHUNK_SIZE)
                found = await self._reconcile(
                    filename=path.name,
                    size=size,
                    created_after=started - self._skew,
                    purpose=purpose,
                    sha256=sha256,
                )
            except Exception as exc:
                _log.warning(
                    "reconcile_failed_no_fallback", error_type=type(exc).__name__, provider=self.provider
                )
                raise cause from exc
            if found is not None:
                # The digest `found` was proven against: hashing the file again would cost a second read.
                return self._adopt(found, path, sha256=sha256), "success"
        try:
            return await self._run_legacy(path, purpose), "fallback"
        except Exception as exc:
            raise exc from cause

    async def _run_legacy(self, path: Path, purpose: str) -> R:
        if not self._legacy_in_thread:
            return self._legacy_arm(path, purpose=purpose)
        call = functools.partial(self._legacy_arm, path, purpose=purpose)
        return await asyncio.get_running_loop().run_in_executor(self._pool(), call)

    def _pool(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._legacy_pool is None:
                self._legacy_pool = ThreadPoolExecutor(
                    max_workers=self._legacy_threads, thread_name_prefix="llmfiles-legacy"
                )
            return self._legacy_pool

    def close(self) -> None:
        """Shut the legacy arm's thread pool down, waiting for its uploads; a later call makes a new one."""
        with self._pool_lock:
            pool, self._legacy_pool = self._legacy_pool, None
        if pool is not None:
            pool.shutdown(wait=True)

    def _emit(self, event: Event) -> None:
        for sink in self._sinks:
            try:
                sink.record(event)
            except Exception as exc:
                _log.error("event_sink_failed", sink=type(sink).__name__, error=str(exc))


def dispatched(
    flags: FlagSource, *, legacy_arm: LegacyArm[R], **options: Any
) -> Callable[[AsyncArm[R]], Dispatcher[R]]:
    """Decorator form: the decorated coroutine function becomes the async arm of a `Dispatcher`.

    ``options`` are `Dispatcher`'s keyword arguments. Example::

        @dispatched(flags, legacy_arm=legacy.upload, recorder=recorder, provider="kimi")
        async def upload(path: Path, *, purpose: str) -> UploadResult:
            return await client.upload(path, purpose=purpose)

        await upload(path, purpose="file-extract", key=user_id)
    """

    def decorate(async_arm: AsyncArm[R]) -> Dispatcher[R]:
        return Dispatcher(flags, async_arm=async_arm, legacy_arm=legacy_arm, **options)

    return decorate
