"""The reference upload service: llmfiles embedded in an ASGI app the way a production server would.

Per request the rollout's `Dispatcher` picks the arm by the caller's user id (``X-User``), uploads to the
provider, and leaves one event in the JSONL log, the recorder and the Prometheus metrics. The legacy arm
runs on the event loop by default, as the old service did, so its blocking shows in load-test latency.

Endpoints: ``POST /upload`` (raw body or multipart field ``file``; name from ``?name=``),
``GET /files``, ``GET /files/{file_id}/content``, ``GET /metrics``, ``GET /healthz``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiofiles
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from harness._wiring import StaticFlags, make_dispatcher
from harness.service._config import ServiceConfig
from llmfiles import ConfigError, FileTooLargeError, LLMFilesError, NotFoundError, UnsupportedPurposeError
from llmfiles.legacy import LegacyFilesClient
from llmfiles.observe import EventLog, Recorder, RolloutMetrics
from llmfiles.providers import KIMI
from llmfiles.rollout import Dispatcher, FlagState, OverridableFlagSource
from llmfiles.transfer import AsyncFilesClient, UploadResult, sanitize_filename

__all__ = ["create_app"]

_CHUNK = 256 * 1024
_BAD_INPUT = (ConfigError, FileTooLargeError, UnsupportedPurposeError)


@dataclass(frozen=True, slots=True)
class _Live:
    """What exists only while the app runs (between lifespan start and end)."""

    client: AsyncFilesClient
    dispatcher: Dispatcher[UploadResult]
    ledger: TextIO


async def _spool(request: Request, directory: Path) -> tuple[Path, str]:
    """Write the request's file to a fresh temp dir, streaming; return its path and the client's name.

    On any failure (a bad multipart body, a client that hangs up mid-body) the directory is removed:
    nothing partial stays behind.
    """
    spool_dir = Path(tempfile.mkdtemp(dir=directory))
    try:
        return await _receive(request, spool_dir)
    except BaseException:
        shutil.rmtree(spool_dir, ignore_errors=True)
        raise


async def _receive(request: Request, spool_dir: Path) -> tuple[Path, str]:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:  # closes the spooled parts, even on error
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ConfigError(
                    "field='file' is missing from the multipart body; send the file in a 'file' part"
                )
            name = sanitize_filename(upload.filename or "upload.bin")
            path = spool_dir / name
            async with aiofiles.open(path, "wb") as out:
                while chunk := await upload.read(_CHUNK):
                    await out.write(chunk)
        return path, name
    name = sanitize_filename(request.query_params.get("name", "upload.bin"))
    path = spool_dir / name
    async with aiofiles.open(path, "wb") as out:
        async for chunk in request.stream():
            await out.write(chunk)
    return path, name


async def _delete_quietly(client: AsyncFilesClient, file_id: str) -> None:
    """Best-effort clean-up after the answer went out; a failure only leaves a file behind."""
    with contextlib.suppress(LLMFilesError):
        await client.delete(file_id)


def create_app(config: ServiceConfig) -> Starlette:
    """The ASGI app for `config`; clients, logs and metrics live for the app's lifespan."""
    config.workdir.mkdir(parents=True, exist_ok=True)
    recorder = Recorder(window_s=3600)
    metrics = RolloutMetrics()
    flags = OverridableFlagSource(StaticFlags(FlagState(enabled=True, percent=config.percent)))
    legacy = LegacyFilesClient(KIMI, api_key=config.api_key, base_url=config.provider_url)
    live: list[_Live] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        with EventLog(config.events_path) as events, config.ledger_path.open("a", encoding="utf-8") as ledger:
            async with AsyncFilesClient(KIMI, api_key=config.api_key, base_url=config.provider_url) as client:
                dispatcher = make_dispatcher(
                    flags,
                    client=client,
                    legacy=legacy,
                    recorder=recorder,
                    sinks=(events, metrics),
                    stage=config.stage,
                    legacy_in_thread=config.legacy_in_thread,
                )
                live.append(_Live(client, dispatcher, ledger))
                yield
                live.clear()

    async def upload(request: Request) -> Response:
        dispatcher = live[0].dispatcher
        user = request.headers.get("x-user") or uuid.uuid4().hex
        try:
            path, name = await _spool(request, config.workdir)
        except _BAD_INPUT as exc:
            return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=400)
        try:
            result = await dispatcher.upload(path, purpose=config.purpose, key=user)
        except _BAD_INPUT as exc:
            return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=400)
        except LLMFilesError as exc:
            return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=502)
        finally:
            shutil.rmtree(path.parent, ignore_errors=True)
        done = {"file_id": result.file.id, "sha256": result.sha256, "bytes": result.size, "filename": name}
        # One short line per upload; flushed so a killed service still leaves what it answered.
        live[0].ledger.write(json.dumps(done) + "\n")
        live[0].ledger.flush()
        cleanup = (
            BackgroundTask(_delete_quietly, live[0].client, result.file.id) if config.delete_after else None
        )
        return JSONResponse(done, background=cleanup)

    async def list_files(_request: Request) -> Response:
        try:
            files = await live[0].client.list()
        except LLMFilesError as exc:
            return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=502)
        return JSONResponse({"data": [{"id": f.id, "bytes": f.bytes, "filename": f.filename} for f in files]})

    async def content(request: Request) -> Response:
        dest = Path(tempfile.mkdtemp(dir=config.workdir))
        try:
            path = await live[0].client.download(request.path_params["file_id"], dest)
        except LLMFilesError as exc:
            shutil.rmtree(dest, ignore_errors=True)
            status = 404 if isinstance(exc, NotFoundError) else 502
            return JSONResponse({"error": type(exc).__name__, "message": str(exc)}, status_code=status)
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
        Route("/files/{file_id}/content", content, methods=["GET"]),
        Route("/metrics", prometheus, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)
