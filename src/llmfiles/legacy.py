"""The old synchronous path, kept on purpose: the rollout's control arm and the benchmark baseline.

`LegacyFilesClient` behaves the way the code it replaces did: synchronous, the whole file read into
memory, a new connection (a fresh ``httpx.Client``) for every call, no retries, blocking whatever thread
calls it (inside an event loop, the whole loop). Do not "improve" it: its value is being the old
behaviour, so the rollout compares the new arm against what production really ran, and the benchmarks
measure the claims against the real baseline.

Two things are deliberately not old behaviour, because keeping them would be a vulnerability, not a
baseline: downloaded names are sanitised and joined safely, and provider errors map to the same error
tree as the async arm (so the rollout compares outcomes by meaning).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import httpx

from llmfiles._errors import ConfigError
from llmfiles.providers import ProviderSpec
from llmfiles.transfer import (
    FileObject,
    UploadResult,
    parse_content_disposition,
    safe_join,
    sanitize_filename,
)
from llmfiles.transfer._client import _tls_context
from llmfiles.transfer._failures import provider_error, transport_error
from llmfiles.transfer._headers import with_auth
from llmfiles.transfer._local import check_upload, unreadable, unwritable
from llmfiles.transfer._responses import file_object, file_page, json_body
from llmfiles.transfer._urls import base_url_for

__all__ = ["LegacyFilesClient"]


class LegacyFilesClient:
    """The old synchronous Files API client (control arm and baseline; see the module docstring).

    Args:
        provider: which provider (`KIMI`, `GLM`).
        api_key: the bearer key; it never appears in errors or reprs.
        base_url: the API root; the provider's public root when None.
        timeout: one timeout for every phase, in seconds, as the old code had.
        default_headers: extra headers on every request, as `AsyncFilesClient` takes them;
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
        timeout: float = 60.0,
        default_headers: Mapping[str, str] | None = None,
    ) -> None:
        if not api_key:
            raise ConfigError(f"api_key is empty; set {provider.api_key_env} or pass api_key=")
        self.provider = provider
        self.base_url = base_url_for(provider, base_url)
        self.timeout = timeout
        self._headers = with_auth(default_headers, api_key)

    def __repr__(self) -> str:
        return f"LegacyFilesClient(provider={self.provider.name!r}, base_url={self.base_url!r})"

    def _request(self, method: str, path: str, *, action: str, **kwargs: object) -> httpx.Response:
        # A fresh client per call: a new TCP connection every time, exactly the old cost. The TLS
        # context is the process's shared one (as the async arm's): httpx would otherwise parse the CA
        # bundle for every call, even for a plain-http URL, ~40 ms of CPU holding the GIL, which in a
        # load run starved the other arm's event loop far beyond what the old service's I/O did.
        try:
            with httpx.Client(
                base_url=self.base_url + "/",
                headers=self._headers,
                timeout=self.timeout,
                verify=_tls_context(),
            ) as client:
                response = client.request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            raise transport_error(self.provider, exc, action=action) from exc
        if not response.is_success:
            raise provider_error(self.provider, response, now=time.time())
        return response

    def upload(self, path: str | os.PathLike[str], *, purpose: str) -> UploadResult:
        """Read the whole file into memory and post it in one request.

        Raises the same errors as `AsyncFilesClient.upload`, without any retry.
        """
        path = Path(path)
        self.provider.limit_for(purpose)
        try:
            # The size and purpose checks are shared with the async arm: both refuse the same files.
            size = check_upload(self.provider, path, purpose, path.stat())
            data = path.read_bytes()
        except OSError as exc:
            raise unreadable(path, exc) from exc
        response = self._request(
            "POST",
            "files",
            action=f"upload {path.name}",
            files={"file": (path.name, data, "application/octet-stream")},
            data={"purpose": purpose},
        )
        file = file_object(json_body(response))
        return UploadResult(file=file, sha256=hashlib.sha256(data).hexdigest(), size=size, attempts=1)

    def download(self, file_id: str, dest_dir: str | os.PathLike[str]) -> Path:
        """Read the whole body into memory, then write it under the provider's (sanitised) name.

        An existing file of that name is overwritten, as before; the write is not atomic, as before.
        """
        response = self._request(
            "GET", f"files/{quote(file_id, safe='')}/content", action=f"download {file_id}"
        )
        header = response.headers.get("Content-Disposition")
        name = (parse_content_disposition(header) if header else None) or file_id
        target = safe_join(dest_dir, sanitize_filename(name))
        try:
            target.write_bytes(response.content)
        except OSError as exc:
            raise unwritable(dest_dir, exc) from exc
        return target

    def list(self) -> list[FileObject]:
        """The files the first page of the listing shows (the old code never paged)."""
        return file_page(json_body(self._request("GET", "files", action="list files")))

    def delete(self, file_id: str) -> None:
        """Delete `file_id` at the provider."""
        self._request("DELETE", f"files/{quote(file_id, safe='')}", action=f"delete {file_id}")
