"""The async Files API client: streaming upload and download over one pooled connection per provider."""

from __future__ import annotations

import asyncio
import builtins
import functools
import hashlib
import os
import ssl
import string
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping
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
    TransportError,
    UploadMayExistError,
)
from llmfiles.providers import ProviderSpec
from llmfiles.transfer._attempts import with_retries
from llmfiles.transfer._download import download_to
from llmfiles.transfer._headers import with_auth
from llmfiles.transfer._limit import process_admission, process_limit
from llmfiles.transfer._local import check_upload, file_sha256, unreadable
from llmfiles.transfer._models import FileObject, FoundUpload, Obtained, Progress, UploadResult
from llmfiles.transfer._multipart import MultipartFileBody
from llmfiles.transfer._reconcile import KeyedLocks, candidates, in_flight, settle, uploads_in_flight
from llmfiles.transfer._responses import file_object, file_page, json_body
from llmfiles.transfer._settings import TransferSettings
from llmfiles.transfer._singleflight import SingleFlight
from llmfiles.transfer._transport import LargeReadTransport
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
        limits = self.settings.httpx_limits()
        # A mount, not `transport=`: httpx drops the environment's proxies when given a transport,
        # while a proxy's mount outranks "all://" and still wins for the URLs it covers.
        mounts = None if transport else {"all://": LargeReadTransport(verify=_tls_context(), limits=limits)}
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=with_auth(default_headers, api_key),
            timeout=self.settings.httpx_timeout(),
            limits=limits,
            transport=transport,
            mounts=mounts,
            verify=_tls_context(),
        )
        self._downloads: SingleFlight[Path] = SingleFlight()
        self._claimed: OrderedDict[str, None] = OrderedDict()
        self._same_name = KeyedLocks()

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
        async with process_limit(self.settings.max_concurrency, self.settings.limit_group):
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

        Limits are checked before a byte is sent. Exactly once: after an answer that leaves open whether
        the file was stored (lost or malformed answer, a timeout, any 5xx) the provider's listing is
        searched before sending again, and a file found there is adopted only when it is proven to be
        this upload's (see `Obtained`): by its content's SHA-256 where ``/content`` serves the stored
        bytes; otherwise only as the single candidate created after our first send began, marked
        ``obtained=RECONCILED_UNVERIFIED``. After a timeout the listing is searched again through
        ``settings.reconcile_grace`` before a second send. What cannot be settled raises
        `UploadMayExistError` listing the candidates, never a silent second copy or someone else's file.

        Uploads of the same name and size through one client are serialised (one at a time, in call
        order), so they can never take each other's file for their own.

        Not guaranteed: a first copy that lands after the grace period still makes a second one; and an
        unverified adoption trusts that no other process uploaded a file of the same name and size in the
        same seconds.

        Raises:
            UnsupportedPurposeError: the provider does not know `purpose`.
            FileTooLargeError: the file exceeds the purpose's limit.
            ConfigError: the file cannot be read, or its name is not valid UTF-8 (a non-UTF-8 name from
                another system: the part announces it as UTF-8); nothing is sent.
            IntegrityError: the file changed size while it was being sent.
            UploadMayExistError: the answer was lost and no stored file could be proven to be this one,
                or the listing could not be read to look (the cause says why).
            ProviderError: the provider refused (subclasses by meaning), after retries where they apply.
            TransportError: the connection failed on every attempt.
        """
        # Queue before any start-up work, so a burst of uploads cannot freeze the loop (see _limit).
        async with process_admission(self.settings.max_concurrency, self.settings.limit_group):
            return await self._start_upload(Path(path), purpose=purpose, progress=progress)

    async def _start_upload(self, path: Path, *, purpose: str, progress: Progress | None) -> UploadResult:
        self.provider.limit_for(purpose)  # an unknown purpose is refused before touching the disk
        try:
            stat = await aiofiles.os.stat(path)
        except OSError as exc:
            raise unreadable(path, exc) from exc
        size = check_upload(self.provider, path, purpose, stat)
        key = (path.name, size)
        async with self._same_name.hold(key):
            with in_flight((self.base_url, *key)):
                return await self._upload(path, size, purpose, progress)

    async def _upload(self, path: Path, size: int, purpose: str, progress: Progress | None) -> UploadResult:
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

        def sent(response: httpx.Response) -> tuple[FileObject, Obtained]:
            return _file_object(response), Obtained.SENT

        async def sha256() -> str:
            # The hash of the last complete pass; a pass that broke off computed none, so read the file.
            if body.sha256 is not None:
                return body.sha256
            return await asyncio.to_thread(file_sha256, path, self.settings.chunk_size)

        async def reconcile(failure: LLMFilesError) -> tuple[FileObject, Obtained] | None:
            try:
                return await self._settle(
                    filename=path.name,
                    size=size,
                    purpose=purpose,
                    started=started,
                    sha256=sha256,
                    others_in_flight=uploads_in_flight((self.base_url, path.name, size)) - 1,
                )
            except UploadMayExistError:
                raise
            except LLMFilesError as exc:
                raise UploadMayExistError(
                    f"upload {path.name} to {self.provider.name}: the answer was lost ({failure}) and "
                    f"looking for the file in the listing failed ({exc}); it may exist at the provider. "
                    "List the files and look for it before uploading again",
                    provider=self.provider.name,
                    filename=path.name,
                ) from exc

        (file, obtained), attempts, _ = await with_retries(
            self.provider,
            self.settings,
            action=f"upload {path.name}",
            attempt=attempt,
            parse=sent,
            reconcile=reconcile,
        )
        self._claim(file.id)
        return UploadResult(file=file, sha256=await sha256(), size=size, attempts=attempts, obtained=obtained)

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

    async def find_uploaded(
        self,
        *,
        filename: str,
        size: int,
        created_after: float,
        purpose: str | None = None,
        sha256: str | None = None,
    ) -> FoundUpload | None:
        """The stored file that is provably the upload of `filename` begun at `created_after`, or None.

        Used by the rollout's fallback, after the async arm failed, to adopt a file the provider did store
        instead of sending it a second time; `upload` runs the same rules itself. Candidates are files
        of that name and size (and `purpose`, when given) created at or after `created_after` less the
        settings' ``reconcile_skew``, that no upload of this client already returned. With `sha256`, where
        the provider serves the stored bytes, a candidate is proven by its content
        (`Obtained.RECONCILED_VERIFIED`). Without, or where it does not (Kimi ``file-extract``), the single
        candidate is returned only when it was created in a later second than `created_after` and no other
        upload of that name and size is in flight in this process (`Obtained.RECONCILED_UNVERIFIED`).
        `UploadResult.adopted` turns the answer into the caller's result with that label.

        Returns:
            The file and how it was proven, or None when no candidate can be this upload (sending again
            is safe).

        Raises:
            UploadMayExistError: candidates exist but none is proven to be this upload.
            ProviderError, TransportError: the listing (or a candidate's content) could not be read.
        """
        settled = await self._settle(
            filename=filename,
            size=size,
            purpose=purpose,
            started=created_after,
            sha256=None if sha256 is None else functools.partial(_ready, sha256.lower()),
            others_in_flight=uploads_in_flight((self.base_url, filename, size)),
        )
        if settled is None:
            return None
        file, obtained = settled
        self._claim(file.id)
        return FoundUpload(file=file, obtained=obtained)

    async def _settle(
        self,
        *,
        filename: str,
        size: int,
        purpose: str | None,
        started: float,
        sha256: Callable[[], Awaitable[str]] | None,
        others_in_flight: int,
    ) -> tuple[FileObject, Obtained] | None:
        found = candidates(
            await self.list(),
            filename=filename,
            size=size,
            purpose=purpose,
            earliest=started - self.settings.reconcile_skew,
            claimed=self._claimed.__contains__,
        )
        return await settle(
            self.provider,
            found,
            filename=filename,
            started=started,
            sha256=sha256,
            content_sha256=self._content_sha256,
            others_in_flight=others_in_flight,
        )

    async def _content_sha256(self, file: FileObject) -> str | None:
        """SHA-256 of what ``/content`` serves for `file`, streamed (constant memory); None when it is gone.

        A body of another length than the listing's ``bytes`` (cut short, or a 200 that is not the file)
        is retried like a broken transfer: a wrong hash here would make our own file look like someone
        else's and send a second copy.
        """
        url = f"files/{quote(file.id, safe='')}/content"
        digest = hashlib.sha256()
        received = 0

        async def attempt() -> httpx.Response:
            nonlocal digest, received
            digest, received = hashlib.sha256(), 0
            async with (
                process_limit(self.settings.max_concurrency, self.settings.limit_group),
                self._http.stream("GET", url, headers={"Accept-Encoding": "identity"}) as response,
            ):
                if not response.is_success:
                    await response.aread()
                    return response
                async for chunk in response.aiter_bytes():
                    digest.update(chunk)
                    received += len(chunk)
            return response

        def whole(_response: httpx.Response) -> str:
            if received != file.bytes:
                raise TransportError(
                    f"content of {file.id}: got {received} bytes but the listing says {file.bytes}; "
                    "the answer is not the whole file"
                )
            return digest.hexdigest()

        try:
            hexdigest, _, _ = await with_retries(
                self.provider,
                self.settings,
                action=f"check content of {file.id}",
                attempt=attempt,
                parse=whole,
            )
        except NotFoundError:
            return None
        return hexdigest

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
        metadata, always sanitised and always directly inside `dest_dir`. Where ``/content`` is not the
        uploaded bytes but the provider's extracted text (Kimi ``file-extract``), the metadata name gets
        ``.extracted.json`` appended, so ``report.pdf`` never names a JSON document. The bytes go to a
        temporary file in `dest_dir` that gets its name only once complete and on disk, `filename` given
        or not. An existing name is kept and the new file gets `` (1)``, `` (2)``... unless `overwrite`.
        Concurrent calls for the same file into the same directory with the same options share one
        transfer and its outcome; a call with other options (name, overwrite, expected hash or size) runs
        its own.

        Raises:
            ConfigError: `dest_dir` is not a writable directory; `expected_sha256` is not 64 hex digits
                (checked before any request), or it did not match a file whose ``/content`` is extracted
                text (Kimi ``file-extract``: a hash of the original can never match; refused after the
                first download instead of retrying).
            NotFoundError: the provider has no such file.
            TransferIncompleteError: the transfer kept breaking before the last byte.
            IntegrityError: the size or SHA-256 differs from what was expected.
            TransportError: the connection failed on every attempt.
        """
        _check_file_id(file_id)
        if expected_sha256 is not None:
            expected_sha256 = _check_sha256(expected_sha256)
        async with process_admission(self.settings.max_concurrency, self.settings.limit_group):  # see upload
            return await self._download(
                file_id, dest_dir, filename, overwrite, expected_sha256, expected_size, progress
            )

    async def _download(
        self,
        file_id: str,
        dest_dir: str | os.PathLike[str],
        filename: str | None,
        overwrite: bool,
        expected_sha256: str | None,
        expected_size: int | None,
        progress: Progress | None,
    ) -> Path:
        directory = Path(await asyncio.to_thread(os.path.realpath, dest_dir))
        if not await aiofiles.os.path.isdir(directory):
            raise ConfigError(f"dest_dir={os.fspath(dest_dir)!r} is not a directory; create it first")

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
                describe=functools.partial(self.retrieve, file_id),
            )

        key = (self.provider.name, file_id, directory, filename, overwrite, expected_sha256, expected_size)
        return await self._downloads.run(key, start)


def _check_sha256(value: str) -> str:
    if not (isinstance(value, str) and len(value) == 64 and all(c in string.hexdigits for c in value)):
        raise ConfigError(f"expected_sha256={value!r} must be 64 hex digits (a SHA-256 digest)")
    return value.lower()


async def _ready(value: str) -> str:
    return value


def _check_file_id(file_id: str) -> None:
    if not isinstance(file_id, str) or not file_id.strip():
        raise ConfigError(f"file_id={file_id!r} must be a non-empty string")
