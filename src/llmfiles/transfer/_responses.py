"""Reading the provider's answers, shared by the async client and the legacy arm.

A body that is not the JSON we expect is a malformed answer, not a verdict: it becomes a `TransportError`,
the class retries and the rollout's fallback treat as "nothing trustworthy came back". One copy here keeps
both arms refusing exactly the same bodies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from llmfiles._errors import TransportError
from llmfiles.transfer._models import FileObject


def json_body(response: httpx.Response) -> Any:
    """The decoded JSON body; `TransportError` when it is not JSON."""
    try:
        return response.json()
    except ValueError as exc:
        raise TransportError(
            f"the provider answered status={response.status_code} with a body that is not JSON; "
            "the answer is malformed, retry the call"
        ) from exc


def file_object(data: Any) -> FileObject:
    """A decoded file object (upload or retrieve answer); `TransportError` when it is not one."""
    if not isinstance(data, Mapping):
        raise TransportError("the provider's file object is not a JSON object; retry the call")
    return FileObject.from_json(data)


def file_page(data: Any) -> list[FileObject]:
    """The files of one decoded listing page; `TransportError` when it has no ``data`` array."""
    page = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(page, list):
        raise TransportError("the provider's file list has no 'data' array; retry the call")
    return [FileObject.from_json(item) for item in page]
