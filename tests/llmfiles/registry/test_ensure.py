"""`ensure_uploaded`: the claim protocol as callers use it, against both backends."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from llmfiles.registry import (
    ClaimDecision,
    ContentKey,
    RecordState,
    UploadRegistry,
    ensure_uploaded,
    open_registry,
)

from .conftest import Backend, FakeClock

pytestmark = pytest.mark.integration

KEY = ContentKey("glm", "batch", hashlib.sha256(b"shared").hexdigest())


class Uploads:
    """A provider stand-in that counts uploads and can hold them until the waiters have shown up."""

    def __init__(self, *, hold_until_waits: int = 0, fail_first: int = 0) -> None:
        self.started = 0
        self.waits = 0
        self.hold_until_waits = hold_until_waits
        self.fail_first = fail_first

    async def sleep(self, seconds: float) -> None:
        self.waits += 1
        await asyncio.sleep(0)  # let the uploader run; no wall-clock waiting in tests

    async def upload(self) -> str:
        self.started += 1
        attempt = self.started
        while self.waits < self.hold_until_waits:
            await asyncio.sleep(0)
        if attempt <= self.fail_first:
            raise ConnectionResetError(f"upload {attempt} failed")
        return f"file-{attempt}"


async def test_fifty_callers_one_upload_fifty_references(backend: Backend, clock: FakeClock) -> None:
    uploads = Uploads(hold_until_waits=49)
    hosts = [open_registry(backend.url, clock=clock) for _ in range(2)]
    for host in hosts:
        await host.open()
    try:
        records = await asyncio.gather(
            *(
                ensure_uploaded(hosts[n % 2], KEY, size=9, upload=uploads.upload, sleep=uploads.sleep)
                for n in range(50)
            )
        )
        final = await hosts[0].get(KEY)
    finally:
        for host in hosts:
            await host.close()
    assert uploads.started == 1
    assert {record.file_id for record in records} == {"file-1"}
    assert final is not None
    assert (final.state, final.refcount) == (RecordState.READY, 50)


async def test_a_failed_upload_is_abandoned_and_a_waiter_uploads_next(registry: UploadRegistry) -> None:
    uploads = Uploads(hold_until_waits=3, fail_first=1)
    outcomes = await asyncio.gather(
        *(
            ensure_uploaded(registry, KEY, size=9, upload=uploads.upload, sleep=uploads.sleep)
            for _ in range(4)
        ),
        return_exceptions=True,
    )
    failures = [o for o in outcomes if isinstance(o, BaseException)]
    assert [type(f) for f in failures] == [ConnectionResetError]
    assert uploads.started == 2
    final = await registry.get(KEY)
    assert final is not None
    assert (final.file_id, final.refcount) == ("file-2", 3)


async def test_a_cancelled_upload_gives_the_claim_back(registry: UploadRegistry) -> None:
    started = asyncio.Event()

    async def never_finishes() -> str:
        started.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    task = asyncio.create_task(ensure_uploaded(registry, KEY, size=9, upload=never_finishes))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await registry.get(KEY) is None
    assert (await registry.claim(KEY, size=9)).decision is ClaimDecision.UPLOAD


async def test_polls_back_off_up_to_the_cap(registry: UploadRegistry) -> None:
    await registry.claim(KEY, size=9)  # someone else is uploading and never finishes
    pauses: list[float] = []

    async def sleep(seconds: float) -> None:
        pauses.append(seconds)
        if len(pauses) == 6:
            raise TimeoutError("gave up")

    with pytest.raises(TimeoutError):
        await ensure_uploaded(
            registry, KEY, size=9, upload=Uploads().upload, first_poll_s=0.1, max_poll_s=0.5, sleep=sleep
        )
    assert pauses == [0.1, 0.2, 0.4, 0.5, 0.5, 0.5]


@pytest.mark.parametrize(("first", "most"), [(0.0, 1.0), (2.0, 1.0), (-1.0, 1.0)])
async def test_bad_poll_intervals_are_refused(registry: UploadRegistry, first: float, most: float) -> None:
    with pytest.raises(ValueError, match=f"first_poll_s={first!r}, max_poll_s={most!r}"):
        await ensure_uploaded(
            registry, KEY, size=9, upload=Uploads().upload, first_poll_s=first, max_poll_s=most
        )
    assert await registry.get(KEY) is None
