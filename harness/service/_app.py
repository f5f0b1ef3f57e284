"""The reference upload service: llmfiles embedded in an ASGI app the way a production server would.

Per request the rollout's `Dispatcher` picks the arm by the caller's user id (``X-User``), uploads to the
provider, and leaves one event in the JSONL log, the recorder and the Prometheus metrics. The legacy arm
runs on the event loop by default, as the old service did, so its blocking shows in load-test latency.

With an upload registry (the default) identical content for the same purpose goes to the provider once:
the body's SHA-256 is taken while it is spooled, `ensure_uploaded` lets one request upload it, and the
others (concurrent or later) get the same file id, marked ``"deduplicated": true``. Such an answer sends no
event, since no arm ran. Each answer holds a registry reference; ``DELETE /files/{id}?sha256=...`` gives
it back. A background clean-up deletes unreferenced files beyond ``keep_files``/``keep_bytes``, and an
upload that finds the provider past ``max_files``/``max_bytes`` evicts the least recently used first.

Endpoints: ``POST /upload`` (raw body or multipart field ``file``; name from ``?name=``),
``GET /files``, ``GET /files/{file_id}/content``, ``DELETE /files/{file_id}``, ``GET /metrics``,
``GET /healthz``.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from harness._wiring import StaticFlags, make_dispatcher
from harness.service._cleaner import Cleaner
from harness.service._config import ARM_HEADER, ServiceConfig
from harness.service._dedup import QuotaGuard, RegistryMetrics, clean_pass, release_file, upload_once
from harness.service._spool import Spooled, spool
from llmfiles import (
    ClaimLostError,
    ConfigError,
    FileTooLargeError,
    LLMFilesError,
    NotFoundError,
    RegistryError,
    UnsupportedPurposeError,
)
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import EventLog, Recorder, RolloutMetrics
from llmfiles.providers import KIMI
from llmfiles.registry import ContentKey, UploadRegistry, open_registry
from llmfiles.rollout import Dispatcher, FileFlagSource, FlagState, OverridableFlagSource
from llmfiles.transfer import AsyncFilesClient, UploadResult

__all__ = ["create_app"]

_BAD_INPUT = (ConfigError, FileTooLargeError, UnsupportedPurposeError)
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class _Dedup:
    """The registry and its clean-up, while the app runs."""

    registry: UploadRegistry
    cleaner: Cleaner
    guard: QuotaGuard


@dataclass(frozen=True, slots=True)
class _Live:
    """What exists only while the app runs (between lifespan start and end)."""

    client: AsyncFilesClient
    dispatcher: Dispatcher[UploadResult]
    ledger: TextIO
    dedup: _Dedup | None


def _failure(error: str, message: str, status: int, background: BackgroundTask | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, background=background)


def _error(exc: LLMFilesError, background: BackgroundTask | None = None) -> JSONResponse:
    """The answer for a failed request: 400 bad input, 404 unknown file, 503 registry failed, else 502."""
    if isinstance(exc, _BAD_INPUT):
        status = 400
    elif isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, RegistryError):
        status = 503
    else:
        status = 502
    return _failure(type(exc).__name__, str(exc), status, background)


async def _delete_quietly(client: AsyncFilesClient, file_id: str) -> None:
    """Best-effort clean-up after the answer went out; a failure only leaves a file behind."""
    with contextlib.suppress(LLMFilesError):
        await client.delete(file_id)


async def _release_quietly(dedup: _Dedup, key: ContentKey, file_id: str) -> None:
    """Best-effort release after the answer went out; a failure only keeps the file referenced."""
    with contextlib.suppress(RegistryError):
        record = await release_file(dedup.registry, key, file_id)
        if record is not None and record.refcount == 0:
            dedup.cleaner.request()


def create_app(config: ServiceConfig) -> Starlette:
    """The ASGI app for `config`; clients, logs, metrics and the registry live for the app's lifespan.

    Raises:
        ConfigError: the registry URL names no known backend.
    """
    config.workdir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(window_s=3600)
    metrics = RolloutMetrics()
    registry_metrics = RegistryMetrics(metrics.registry)
    stage_flags = FlagState(enabled=True, percent=config.percent)
    # A flag file lets a load run move the stage while the service runs (its control/candidate phases).
    source = (
        StaticFlags(stage_flags)
        if config.flags_path is None
        else FileFlagSource(config.flags_path, default=stage_flags)
    )
    flags = OverridableFlagSource(source)
    # Each arm's requests carry its name, so a provider (the mock's chaos rules) can tell them apart.
    legacy = LegacyFilesClient(
        KIMI, api_key=config.api_key, base_url=config.provider_url, default_headers={ARM_HEADER: "legacy"}
    )
    # Built now, opened in the lifespan: a bad URL fails at start-up, not on the first request.
    url = config.registry_url
    registry = open_registry(url) if url is not None else None
    live: list[_Live] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            events = stack.enter_context(EventLog(config.events_path))
            ledger = stack.enter_context(config.ledger_path.open("a", encoding="utf-8"))
            client = await stack.enter_async_context(
                AsyncFilesClient(
                    KIMI,
                    api_key=config.api_key,
                    base_url=config.provider_url,
                    settings=config.transfer,
                    default_headers={ARM_HEADER: "async"},
                )
            )
            dedup = None
            if registry is not None:
                # Closed on the way out: an open aiosqlite connection keeps the interpreter alive.
                opened = await stack.enter_async_context(registry)
                clean = clean_pass(
                    opened,
                    provider=KIMI.name,
                    delete=client.delete,
                    max_files=config.keep_files,
                    max_bytes=config.keep_bytes,
                    metrics=registry_metrics,
                )
                guard = QuotaGuard(
                    opened,
                    KIMI.name,
                    delete=client.delete,
                    max_files=config.max_files,
                    max_bytes=config.max_bytes,
                    metrics=registry_metrics,
                )
                # Entered after the registry and the client, so it stops before they close.
                dedup = _Dedup(opened, await stack.enter_async_context(Cleaner(clean)), guard)
            dispatcher = make_dispatcher(
                flags,
                client=client,
                legacy=legacy,
                recorder=recorder,
                sinks=(events, metrics),
                stage=config.stage,
                legacy_in_thread=config.legacy_in_thread,
            )
            live.append(_Live(client, dispatcher, ledger, dedup))
            try:
                yield
            finally:
                live.clear()

    async def send(spooled: Spooled, user: str) -> str:
        result = await live[0].dispatcher.upload(spooled.path, purpose=config.purpose, key=user)
        return result.file.id

    async def send_within_quota(dedup: _Dedup, spooled: Spooled, user: str) -> str:
        await dedup.guard.make_room()
        return await send(spooled, user)

    async def upload(request: Request) -> Response:
        state = live[0]
        user = request.headers.get("x-user") or uuid.uuid4().hex
        try:
            spooled = await spool(request, config.workdir)
        except _BAD_INPUT as exc:
            return _error(exc)
        key = ContentKey(KIMI.name, config.purpose, spooled.sha256)
        try:
            if state.dedup is None:
                file_id, deduplicated = await send(spooled, user), False
            else:
                dedup = state.dedup
                record, deduplicated = await upload_once(
                    dedup.registry,
                    key,
                    size=spooled.size,
                    upload=lambda: send_within_quota(dedup, spooled, user),
                    metrics=registry_metrics,
                )
                assert record.file_id is not None  # ensure_uploaded answers only ready records
                file_id = record.file_id
        except ClaimLostError as exc:
            # Our upload outlived its lease and another request's copy won: ours is an orphan.
            return _error(exc, BackgroundTask(_delete_quietly, state.client, exc.file_id))
        except LLMFilesError as exc:
            return _error(exc)
        finally:
            shutil.rmtree(spooled.path.parent, ignore_errors=True)
        done = {
            "file_id": file_id,
            "sha256": spooled.sha256,
            "bytes": spooled.size,
            "filename": spooled.name,
            "deduplicated": deduplicated,
        }
        # One short line per upload; flushed so a killed service still leaves what it answered. A dedup
        # hit is a line too: its file id is the earlier upload's, which the provider's journal holds.
        state.ledger.write(json.dumps(done) + "\n")
        state.ledger.flush()
        cleanup = None
        if config.delete_after:
            cleanup = (
                BackgroundTask(_delete_quietly, state.client, file_id)
                if state.dedup is None
                else BackgroundTask(_release_quietly, state.dedup, key, file_id)
            )
        return JSONResponse(done, background=cleanup)

    async def delete_file(request: Request) -> Response:
        state = live[0]
        file_id = request.path_params["file_id"]
        if state.dedup is None:
            try:
                await state.client.delete(file_id)
            except LLMFilesError as exc:
                return _error(exc)
            return JSONResponse({"file_id": file_id, "references": 0, "kept": False})
        sha256 = request.query_params.get("sha256", "")
        if not _SHA256.fullmatch(sha256):
            message = (
                f"sha256={sha256!r} is not a SHA-256 digest; pass ?sha256= with the digest the upload "
                f"answered for file_id={file_id!r}"
            )
            return _failure("ConfigError", message, 400)
        key = ContentKey(KIMI.name, config.purpose, sha256)
        try:
            record = await release_file(state.dedup.registry, key, file_id)
            if record is None:
                message = (
                    f"file_id={file_id!r} with sha256={sha256!r} holds no reference here; "
                    "release only what an upload answered, once per answer"
                )
                return _failure("NotFoundError", message, 404)
            if record.refcount == 0:
                # Answer after the pass, so the caller learns whether the quota kept the file.
                await state.dedup.cleaner.wait(state.dedup.cleaner.request())
            current = await state.dedup.registry.get(key)
        except RegistryError as exc:
            return _error(exc)
        kept = current is not None and current.file_id == file_id
        return JSONResponse({"file_id": file_id, "references": record.refcount, "kept": kept})

    async def list_files(_request: Request) -> Response:
        try:
            files = await live[0].client.list()
        except LLMFilesError as exc:
            return _error(exc)
        return JSONResponse({"data": [{"id": f.id, "bytes": f.bytes, "filename": f.filename} for f in files]})

    async def content(request: Request) -> Response:
        dest = Path(tempfile.mkdtemp(dir=config.workdir))
        try:
            path = await live[0].client.download(request.path_params["file_id"], dest)
        except LLMFilesError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            return _error(exc)
        return FileResponse(path, background=BackgroundTask(shutil.rmtree, dest, ignore_errors=True))

    async def prometheus(_request: Request) -> Response:
        return Response(metrics.exposition(), media_type="text/plain; version=0.0.4; charset=utf-8")

    async def healthz(_request: Request) -> Response:
        return JSONResponse(
            {"ok": True, "stage": config.stage, "percent": flags.snapshot().effective_percent}
        )

    routes = [
        Route("/upload", upload, methods=["POST"]),
        Route("/files", list_files, methods=["GET"]),
        Route("/files/{file_id}", delete_file, methods=["DELETE"]),
        Route("/files/{file_id}/content", content, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
