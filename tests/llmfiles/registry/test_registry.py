"""The registry's behaviour, one suite run against both backends (SQLite file, real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib

import pytest

from llmfiles.registry import (
    Claim,
    ClaimDecision,
    ClaimLostError,
    ContentKey,
    RecordState,
    ReferenceCountError,
    RegistryError,
    UploadRegistry,
    open_registry,
)

from .conftest import Backend, FakeClock

pytestmark = pytest.mark.integration


def key(n: int = 0, *, provider: str = "kimi", purpose: str = "file-extract") -> ContentKey:
    return ContentKey(provider, purpose, hashlib.sha256(b"content %d" % n).hexdigest())


async def ready(registry: UploadRegistry, k: ContentKey, size: int = 100, file_id: str | None = None) -> None:
    """Record `k` as uploaded and give its reference back, so it is a clean-up candidate."""
    claim = await registry.claim(k, size=size)
    assert claim.decision is ClaimDecision.UPLOAD
    await registry.complete(claim, file_id or f"file-{k.sha256[:8]}")
    await registry.release(k)


async def test_open_creates_the_schema_once(registry: UploadRegistry, backend: Backend) -> None:
    assert backend.sql("SELECT version FROM llmfiles_registry_schema") == "1"
    async with open_registry(backend.url) as again:
        assert await again.get(key()) is None
    assert backend.sql("SELECT version FROM llmfiles_registry_schema") == "1"


async def test_a_schema_newer_than_the_code_is_refused(registry: UploadRegistry, backend: Backend) -> None:
    backend.sql("INSERT INTO llmfiles_registry_schema (version) VALUES (99)")
    with pytest.raises(RegistryError, match=r"schema version=99, newer than this llmfiles knows \(1\)"):
        await open_registry(backend.url)


async def test_first_claim_uploads_others_wait_then_reuse(registry: UploadRegistry, clock: FakeClock) -> None:
    first = await registry.claim(key(), size=100, lease_s=60)
    assert first.decision is ClaimDecision.UPLOAD
    assert first.token
    assert first.record.state is RecordState.PENDING
    assert first.record.lease_until == clock.now + 60
    second = await registry.claim(key(), size=100)
    assert second.decision is ClaimDecision.WAIT
    assert second.token is None

    done = await registry.complete(first, "file-abc")
    assert (done.state, done.file_id, done.refcount, done.lease_until) == (
        RecordState.READY,
        "file-abc",
        1,
        None,
    )
    third = await registry.claim(key(), size=100)
    assert third.decision is ClaimDecision.REUSE
    assert (third.record.file_id, third.record.refcount) == ("file-abc", 2)
    assert await registry.get(key()) == third.record


async def test_keys_differ_by_provider_and_purpose(registry: UploadRegistry) -> None:
    claims = [
        await registry.claim(key(provider="kimi"), size=1),
        await registry.claim(key(provider="glm"), size=1),
        await registry.claim(key(purpose="batch"), size=1),
    ]
    assert [c.decision for c in claims] == [ClaimDecision.UPLOAD] * 3


async def test_abandon_lets_the_next_claim_upload(registry: UploadRegistry) -> None:
    first = await registry.claim(key(), size=5)
    assert await registry.abandon(first) is True
    assert await registry.get(key()) is None
    assert (await registry.claim(key(), size=5)).decision is ClaimDecision.UPLOAD
    assert await registry.abandon(first) is False


async def test_an_expired_lease_is_taken_over_and_the_late_complete_refused(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    dead = await registry.claim(key(), size=5, lease_s=30)
    clock.advance(29)
    assert (await registry.claim(key(), size=5)).decision is ClaimDecision.WAIT
    clock.advance(1)
    heir = await registry.claim(key(), size=5, lease_s=30)
    assert heir.decision is ClaimDecision.UPLOAD
    assert heir.token != dead.token

    with pytest.raises(ClaimLostError, match="file_id='file-late' is not recorded") as lost:
        await registry.complete(dead, "file-late")
    assert lost.value.file_id == "file-late"
    assert (await registry.complete(heir, "file-heir")).file_id == "file-heir"


async def test_an_expired_claim_still_completes_when_nobody_took_it(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    slow = await registry.claim(key(), size=5, lease_s=10)
    clock.advance(3600)
    assert (await registry.complete(slow, "file-slow")).state is RecordState.READY


async def test_references_count_up_and_down_never_below_zero(registry: UploadRegistry) -> None:
    claim = await registry.claim(key(), size=5)
    await registry.complete(claim, "f1")
    acquired = await registry.acquire(key())
    assert acquired is not None
    assert acquired.refcount == 2
    assert (await registry.release(key())).refcount == 1
    assert (await registry.release(key())).refcount == 0
    with pytest.raises(ReferenceCountError, match="refcount=0 already"):
        await registry.release(key())
    record = await registry.get(key())
    assert record is not None
    assert record.refcount == 0


async def test_release_of_what_was_never_taken_is_refused(registry: UploadRegistry) -> None:
    with pytest.raises(ReferenceCountError, match="no upload is recorded"):
        await registry.release(key())
    await registry.claim(key(), size=5)
    with pytest.raises(ReferenceCountError, match="still pending"):
        await registry.release(key())


async def test_acquire_takes_nothing_unless_ready(registry: UploadRegistry) -> None:
    assert await registry.acquire(key()) is None
    await registry.claim(key(), size=5)
    assert await registry.acquire(key()) is None
    record = await registry.get(key())
    assert record is not None
    assert record.refcount == 0


async def test_last_used_moves_with_references(registry: UploadRegistry, clock: FakeClock) -> None:
    claim = await registry.claim(key(), size=5)
    clock.advance(10)
    await registry.complete(claim, "f1")
    clock.advance(10)
    released = await registry.release(key())
    assert released.created_at == clock.now - 20
    assert released.last_used_at == clock.now


@pytest.mark.parametrize(
    ("size", "lease_s", "error", "message"),
    [
        pytest.param(-1, 60.0, ValueError, "size=-1 is negative; pass 0 or more", id="negative-size"),
        pytest.param(1.5, 60.0, TypeError, "size=1.5 must be an int", id="float-size"),
        pytest.param(True, 60.0, TypeError, "size=True must be an int", id="bool-size"),
        pytest.param(1, -3.0, ValueError, "lease_s=-3.0 must be a positive number", id="negative-lease"),
        pytest.param(
            1, float("inf"), ValueError, "lease_s=inf must be a positive number", id="endless-lease"
        ),
    ],
)
async def test_claim_refuses_bad_arguments(
    registry: UploadRegistry, size: int, lease_s: float, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        await registry.claim(key(), size=size, lease_s=lease_s)
    assert await registry.get(key()) is None


async def test_a_size_that_contradicts_the_record_is_refused(registry: UploadRegistry) -> None:
    await registry.claim(key(), size=5)
    with pytest.raises(ValueError, match=r"size=6 differs from size=5 recorded for provider='kimi'"):
        await registry.claim(key(), size=6)


@pytest.mark.parametrize(
    ("decision", "file_id", "message"),
    [
        pytest.param(ClaimDecision.WAIT, "f1", "only a claim answered .upload.", id="not-upload"),
        pytest.param(ClaimDecision.UPLOAD, "", "file_id='' is empty", id="empty-file-id"),
    ],
)
async def test_complete_refuses_bad_arguments(
    registry: UploadRegistry, decision: ClaimDecision, file_id: str, message: str
) -> None:
    claim = await registry.claim(key(), size=5)
    forged = Claim(decision, claim.record, claim.token if decision is ClaimDecision.UPLOAD else None)
    with pytest.raises(ValueError, match=message):
        await registry.complete(forged, file_id)


async def test_cleanup_evicts_least_recently_used_until_under_the_file_quota(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    for n in range(5):
        await ready(registry, key(n))
        clock.advance(1)
    assert await registry.acquire(key(0)) is not None  # the oldest is in use again: now the newest, and held
    items = await registry.reserve_cleanup("kimi", max_files=2)
    assert [item.key for item in items] == [key(1), key(2), key(3)]
    assert [item.file_id for item in items] == [f"file-{key(n).sha256[:8]}" for n in (1, 2, 3)]
    usage = await registry.usage("kimi")
    assert (usage.files, usage.bytes, usage.deleting, usage.deleting_bytes) == (2, 200, 3, 300)
    assert await registry.get(key(1)) is None
    assert await registry.reserve_cleanup("kimi", max_files=2) == []


async def test_cleanup_by_bytes_and_by_purpose(registry: UploadRegistry, clock: FakeClock) -> None:
    for n, purpose, size in [(1, "batch", 700), (2, "file-extract", 500), (3, "batch", 300)]:
        await ready(registry, key(n, purpose=purpose), size=size)
        clock.advance(1)
    items = await registry.reserve_cleanup("kimi", max_bytes=400, purpose="batch")
    assert [item.key for item in items] == [key(1, purpose="batch")]
    assert (await registry.usage("kimi", purpose="batch")).bytes == 300
    assert (await registry.usage("kimi")).bytes == 800


async def test_referenced_files_are_never_evicted_even_over_quota(registry: UploadRegistry) -> None:
    claim = await registry.claim(key(1), size=10)
    await registry.complete(claim, "held")
    await registry.claim(key(2), size=10)  # pending counts against the quota but is never evicted
    assert await registry.reserve_cleanup("kimi", max_files=0, max_bytes=0) == []
    assert (await registry.usage("kimi")).files == 2


async def test_other_providers_are_left_alone(registry: UploadRegistry) -> None:
    await ready(registry, key(1, provider="glm"))
    assert await registry.reserve_cleanup("kimi", max_files=0) == []
    assert (await registry.usage("glm")).files == 1


async def test_a_reserved_file_is_uploaded_afresh_and_forgotten_once_deleted(
    registry: UploadRegistry,
) -> None:
    await ready(registry, key(1), file_id="old")
    [item] = await registry.reserve_cleanup("kimi", max_files=0)
    assert (await registry.claim(key(1), size=100)).decision is ClaimDecision.UPLOAD
    assert await registry.mark_deleted(item) is True
    assert await registry.mark_deleted(item) is False
    assert (await registry.usage("kimi")).deleting == 0


async def test_a_dead_cleaners_reservations_are_offered_again(
    registry: UploadRegistry, clock: FakeClock
) -> None:
    await ready(registry, key(1))
    [item] = await registry.reserve_cleanup("kimi", max_files=0, lease_s=60)
    clock.advance(59)
    assert await registry.reserve_cleanup("kimi", max_files=0) == []
    clock.advance(1)
    [again] = await registry.reserve_cleanup("kimi", max_files=0, lease_s=60)
    assert (again.key, again.file_id, again.lease_until) == (item.key, item.file_id, clock.now + 60)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"max_files": -1}, "max_files=-1 is negative", id="negative-files"),
        pytest.param({"max_bytes": -5}, "max_bytes=-5 is negative", id="negative-bytes"),
        pytest.param({"lease_s": 0}, "lease_s=0 must be a positive number", id="zero-lease"),
        pytest.param({"lease_s": float("nan")}, "lease_s=nan must be a positive number", id="nan-lease"),
    ],
)
async def test_cleanup_refuses_bad_quotas(
    registry: UploadRegistry, kwargs: dict[str, float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        await registry.reserve_cleanup("kimi", **kwargs)  # type: ignore[arg-type]


async def test_a_closed_registry_says_so(registry: UploadRegistry) -> None:
    await registry.close()
    with pytest.raises(RegistryError, match="is not open; use `async with registry:`"):
        await registry.get(key())
    await registry.close()


# -- concurrency: many workers, and several registries (hosts) on one database ------------------------------


async def test_fifty_concurrent_claims_give_one_upload(backend: Backend, clock: FakeClock) -> None:
    # Five registries on one database stand for five hosts: each has its own connections, so the claims
    # really race in the database, not just in one process's lock.
    hosts = [open_registry(backend.url, clock=clock) for _ in range(5)]
    for host in hosts:
        await host.open()
    try:
        claims = await asyncio.gather(*(hosts[n % 5].claim(key(), size=42) for n in range(50)))
    finally:
        for host in hosts:
            await host.close()
    decisions = [claim.decision for claim in claims]
    assert decisions.count(ClaimDecision.UPLOAD) == 1
    assert decisions.count(ClaimDecision.WAIT) == 49


async def test_concurrent_releases_never_go_below_zero(backend: Backend, clock: FakeClock) -> None:
    hosts = [open_registry(backend.url, clock=clock) for _ in range(3)]
    for host in hosts:
        await host.open()
    try:
        claim = await hosts[0].claim(key(), size=1)
        await hosts[0].complete(claim, "f1")
        for _ in range(19):
            await hosts[0].acquire(key())
        outcomes = await asyncio.gather(
            *(hosts[n % 3].release(key()) for n in range(25)), return_exceptions=True
        )
        final = await hosts[0].get(key())
    finally:
        for host in hosts:
            await host.close()
    assert sum(isinstance(o, ReferenceCountError) for o in outcomes) == 5
    assert sorted(o.refcount for o in outcomes if not isinstance(o, BaseException)) == list(range(20))
    assert final is not None
    assert final.refcount == 0


async def test_concurrent_cleaners_evict_only_the_excess(backend: Backend, clock: FakeClock) -> None:
    hosts = [open_registry(backend.url, clock=clock) for _ in range(4)]
    for host in hosts:
        await host.open()
    try:
        for n in range(10):
            await ready(hosts[0], key(n))
            clock.advance(1)
        batches = await asyncio.gather(*(host.reserve_cleanup("kimi", max_files=6) for host in hosts))
        usage = await hosts[0].usage("kimi")
    finally:
        for host in hosts:
            await host.close()
    evicted = [item.key for batch in batches for item in batch]
    assert sorted(evicted, key=lambda k: k.sha256) == sorted(
        (key(n) for n in range(4)), key=lambda k: k.sha256
    )
    assert (usage.files, usage.deleting) == (6, 4)


async def test_cancelled_operations_leave_no_transaction_open(backend: Backend, clock: FakeClock) -> None:
    async with (
        open_registry(backend.url, clock=clock) as host,
        open_registry(backend.url, clock=clock) as other,
    ):
        for n in range(40):  # cancel at every point an operation can be suspended: lock, BEGIN, body, COMMIT
            task = asyncio.create_task(host.claim(key(n), size=1))
            for _ in range(n % 8):
                await asyncio.sleep(0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # A dangling write transaction on `host` would hold the database lock and stall `other`.
        assert (await other.claim(key(1000), size=1)).decision is ClaimDecision.UPLOAD
        assert (await host.claim(key(1001), size=1)).decision is ClaimDecision.UPLOAD
        assert (await host.usage("kimi")).files == (await other.usage("kimi")).files


async def test_a_file_the_provider_lost_is_discarded_and_uploaded_again(registry: UploadRegistry) -> None:
    claim = await registry.claim(key(), size=5)
    await registry.complete(claim, "lost")
    assert (await registry.claim(key(), size=5)).decision is ClaimDecision.REUSE
    assert await registry.discard(key(), "other-id") is False
    assert await registry.discard(key(), "lost") is True
    again = await registry.claim(key(), size=5)
    assert again.decision is ClaimDecision.UPLOAD
    assert await registry.discard(key(), "lost") is False  # pending rows are never discarded
    await registry.complete(again, "fresh")
    assert await registry.discard(key(), "lost") is False
    record = await registry.get(key())
    assert record is not None
    assert (record.file_id, record.refcount) == ("fresh", 1)
