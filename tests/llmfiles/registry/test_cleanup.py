"""`clean_up`: reserve, delete at the provider, forget; failures stay reserved for the next pass."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Iterable

import pytest

from llmfiles import ConfigError, NotFoundError, ServerError
from llmfiles.registry import ClaimDecision, ContentKey, UploadRegistry, clean_up

from .conftest import FakeClock

pytestmark = pytest.mark.integration


def key(n: int) -> ContentKey:
    return ContentKey("glm", "batch", hashlib.sha256(b"%d" % n).hexdigest())


class Provider:
    """Deletes by id; some ids answer 404 or 500, as a real provider may."""

    def __init__(self, *, missing: Iterable[str] = (), failing: Iterable[str] = ()) -> None:
        self.missing, self.failing = set(missing), set(failing)
        self.deleted: list[str] = []

    async def delete(self, file_id: str) -> None:
        if file_id in self.missing:
            raise NotFoundError("no such file", provider="glm", status=404)
        if file_id in self.failing:
            raise ServerError("provider down", provider="glm", status=500)
        self.deleted.append(file_id)


async def idle_files(registry: UploadRegistry, clock: FakeClock, count: int) -> None:
    for n in range(count):
        claim = await registry.claim(key(n), size=10)
        assert claim.decision is ClaimDecision.UPLOAD
        await registry.complete(claim, f"file-{n}")
        await registry.release(key(n))
        clock.advance(1)


async def test_a_pass_deletes_oldest_first_and_keeps_failures_for_later(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    await idle_files(registry, clock, 4)
    provider = Provider(missing={"file-1"}, failing={"file-2"})
    result = await clean_up(registry, "glm", delete=provider.delete, max_files=1, lease_s=60)
    assert [item.file_id for item in result.deleted] == ["file-0", "file-1"]
    assert [(item.file_id, type(error)) for item, error in result.failed] == [("file-2", ServerError)]
    assert provider.deleted == ["file-0"]
    usage = await registry.usage("glm")
    assert (usage.files, usage.deleting) == (1, 1)

    provider.failing.clear()
    assert (await clean_up(registry, "glm", delete=provider.delete, max_files=1)).deleted == ()
    clock.advance(60)
    retried = await clean_up(registry, "glm", delete=provider.delete, max_files=1)
    assert [item.file_id for item in retried.deleted] == ["file-2"]
    assert (await registry.usage("glm")).deleting == 0


async def test_an_unexpected_error_propagates_and_the_file_stays_reserved(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    await idle_files(registry, clock, 1)

    async def broken(file_id: str) -> None:
        raise RuntimeError("bug in the caller's delete")

    with pytest.raises(RuntimeError, match="bug in the caller's delete"):
        await clean_up(registry, "glm", delete=broken, max_files=0)
    assert (await registry.usage("glm")).deleting == 1


class SlowProvider(Provider):
    """Each delete waits a moment, counting how many are in flight at once."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = self.peak = 0

    async def delete(self, file_id: str) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            await asyncio.sleep(0.01)
            await super().delete(file_id)
        finally:
            self.in_flight -= 1


@pytest.mark.parametrize("concurrency", [1, 3])
async def test_a_pass_deletes_at_most_concurrency_files_at_once(
    registry: UploadRegistry, clock: FakeClock, concurrency: int
) -> None:
    """One at a time frees a few files a second at a provider's latency; a busy service needs more."""
    await idle_files(registry, clock, 8)
    provider = SlowProvider()
    result = await clean_up(registry, "glm", delete=provider.delete, max_files=0, concurrency=concurrency)
    assert provider.peak == concurrency
    assert sorted(provider.deleted) == [f"file-{n}" for n in range(8)]
    assert len(result.deleted) == 8
    assert (await registry.usage("glm")).files == 0


async def test_an_unexpected_error_cancels_the_other_deletes(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    await idle_files(registry, clock, 4)
    started: list[str] = []

    async def delete(file_id: str) -> None:
        started.append(file_id)
        if file_id == "file-0":
            raise RuntimeError("bug in the caller's delete")
        await asyncio.sleep(10)  # cancelled, not waited out

    with pytest.raises(RuntimeError, match="bug in the caller's delete"):
        await asyncio.wait_for(clean_up(registry, "glm", delete=delete, max_files=0, concurrency=4), 5)
    assert started == ["file-0", "file-1", "file-2", "file-3"]
    assert (await registry.usage("glm")).deleting == 4


async def test_concurrency_below_one_is_refused(registry: UploadRegistry) -> None:
    with pytest.raises(ConfigError, match="concurrency=0"):
        await clean_up(registry, "glm", delete=Provider().delete, concurrency=0)
