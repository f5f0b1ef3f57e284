"""Request bodies spooled to a temp file, hashed on the way in so the registry key costs no second read."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiofiles
from starlette.datastructures import UploadFile
from starlette.requests import Request

from llmfiles import ConfigError
from llmfiles.transfer import sanitize_filename

__all__ = ["Spooled", "spool"]

_CHUNK = 256 * 1024


@dataclass(frozen=True, slots=True)
class Spooled:
    """A request's file on local disk.

    Args:
        path: the file, alone in its own temp directory (remove ``path.parent`` when done).
        name: the client's file name, sanitised.
        sha256: the content's SHA-256 (hex), computed while it was written.
        size: its size in bytes.
    """

    path: Path
    name: str
    sha256: str
    size: int


async def spool(request: Request, directory: Path) -> Spooled:
    """Write the request's file to a fresh temp dir under `directory`, streaming and hashing.

    The file is a raw body (name from ``?name=``) or the multipart field ``file``. On any failure (a bad
    multipart body, a client that hangs up mid-body) the temp dir is removed: nothing partial stays behind.

    Raises:
        ConfigError: a multipart body without a ``file`` part.
    """
    spool_dir = Path(tempfile.mkdtemp(dir=directory))
    try:
        return await _receive(request, spool_dir)
    except BaseException:
        shutil.rmtree(spool_dir, ignore_errors=True)
        raise


async def _receive(request: Request, spool_dir: Path) -> Spooled:
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        async with request.form() as form:  # closes the spooled parts, even on error
            upload = form.get("file")
            if upload is None or isinstance(upload, str):
                raise ConfigError(
                    "field='file' is missing from the multipart body; send the file in a 'file' part"
                )
            name = sanitize_filename(upload.filename or "upload.bin")
            return await _write(_parts(upload), spool_dir / name, name)
    name = sanitize_filename(request.query_params.get("name", "upload.bin"))
    return await _write(request.stream(), spool_dir / name, name)


async def _parts(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(_CHUNK):
        yield chunk


async def _write(chunks: AsyncIterator[bytes], path: Path, name: str) -> Spooled:
    digest = hashlib.sha256()
    size = 0
    async with aiofiles.open(path, "wb") as out:
        async for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            await out.write(chunk)
    return Spooled(path, name, digest.hexdigest(), size)
