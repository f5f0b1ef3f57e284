"""``POST /upload``: spool the body, upload it once per content through the dispatcher, answer its id.

Per request the rollout's `Dispatcher` picks the arm by the caller's user id (``X-User``) and leaves one
event in the JSONL log, the recorder and the Prometheus metrics. With an upload registry identical
content for the same purpose goes to the provider once: the others (concurrent or later) get the same
file id, marked ``"deduplicated": true``, and leave no event, since no arm ran.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from harness.service._dedup import release_held, upload_once
from harness.service._errors import BAD_INPUT, error_response, failure
from harness.service._lifespan import Dedup, Live, live
from harness.service._spool import Spooled, SpoolsBusyError, spool
from llmfiles import ClaimLostError, LLMFilesError, RegistryError
from llmfiles.providers import KIMI
from llmfiles.registry import ContentKey
from llmfiles.transfer import AsyncFilesClient

__all__ = ["upload"]


async def upload(request: Request) -> Response:
    """Raw body (name from ``?name=``) or multipart field ``file``; the answer is the ledger's line."""
    state = live(request)
    config = state.config
    try:
        async with state.spools.lend(config.body_timeout_s) as slot:
            return await _upload(request, state, slot)
    except SpoolsBusyError:
        message = (
            f"all {config.max_spools} upload slots stayed busy for {config.body_timeout_s:g} s; retry later"
        )
        return failure("ServiceBusy", message, 503, headers={"Retry-After": "1"})


async def _upload(request: Request, state: Live, slot: Path) -> Response:
    config = state.config
    user = request.headers.get("x-user") or uuid.uuid4().hex
    try:
        spooled = await spool(request, slot, max_bytes=config.max_body_bytes)
    except BAD_INPUT as exc:
        return error_response(exc)
    key = ContentKey(KIMI.name, config.purpose, spooled.sha256)
    # The library's messages name the spooled file; the caller sees its own file name instead.
    hide = ((str(spooled.path), spooled.name), (str(config.workdir), "<spool>"))
    try:
        if state.dedup is None:
            file_id, deduplicated = await _send(state, spooled, user), False
        else:
            dedup = state.dedup
            record, deduplicated = await upload_once(
                dedup.registry,
                key,
                size=spooled.size,
                upload=lambda: _send_within_quota(state, dedup, spooled, user),
                metrics=dedup.metrics,
            )
            assert record.file_id is not None  # ensure_uploaded answers only ready records
            file_id = record.file_id
    except ClaimLostError as exc:
        # Our upload outlived its lease and another request's copy won: ours is an orphan.
        orphan = BackgroundTask(_delete_quietly, state.client, exc.file_id)
        return error_response(exc, hide=hide, background=orphan)
    except LLMFilesError as exc:
        return error_response(exc, hide=hide)
    finally:
        spooled.remove()
    done = {
        "file_id": file_id,
        "sha256": spooled.sha256,
        "bytes": spooled.size,
        "filename": spooled.name,
        "deduplicated": deduplicated,
    }
    # A dedup hit is a line too: its file id is the earlier upload's, which the provider's journal holds.
    state.ledger.record(done)
    cleanup = None
    if config.delete_after:
        if state.dedup is None:
            cleanup = BackgroundTask(_delete_quietly, state.client, file_id)
        else:
            cleanup = BackgroundTask(_release_quietly, state.dedup, key)
    return JSONResponse(done, background=cleanup)


async def _send(state: Live, spooled: Spooled, user: str) -> str:
    result = await state.dispatcher.upload(spooled.path, purpose=state.config.purpose, key=user)
    return result.file.id


async def _send_within_quota(state: Live, dedup: Dedup, spooled: Spooled, user: str) -> str:
    await dedup.guard.make_room(spooled.size)
    return await _send(state, spooled, user)


async def _delete_quietly(client: AsyncFilesClient, file_id: str) -> None:
    """Best-effort clean-up after the answer went out; a failure only leaves a file behind."""
    with contextlib.suppress(LLMFilesError):
        await client.delete(file_id)


async def _release_quietly(dedup: Dedup, key: ContentKey) -> None:
    """Best-effort release after the answer went out; a failure only keeps the file referenced."""
    with contextlib.suppress(RegistryError):
        record = await release_held(dedup.registry, key)
        if record is not None and record.refcount == 0:
            dedup.cleaner.request()
