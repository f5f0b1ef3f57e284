"""Deliberately broken parts, one per mistake a claim must catch: the negative controls' material.

Each is the smallest plausible regression of the real part (a subclass, a replacement function), built
here so the library on disk is never patched. None of them is used outside the self-check.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import os
import statistics
from pathlib import Path
from typing import Any

import httpx

from harness._context import API_KEY
from harness.cases._traversal import EscapeAttemptError
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import Event, Recorder
from llmfiles.rollout import BUCKETS, JudgeVerdict, RolloutController, bucket, threshold
from llmfiles.transfer import (
    AsyncFilesClient,
    FileObject,
    Obtained,
    TransferSettings,
    UploadResult,
    parse_content_disposition,
)

__all__ = [
    "GiveUpClient",
    "HashOnLoopClient",
    "LateController",
    "NoReconcileClient",
    "NoSingleFlightClient",
    "SerialClient",
    "StarvedPoolClient",
    "SummarisingRecorder",
    "TinyChunkClient",
    "TrustingNameClient",
    "UnlimitedClient",
    "UnverifiedHashClient",
    "code_point_bucket",
    "lenient_verdict",
    "median_verdict",
    "python_hash_bucket",
    "rehashed_in_rollout",
]


def python_hash_bucket(key: str, *, salt: str) -> int:
    """Bucketing with the builtin `hash()`: salted per process, so a key moves between replicas."""
    return hash(f"{salt}:{key}") % BUCKETS


def code_point_bucket(key: str, *, salt: str) -> int:
    """Bucketing by the sum of code points: sticky and stable, but keys cluster in a few buckets."""
    return sum(map(ord, f"{salt}:{key}")) % BUCKETS


def rehashed_in_rollout(key: str, percent: float, salt: str) -> bool:
    """The percentage salted into the hash: every stage draws a new sample instead of growing the last."""
    return bucket(key, salt=f"{salt}@{percent:g}") < threshold(percent)


def median_verdict(
    control: Any, candidate: Any, *, tolerance: float, confidence: float = 0.98
) -> JudgeVerdict:
    """A judge without statistics: FAIL whenever the candidate's sample median exceeds the tolerance."""
    del confidence
    slower = statistics.median(candidate) > tolerance * statistics.median(control)
    return JudgeVerdict.FAIL if slower else JudgeVerdict.PASS


def lenient_verdict(
    control: Any, candidate: Any, *, tolerance: float, confidence: float = 0.98
) -> JudgeVerdict:
    """A judge that never finds the candidate slower."""
    del control, candidate, tolerance, confidence
    return JudgeVerdict.PASS


class NoReconcileClient(AsyncFilesClient):
    """A client that never finds its own lost upload in the listing, so it sends the file again."""

    async def _settle(self, **_: Any) -> tuple[FileObject, Obtained] | None:
        return None


class _EveryCallFetches:
    """Stands in for the client's single-flight table: every caller runs its own transfer."""

    async def run(self, key: object, start: Any) -> Any:
        return await start()


class NoSingleFlightClient(AsyncFilesClient):
    """A client whose concurrent downloads of one file each fetch it: single-flight off."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._downloads = _EveryCallFetches()  # type: ignore[assignment]


class _SmallPoolSettings(TransferSettings):
    """Settings whose connection pool is smaller than the concurrency limit it is meant to match."""

    def httpx_limits(self) -> httpx.Limits:
        return httpx.Limits(max_connections=1, max_keepalive_connections=1)


class StarvedPoolClient(AsyncFilesClient):
    """A client with 1 pooled connection under a 128-upload limit, 1 ms to get it, and no retries.

    One connection and a millisecond: on an idle machine 4 connections and 50 ms kept up with 32 KB
    uploads (the transfers' admission gate staggers them), so the control must starve harder than that.
    """

    def __init__(self, *args: Any, settings: TransferSettings | None = None, **kwargs: Any) -> None:
        given = settings or TransferSettings()
        values = {f.name: getattr(given, f.name) for f in dataclasses.fields(given)}
        starved = _SmallPoolSettings(**{**values, "pool_timeout": 0.001, "retries": 0})
        super().__init__(*args, settings=starved, **kwargs)


class GiveUpClient(AsyncFilesClient):
    """A client that gives up at the first timeout: no retries, no second look at the listing."""

    def __init__(self, *args: Any, settings: TransferSettings | None = None, **kwargs: Any) -> None:
        naive = dataclasses.replace(settings or TransferSettings(), retries=0, reconcile_grace=0.0)
        super().__init__(*args, settings=naive, **kwargs)


class SerialClient(AsyncFilesClient):
    """A client that sends one upload at a time, whatever concurrency it was given."""

    def __init__(self, *args: Any, settings: TransferSettings | None = None, **kwargs: Any) -> None:
        serial = dataclasses.replace(settings or TransferSettings(), max_concurrency=1)
        super().__init__(*args, settings=serial, **kwargs)


class UnlimitedClient(AsyncFilesClient):
    """A client whose concurrency limit is raised out of the way: every upload asked for starts at once."""

    def __init__(self, *args: Any, settings: TransferSettings | None = None, **kwargs: Any) -> None:
        unlimited = dataclasses.replace(settings or TransferSettings(), max_concurrency=1024)
        super().__init__(*args, settings=unlimited, **kwargs)


class TinyChunkClient(AsyncFilesClient):
    """A client that reads (uploads) and writes (downloads) 4 KiB per worker-thread step and hashes as
    much, the smallest step the settings allow."""

    def __init__(self, *args: Any, settings: TransferSettings | None = None, **kwargs: Any) -> None:
        tiny = dataclasses.replace(
            settings or TransferSettings(), chunk_size=4 * 1024, write_batch_size=4 * 1024
        )
        super().__init__(*args, settings=tiny, **kwargs)


class HashOnLoopClient(AsyncFilesClient):
    """A client that hashes the whole file on the event loop before it streams it."""

    async def upload(
        self, path: str | os.PathLike[str], *, purpose: str, progress: Any = None
    ) -> UploadResult:
        with open(path, "rb") as handle:  # noqa: ASYNC230 - blocking the loop is the break
            hashlib.file_digest(handle, "sha256")
        return await super().upload(path, purpose=purpose, progress=progress)


class LoopBlockingClient(AsyncFilesClient):
    """The old service's path: each upload is the legacy client's, run on the event loop.

    Hashing on the loop (`HashOnLoopClient`) stalls it by the hash alone, under 100 ms for the stall
    case's eight 20 MB files on a fast idle machine; the whole blocking upload is what the no-blocking
    claims exist to rule out, and eight of them started together freeze the loop for all eight.
    """

    async def upload(
        self, path: str | os.PathLike[str], *, purpose: str, progress: Any = None
    ) -> UploadResult:
        legacy = LegacyFilesClient(self.provider, api_key=API_KEY, base_url=self.base_url)
        return legacy.upload(path, purpose=purpose)


class UnverifiedHashClient(AsyncFilesClient):
    """A client that reports a SHA-256 of the file's name, not of the bytes the provider stored."""

    async def upload(
        self, path: str | os.PathLike[str], *, purpose: str, progress: Any = None
    ) -> UploadResult:
        result = await super().upload(path, purpose=purpose, progress=progress)
        return dataclasses.replace(result, sha256=hashlib.sha256(Path(path).name.encode()).hexdigest())


class TrustingNameClient(AsyncFilesClient):
    """A download whose sanitiser does nothing: the provider's Content-Disposition name is used as is.

    The bench runs as root: instead of writing outside `dest_dir` (``/etc/passwd`` is in the corpus), it
    raises `EscapeAttemptError` naming the path it would have written, and the traversal case counts that
    as the escape it is.
    """

    async def download(
        self, file_id: str, dest_dir: str | os.PathLike[str], *, filename: str | None = None, **_: Any
    ) -> Path:
        directory = Path(await asyncio.to_thread(os.path.realpath, dest_dir))
        async with self._http.stream("GET", f"files/{file_id}/content") as response:
            response.raise_for_status()
            name = filename or parse_content_disposition(response.headers.get("content-disposition", ""))
            target = directory / (name or file_id)
            if target.resolve().parent != directory:  # it would have written there, or failed to
                raise EscapeAttemptError(target)
            with target.open("wb") as out:
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
        return target


class SummarisingRecorder(Recorder):
    """A recorder that recomputes the whole window's comparison on every event it records."""

    def record(self, event: Event) -> None:
        super().record(event)
        self.compare()


class LateController(RolloutController):
    """A controller that checks only every 8th interval: it rolls back, but long after its own bound."""

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=8 * self.interval_s)
                return
            self.check()
