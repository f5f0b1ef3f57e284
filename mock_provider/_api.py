"""The Files API operations of both providers: upload, list, retrieve, content, delete.

Provider differences come from the `Provider` tables; the few behaviours the tables cannot express
(GLM's paginated list, the absent GLM retrieve) are switched by flags in those tables.
"""

from __future__ import annotations

import json
import mimetypes
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

from mock_provider._providers import PROVIDERS, ContentKind, Provider
from mock_provider._state import MockState
from mock_provider._store import StoredFile
from mock_provider._upload import UploadFormatError, boundary_of, receive_upload
from mock_provider._wire import FileSlice, RequestBody, Response

_EXTRACT_TEXT_MAX = 1024 * 1024
_GLM_PAGE_DEFAULT = 20  # *guess*: undocumented
_RANGE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass(frozen=True, slots=True)
class Request:
    """A request head, decoded."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased

    @classmethod
    def from_target(cls, method: str, target: str, headers: dict[str, str]) -> Request:
        parts = urlsplit(target)
        return cls(method, parts.path, dict(parse_qsl(parts.query)), headers)


@dataclass(frozen=True, slots=True)
class Target:
    """Which operation of which provider a request asks for."""

    provider: Provider
    operation: str
    file_id: str | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    response: Response
    file_id: str | None = None
    sha256: str | None = None


def route(method: str, path: str) -> Target | None:
    """The provider operation for `method` and `path`, or None (not a Files API route)."""
    for provider in PROVIDERS.values():
        root = provider.prefix + "/files"
        if path.rstrip("/") != root and not path.startswith(root + "/"):
            continue
        rest = [part for part in path[len(root) :].split("/") if part]
        if not rest:
            return {"POST": Target(provider, "upload"), "GET": Target(provider, "list")}.get(method)
        if len(rest) == 1:
            ops = {"GET": "retrieve", "DELETE": "delete"}
            return Target(provider, ops[method], rest[0]) if method in ops else None
        if len(rest) == 2 and rest[1] == "content" and method == "GET":
            return Target(provider, "content", rest[0])
    return None


def json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return Response(status, (("Content-Type", "application/json"), *headers), body)


def error_response(
    provider: Provider, kind: str, message: str, headers: tuple[tuple[str, str], ...] = ()
) -> Response:
    status, payload = provider.error(kind, message)
    return json_response(status, payload, headers)


def authorised(request: Request) -> bool:
    """Any bearer key passes except an empty one and one starting with ``bad`` (the test hook)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    key = key.strip()
    return scheme.lower() == "bearer" and bool(key) and not key.startswith("bad")


class FilesApi:
    """Answers Files API requests against a `MockState`."""

    def __init__(self, state: MockState) -> None:
        self._state = state

    async def handle(self, target: Target, request: Request, body: RequestBody) -> Outcome:
        provider = target.provider
        if not authorised(request):
            message = "Invalid Authentication: send 'Authorization: Bearer <api key>' with a valid key"
            return Outcome(error_response(provider, "unauthorized", message))
        if target.operation == "upload":
            return await self._upload(provider, request, body)
        if target.operation == "list":
            return Outcome(self._list(provider, request))
        assert target.file_id is not None  # route() gives every other operation an id
        stored = self._state.store.get(provider.name, target.file_id)
        if stored is None or (target.operation == "retrieve" and not provider.has_retrieve):
            message = f"file_id={target.file_id!r} not found; list the files to see which exist"
            return Outcome(error_response(provider, "not_found", message), target.file_id)
        if target.operation == "retrieve":
            return Outcome(json_response(200, _file_json(provider, stored)), stored.id)
        if target.operation == "content":
            return Outcome(_content(provider, stored, request), stored.id)
        self._state.store.delete(provider.name, stored.id)
        return Outcome(json_response(200, {"id": stored.id, "object": "file", "deleted": True}), stored.id)

    async def _upload(self, provider: Provider, request: Request, body: RequestBody) -> Outcome:
        try:
            boundary = boundary_of(request.headers.get("content-type", ""))
        except UploadFormatError as exc:
            return Outcome(error_response(provider, "bad_request", str(exc)))
        state = self._state
        temp = state.store.temp_path()
        try:

            def cap_for(purpose: str | None) -> int:
                rule = provider.purposes.get(purpose) if purpose is not None else None
                return state.max_bytes(provider, rule)

            try:
                received = await receive_upload(body.chunks(), boundary, temp, cap_for)
            except UploadFormatError as exc:
                return Outcome(error_response(provider, "bad_request", str(exc)))
            purpose = received.fields.get("purpose")
            refusal = self._refusal(provider, received.has_file, purpose, received.size)
            if refusal is not None:
                return Outcome(refusal)
            assert purpose is not None  # _refusal() checked it
            now = state.clock()
            stored = state.store.add(
                provider=provider.name,
                file_id=state.new_file_id(provider, now),
                filename=received.filename or "file",
                purpose=purpose,
                size=received.size,
                created_at=int(now),
                sha256=received.sha256,
                temp=temp,
            )
            return Outcome(json_response(200, _file_json(provider, stored)), stored.id, stored.sha256)
        finally:
            temp.unlink(missing_ok=True)  # a no-op once the file was moved into place

    def _refusal(self, provider: Provider, has_file: bool, purpose: str | None, size: int) -> Response | None:
        """The provider's error for an upload it would not accept, or None."""
        if not has_file:
            return error_response(
                provider, "bad_request", "no file: send the bytes as multipart field 'file'"
            )
        if not purpose:
            accepted = ", ".join(provider.purposes)
            return error_response(
                provider, "bad_request", f"purpose is missing: send multipart field 'purpose' ({accepted})"
            )
        rule = provider.purposes.get(purpose)
        if rule is None:
            accepted = ", ".join(provider.purposes)
            return error_response(
                provider, "bad_request", f"purpose={purpose!r} is invalid; use one of: {accepted}"
            )
        if size == 0:
            return error_response(
                provider, "bad_request", "File size is zero, please confirm and re-upload the file"
            )
        limit = self._state.max_bytes(provider, rule)
        if size > limit:
            kind = "over_100mb" if size > 100 * 1024 * 1024 else "too_large"
            return error_response(
                provider,
                kind,
                f"File size is too large, max file size is {_mb(limit)}, "
                "please confirm and re-upload the file",
            )
        store = self._state.store
        held = store.count(provider.name)
        if held >= provider.max_files or (
            rule.max_files is not None and store.count(provider.name, purpose) >= rule.max_files
        ):
            most = min(provider.max_files, rule.max_files or provider.max_files)
            return error_response(
                provider,
                "too_many",
                f"The number of files you have uploaded exceeded the max file count {most}, "
                "please delete previous uploaded files",
            )
        total = provider.max_total_bytes
        if (
            total is not None
            and self._state.max_file_bytes is None
            and store.total_bytes(provider.name) + size > total
        ):
            return error_response(
                provider,
                "too_many",
                f"The total size of your files would exceed {_mb(total)}, "
                "please delete previous uploaded files",
            )
        return None

    def _list(self, provider: Provider, request: Request) -> Response:
        purpose = request.query.get("purpose")
        files = [f for f in self._state.store.files(provider.name) if purpose in (None, "", f.purpose)]
        after = request.query.get("after")
        if not provider.paginated_list:
            # *guess*: Kimi documents no pagination, but the openai SDK iterates pages by asking again
            # with after=<last id>; answering that with what follows (nothing) ends its loop, as OpenAI does.
            if after:
                ids = [f.id for f in files]
                files = files[ids.index(after) + 1 :] if after in ids else []
            return json_response(200, {"object": "list", "data": [_file_json(provider, f) for f in files]})
        order = request.query.get("order", "created_at")
        raw_limit = request.query.get("limit", str(_GLM_PAGE_DEFAULT))
        if order not in ("created_at", "desc", "asc"):
            return error_response(provider, "bad_request", f"order={order!r} is invalid; use created_at")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
            return error_response(provider, "bad_request", f"limit={raw_limit!r} is invalid; use 1..100")
        if order != "asc":  # *guess*: "created_at" sorts newest first, as OpenAI's list does
            files.reverse()
        if after:
            ids = [f.id for f in files]
            if after not in ids:
                return error_response(provider, "bad_request", f"after={after!r} is not a known file id")
            files = files[ids.index(after) + 1 :]
        page = files[: int(raw_limit)]
        return json_response(
            200,
            {
                "object": "list",
                "data": [_file_json(provider, f) for f in page],
                "has_more": len(files) > len(page),
            },
        )


def _file_json(provider: Provider, stored: StoredFile) -> dict[str, Any]:
    full = {
        "id": stored.id,
        "object": "file",
        "bytes": stored.size,
        "created_at": stored.created_at,
        "filename": stored.filename,
        "purpose": stored.purpose,
        "status": "ok",
        "status_details": "",
    }
    return {key: full[key] for key in provider.file_keys}


def _content(provider: Provider, stored: StoredFile, request: Request) -> Response:
    kind = provider.purposes[stored.purpose].content
    if kind is ContentKind.EXTRACT:
        file_type = mimetypes.guess_type(stored.filename)[0] or "application/octet-stream"
        return json_response(
            200,
            {
                "content": _extracted_text(stored),
                "file_type": file_type,
                "filename": stored.filename,
                "title": "",
                "type": "file",
            },
        )
    if kind is ContentKind.NONE:
        return error_response(
            provider,
            "bad_request",
            f"purpose={stored.purpose!r} has no content; content is offered for: "
            + ", ".join(p for p, r in provider.purposes.items() if r.content is not ContentKind.NONE),
        )
    return _bytes_response(stored, request.headers.get("range"))


def _bytes_response(stored: StoredFile, range_header: str | None) -> Response:
    headers: tuple[tuple[str, str], ...] = (
        ("Content-Type", "application/octet-stream"),
        ("Accept-Ranges", "bytes"),
        ("Content-Disposition", _attachment(stored.filename)),
    )
    match = _RANGE.fullmatch(range_header.strip()) if range_header else None
    if match is None:  # no Range, or a form we do not serve (several ranges): the whole file
        return Response(200, headers, file=FileSlice(stored.path, 0, stored.size))
    start = int(match[1])
    end = min(int(match[2]), stored.size - 1) if match[2] else stored.size - 1
    if start >= stored.size or end < start:
        return Response(416, (*headers, ("Content-Range", f"bytes */{stored.size}")))
    return Response(
        206,
        (*headers, ("Content-Range", f"bytes {start}-{end}/{stored.size}")),
        file=FileSlice(stored.path, start, end - start + 1),
    )


def _attachment(filename: str) -> str:
    ascii_name = filename.encode("ascii", "replace").decode().replace('"', "_").replace("\\", "_")
    # RFC 5987: every byte outside attr-char is percent-encoded, "/" included (a token cannot hold it).
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def _extracted_text(stored: StoredFile) -> str:
    """A deterministic stand-in for text extraction: the text itself when the file is small UTF-8,
    otherwise a line that names the file's size and digest."""
    if stored.size <= _EXTRACT_TEXT_MAX:
        try:
            return stored.path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            pass  # binary content: fall through to the digest line
    return f"{stored.filename}: {stored.size} bytes, sha256 {stored.sha256}"


def _mb(limit: int) -> str:
    return f"{limit // (1024 * 1024)}MB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
