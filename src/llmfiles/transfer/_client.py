"""The async Files API client: streaming upload and download over one pooled connection per provider."""

from __future__ import annotations

import asyncio
import builtins
import functools
import os
import ssl
from collections import OrderedDict
from collections.abc import Awaitable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

import aiofiles.os
import httpx

from llmfiles._errors import (
    ConfigError,
    LLMFilesError,
    NotFoundError,
)
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._attempts import with_retries
from llmfiles.transfer._download import download_to
from llmfiles.transfer._headers import with_auth
from llmfiles.transfer._limit import process_limit
from llmfiles.transfer._local import check_upload, file_sha256, unreadable
from llmfiles.transfer._models import FileObject, Progress, UploadResult
from llmfiles.transfer._multipart import MultipartFileBody
from llmfiles.transfer._responses import file_object, file_page, json_body
from llmfiles.transfer._settings import TransferSettings
from llmfiles.transfer._singleflight import SingleFlight
from llmfiles.transfer._urls import base_url_for

_GLM_PAGE_SIZE = 100
"""GLM's largest ``limit`` for ``GET /files``."""

_CLAIMED_MEMORY = 10_000
"""How many of its own uploads' file ids a client remembers, so reconciliation never adopts them twice."""


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """One TLS context for every client of the process.

    Loading the CA bundle takes ~40 ms of CPU and ~0.7 MB; httpx does it for every new client, inside
    the event loop. Shared, only the first client pays, and an SSLContext is safe to share.
    """
    return httpx.create_ssl_context()


def _file_object(response: httpx.Response) -> FileObject:
    return file_object(json_body(response))


class AsyncFilesClient:
    """A provider's Files API, streamed: nothing reads a whole file, nothing blocks the event loop.

    One pooled ``httpx.AsyncClient`` per instance (keep-alive, per-phase timeouts), a process-wide
    concurrency limit, retries with jittered exponential backoff that honour ``Retry-After``, and
    reconciliation so a retried upload never leaves a second copy at the provider. Use it as
    ``async with AsyncFilesClient(KIMI, api_key=...) as client:``.

    Args:
        provider: which provider (`KIMI`, `GLM`): paths, limits and error shapes come from it.
        api_key: the bearer key; it is sent in a header and never appears in errors, reprs or logs.
        base_url: the API root (the mock, a proxy); the provider's public root when None.
        settings: timeouts, retries, concurrency and chunk size.
        transport: an httpx transport, for tests (``httpx.MockTransport``, respx).
        default_headers: extra headers on every request, as the official SDKs' ``default_headers``
            (a gateway's routing or tenant header, a label a proxy or the test provider matches on).
            ``Authorization`` is always the one built from `api_key`.

    Raises:
        ConfigError: `api_key` is empty, or `base_url` is not an http(s) URL.
    """

    def __init__(
        self,
        provider: ProviderSpec,
        *,
        api_key: str,
        base_url: str | None = None,
        settings: TransferSettings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError(f"api_key is empty; set {provider.api_key_env} or pass api_key=")
        self.provider = provider
        self.settings = settings or TransferSettings()
        self.base_url = base_url_for(provider, base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=with_auth(default_headers, api_key),
            timeout=self.settings.httpx_timeout(),
            limits=self.settings.httpx_limits(),
            transport=transport,
            verify=_tls_context(),
        )
        self._downloads: SingleFlight[Path] = SingleFlight()
        self._claimed: OrderedDict[str, None] = OrderedDict()

    def __repr__(self) -> str:
        return f"AsyncFilesClient(provider={self.provider.name!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the pooled connections."""
        await self._http.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        async with process_limit(self.settings.max_concurrency):
            return await self._http.send(request)

    async def _call(
        self, method: str, url: str, *, action: str, params: Mapping[str, Any] | None = None
    ) -> Any:
        request = self._http.build_request(method, url, params=params)
        result, _, _ = await with_retries(
            self.provider,
            self.settings,
            action=action,
            attempt=lambda: self._send(request),
            parse=json_body,
        )
        return result

    async def upload(
        self, path: str | os.PathLike[str], *, purpose: str, progress: Progress | None = None
    ) -> UploadResult:
        """Stream `path` to the provider as `purpose`; return the stored file and the bytes' SHA-256.

        Limits are checked before a byte is sent. After a lost or malformed answer the provider's listing
        is searched (`find_uploaded`) before sending again, so no second copy appears; such a result has
        ``reconciled=True``.

        Raises:
            UnsupportedPurposeError: the provider does not know `purpose`.
            FileTooLargeError: the file exceeds the purpose's limit.
            ConfigError: the file cannot be read.
            IntegrityError: the file changed size while it was being sent.
            ProviderError: the provider refused (subclasses by meaning), after retries where they apply.
            TransportError: the connection failed on every attempt.
        """
        path = Path(path)
        self.provider.limit_for(purpose)  # an unknown purpose is refused before touching the disk
        try:
            stat = await aiofiles.os.stat(path)
        except OSError as exc:
            raise unreadable(path, exc) from exc
        size = check_upload(self.provider, path, purpose, stat)
        body = MultipartFileBody(
            path,
            filename=path.name,
            size=size,
            fields={"purpose": purpose},
            chunk_size=self.settings.chunk_size,
            progress=progress,
        )
        started = self.settings.clock()

        def attempt() -> Awaitable[httpx.Response]:
            request = self._http.build_request("POST", "files", content=body, headers=body.headers)
            return self._send(request)

        async def reconcile() -> FileObject | None:
            return await self.find_uploaded(filename=path.name, size=size, created_after=started)

        file, attempts, reconciled = await with_retries(
            self.provider,
            self.settings,
            action=f"upload {path.name}",
            attempt=attempt,
            parse=_file_object,
            reconcile=reconcile,
        )
        # Only an upload adopted by reconcile after no body pass ever completed lacks the hash.
        sha256 = body.sha256
        if sha256 is None:
            sha256 = await asyncio.to_thread(file_sha256, path, self.settings.chunk_size)
        self._claim(file.id)
        return UploadResult(file=file, sha256=sha256, size=size, attempts=attempts, reconciled=reconciled)

    def _claim(self, file_id: str) -> None:
        self._claimed[file_id] = None
        self._claimed.move_to_end(file_id)
        while len(self._claimed) > _CLAIMED_MEMORY:
            self._claimed.popitem(last=False)

    async def upload_many(
        self,
        paths: Iterable[str | os.PathLike[str]],
        *,
        purpose: str,
        progress: Progress | None = None,
    ) -> builtins.list[UploadResult | LLMFilesError]:
        """Upload every path concurrently (bounded by the concurrency limit); one result per path, in order.

        A failed file yields its `LLMFilesError` in its slot and never stops or hides the others. `progress`
        receives the bytes and total of the whole batch.
        """
        paths = builtins.list(paths)
        done: dict[int, int] = {}
        total: int | None = None

        def part_progress(index: int) -> Progress | None:
            if progress is None:
                return None

            def report(sent: int, _size: int | None) -> None:
                done[index] = sent
                progress(sum(done.values()), total)

            return report

        if progress is not None:
            sizes = await asyncio.gather(
                *(aiofiles.os.path.getsize(p) for p in paths), return_exceptions=True
            )
            total = sum(s for s in sizes if isinstance(s, int))

        async def one(index: int, path: str | os.PathLike[str]) -> UploadResult | LLMFilesError:
            try:
                return await self.upload(path, purpose=purpose, progress=part_progress(index))
            except LLMFilesError as exc:
                return exc

        return await asyncio.gather(*(one(i, p) for i, p in enumerate(paths)))

    async def list(self, *, purpose: str | None = None) -> builtins.list[FileObject]:
        """Every file the account holds (all pages), optionally only those of `purpose`."""
        params: dict[str, Any] = {}
        if purpose is not None:
            params["purpose"] = purpose
        files: builtins.list[FileObject] = []
        while True:
            if self.provider.list_is_paginated:
                params["limit"] = _GLM_PAGE_SIZE
            data = await self._call("GET", "files", action="list files", params=params)
            page = file_page(data)
            files.extend(page)
            if not (self.provider.list_is_paginated and data.get("has_more") is True and page):
                return files
            params["after"] = files[-1].id

    async def retrieve(self, file_id: str) -> FileObject:
        """The provider's description of `file_id` (through the listing where there is no retrieve call).

        Raises:
            NotFoundError: the provider has no such file.
        """
        _check_file_id(file_id)
        if self.provider.has_retrieve:
            data = await self._call("GET", f"files/{quote(file_id, safe='')}", action=f"retrieve {file_id}")
            return file_object(data)
        for file in await self.list():
            if file.id == file_id:
                return file
        raise NotFoundError(
            f"{self.provider.name} lists no file_id={file_id!r}; check the id, it may have been deleted",
            provider=self.provider.name,
            status=404,
        )

    async def delete(self, file_id: str) -> None:
        """Delete `file_id` at the provider."""
        _check_file_id(file_id)
        await self._call("DELETE", f"files/{quote(file_id, safe='')}", action=f"delete {file_id}")

    async def find_uploaded(self, *, filename: str, size: int, created_after: float) -> FileObject | None:
        """The newest stored file named `filename` with `size` bytes created at or after `created_after`.

        Used after a lost answer (and by the rollout's fallback) to adopt a file the provider did store,
        instead of sending it a second time. ``created_after`` is compared less the settings'
        ``reconcile_skew``, as provider clocks drift and ``created_at`` has whole seconds.

        A file this client's uploads already returned is never offered, so concurrent uploads of identical
        files do not adopt each other's. A sibling upload still waiting for its own answer cannot be told
        apart: that would take an idempotency key, which neither provider offers.
        """
        earliest = created_after - self.settings.reconcile_skew
        matches = [
            file
            for file in await self.list()
            if file.filename == filename
            and file.bytes == size
            and file.created_at >= earliest
            and file.id not in self._claimed
        ]
        return max(matches, key=lambda file: file.created_at, default=None)

    async def download(
        self,
        file_id: str,
        dest_dir: str | os.PathLike[str],
        *,
        filename: str | None = None,
        overwrite: bool = False,
        expected_sha256: str | None = None,
        expected_size: int | None = None,
        progress: Progress | None = None,
    ) -> Path:
        """Stream `file_id` into `dest_dir` and return where it landed.

        The name comes from `filename`, else the response's Content-Disposition, else the provider's
        metadata, always sanitised and always directly inside `dest_dir`. An existing name is kept and
        the new file gets `` (1)``, `` (2)``... unless `overwrite`. Concurrent calls for the same
        (provider, file_id, dest_dir) on this client share one transfer and its outcome; the first
        caller's options apply to all of them.

        Raises:
            ConfigError: `dest_dir` is not a writable directory.
            NotFoundError: the provider has no such file.
            TransferIncompleteError: the transfer kept breaking before the last byte.
            IntegrityError: the size or SHA-256 differs from what was expected.
            TransportError: the connection failed on every attempt.
        """
        _check_file_id(file_id)
        directory = Path(await asyncio.to_thread(os.path.realpath, dest_dir))
        if not await aiofiles.os.path.isdir(directory):
            raise ConfigError(f"dest_dir={os.fspath(dest_dir)!r} is not a directory; create it first")

        async def provider_filename() -> str:
            return (await self.retrieve(file_id)).filename

        def start() -> Awaitable[Path]:
            return download_to(
                self._http,
                self.provider,
                self.settings,
                file_id=file_id,
                dest_dir=directory,
                filename=filename,
                overwrite=overwrite,
                expected_sha256=expected_sha256,
                expected_size=expected_size,
                progress=progress,
                provider_filename=provider_filename,
            )

        return await self._downloads.run((self.provider.name, file_id, directory), start)


def _check_file_id(file_id: str) -> None:
    if not isinstance(file_id, str) or not file_id.strip():
        raise ConfigError(f"file_id={file_id!r} must be a non-empty string")
