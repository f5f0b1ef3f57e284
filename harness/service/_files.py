"""``GET /files``, ``GET /files/{id}/content``, ``DELETE /files/{id}``: this service's files only.

The provider account may hold files of other services and people; a caller of this service sees,
downloads and deletes only those this service answered as uploaded (its `Ledger`). Any other id is
answered 404, like an id that does not exist, so the answer says nothing about the rest of the account.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from harness.service._dedup import release_file
from harness.service._errors import error_response, failure
from harness.service._lifespan import live
from llmfiles import LLMFilesError, RegistryError
from llmfiles.providers import KIMI
from llmfiles.registry import ContentKey

__all__ = ["content", "delete_file", "list_files"]

_SHA256 = re.compile(r"[0-9a-f]{64}")


def _unknown(file_id: str) -> Response:
    message = f"file_id={file_id!r} is not a file this service uploaded; use an id an upload answered"
    return failure("NotFoundError", message, 404)


async def list_files(request: Request) -> Response:
    """The provider's files that this service uploaded (one listing of the account, filtered)."""
    state = live(request)
    try:
        files = await state.client.list()
    except LLMFilesError as exc:
        return error_response(exc)
    mine = [{"id": f.id, "bytes": f.bytes, "filename": f.filename} for f in files if state.ledger.owns(f.id)]
    return JSONResponse({"data": mine})


async def content(request: Request) -> Response:
    """The file's bytes, downloaded into a temp dir that goes once the answer is sent."""
    state = live(request)
    file_id = request.path_params["file_id"]
    if not state.ledger.owns(file_id):
        return _unknown(file_id)
    dest = Path(tempfile.mkdtemp(dir=state.config.workdir))
    try:
        path = await state.client.download(file_id, dest)
    except LLMFilesError as exc:
        shutil.rmtree(dest, ignore_errors=True)
        return error_response(exc, hide=((str(dest), "<download>"),))
    return FileResponse(path, background=BackgroundTask(shutil.rmtree, dest, ignore_errors=True))


async def delete_file(request: Request) -> Response:
    """Give back one reference (``?sha256=`` names the content); without a registry, delete at once."""
    state = live(request)
    file_id = request.path_params["file_id"]
    if not state.ledger.owns(file_id):
        return _unknown(file_id)
    if state.dedup is None:
        try:
            await state.client.delete(file_id)
        except LLMFilesError as exc:
            return error_response(exc)
        state.ledger.forget(file_id)
        return JSONResponse({"file_id": file_id, "references": 0, "kept": False})
    sha256 = request.query_params.get("sha256", "")
    if not _SHA256.fullmatch(sha256):
        message = (
            f"sha256={sha256!r} is not a SHA-256 digest; pass ?sha256= with the digest the upload "
            f"answered for file_id={file_id!r}"
        )
        return failure("ConfigError", message, 400)
    dedup = state.dedup
    key = ContentKey(KIMI.name, state.config.purpose, sha256)
    try:
        record = await release_file(dedup.registry, key, file_id)
        if record is None:
            message = (
                f"file_id={file_id!r} with sha256={sha256!r} holds no reference here; "
                "release only what an upload answered, once per answer"
            )
            return failure("NotFoundError", message, 404)
        if record.refcount == 0:
            # Answer after the pass, so the caller learns whether the quota kept the file.
            await dedup.cleaner.wait(dedup.cleaner.request())
        current = await dedup.registry.get(key)
    except RegistryError as exc:
        return error_response(exc)
    kept = current is not None and current.file_id == file_id
    return JSONResponse({"file_id": file_id, "references": record.refcount, "kept": kept})
