"""A Hypothesis state machine drives the SQLite registry against a plain-Python model of it.

Random interleavings of claims, completions, abandons, lease expiries, references, clean-ups and deletions
must leave the registry exactly where the model says: reference counts never below zero, referenced files
never evicted, evictions least recently used first and only down to the quota, usage always the sum.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from llmfiles.registry import (
    Claim,
    ClaimDecision,
    ClaimLostError,
    CleanupItem,
    ContentKey,
    RecordState,
    ReferenceCountError,
    SQLiteRegistry,
)

from .conftest import FakeClock

KEYS = [
    ContentKey("kimi", purpose, hashlib.sha256(b"%d" % n).hexdigest())
    for purpose in ("batch", "image")
    for n in range(3)
]
SIZES = {key: 100 * (index + 1) for index, key in enumerate(KEYS)}
LEASE = 60.0


@dataclass
class ModelRow:
    state: RecordState
    refcount: int
    created_at: float
    last_used_at: float
    lease_until: float | None
    owner: str | None
    file_id: str | None = None


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.runner = asyncio.Runner()
        self.clock = FakeClock()
        self.registry = SQLiteRegistry(":memory:", clock=self.clock)
        self.runner.run(self.registry.open())
        self.rows: dict[ContentKey, ModelRow] = {}
        self.claims: list[Claim] = []
        self.reserved: dict[str, float] = {}  # file_id -> lease_until
        self.reserved_items: dict[str, CleanupItem] = {}
        self.deleted: list[CleanupItem] = []
        self.uploads = 0

    def teardown(self) -> None:
        self.runner.run(self.registry.close())
        self.runner.close()

    @rule(key=st.sampled_from(KEYS))
    def claim(self, key: ContentKey) -> None:
        now = self.clock.now
        claim = self.runner.run(self.registry.claim(key, size=SIZES[key], lease_s=LEASE))
        row = self.rows.get(key)
        if row is None:
            assert claim.decision is ClaimDecision.UPLOAD
            self.rows[key] = ModelRow(RecordState.PENDING, 0, now, now, now + LEASE, claim.token)
        elif row.state is RecordState.READY:
            assert claim.decision is ClaimDecision.REUSE
            row.refcount += 1
            row.last_used_at = now
        elif row.lease_until is not None and row.lease_until > now:
            assert claim.decision is ClaimDecision.WAIT
        else:
            assert claim.decision is ClaimDecision.UPLOAD
            row.owner, row.lease_until = claim.token, now + LEASE
        if claim.decision is ClaimDecision.UPLOAD:
            self.claims.append(claim)

    @initialize(keys=st.lists(st.sampled_from(KEYS), unique=True))
    def start_with_idle_files(self, keys: list[ContentKey]) -> None:
        """Idle files of different ages from the start, so clean-ups have an order to get right."""
        for key in keys:
            self.upload_and_let_go(key)

    @rule(key=st.sampled_from(KEYS))
    def upload_and_let_go(self, key: ContentKey) -> None:
        """The common life of a file in one step, so clean-ups often have several idle files to order."""
        if key in self.rows:
            return
        self.clock.advance(1.0)  # uploads take time, so idle files differ in age
        self.claim(key)
        claim = self.claims.pop()
        self.uploads += 1
        self.runner.run(self.registry.complete(claim, f"file-{self.uploads}"))
        self.runner.run(self.registry.release(key))
        self.rows[key] = ModelRow(
            RecordState.READY, 0, self.clock.now, self.clock.now, None, None, f"file-{self.uploads}"
        )

    def _owned(self, claim: Claim) -> ModelRow | None:
        row = self.rows.get(claim.record.key)
        if row is not None and row.state is RecordState.PENDING and row.owner == claim.token:
            return row
        return None

    @rule(data=st.data())
    def complete(self, data: st.DataObject) -> None:
        if not self.claims:
            return
        claim = data.draw(st.sampled_from(self.claims))
        self.claims.remove(claim)
        self.uploads += 1
        file_id = f"file-{self.uploads}"
        row = self._owned(claim)
        if row is None:
            with pytest.raises(ClaimLostError):
                self.runner.run(self.registry.complete(claim, file_id))
            return
        self.runner.run(self.registry.complete(claim, file_id))
        row.state, row.refcount, row.file_id = RecordState.READY, 1, file_id
        row.lease_until, row.owner, row.last_used_at = None, None, self.clock.now

    @rule(data=st.data())
    def abandon(self, data: st.DataObject) -> None:
        if not self.claims:
            return
        claim = data.draw(st.sampled_from(self.claims))
        self.claims.remove(claim)
        owned = self._owned(claim) is not None
        assert self.runner.run(self.registry.abandon(claim)) is owned
        if owned:
            del self.rows[claim.record.key]

    @rule(key=st.sampled_from(KEYS))
    def acquire(self, key: ContentKey) -> None:
        record = self.runner.run(self.registry.acquire(key))
        row = self.rows.get(key)
        if row is None or row.state is not RecordState.READY:
            assert record is None
            return
        row.refcount += 1
        row.last_used_at = self.clock.now
        assert record is not None
        assert record.refcount == row.refcount

    @rule(key=st.sampled_from(KEYS))
    def release(self, key: ContentKey) -> None:
        row = self.rows.get(key)
        if row is None or row.state is not RecordState.READY or row.refcount == 0:
            with pytest.raises(ReferenceCountError):
                self.runner.run(self.registry.release(key))
            return
        record = self.runner.run(self.registry.release(key))
        row.refcount -= 1
        row.last_used_at = self.clock.now
        assert record.refcount == row.refcount

    @rule(key=st.sampled_from(KEYS))
    def discard(self, key: ContentKey) -> None:
        row = self.rows.get(key)
        file_id = row.file_id if row is not None and row.file_id is not None else "never-uploaded"
        expected = row is not None and row.state is RecordState.READY
        assert self.runner.run(self.registry.discard(key, file_id)) is expected
        if expected:
            del self.rows[key]

    @rule(seconds=st.sampled_from([0.0, 1.0, 30.0, LEASE, 2 * LEASE]))
    def tick(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(data=st.data(), purpose=st.none() | st.sampled_from(["batch", "image"]))
    def cleanup(self, data: st.DataObject, purpose: str | None) -> None:
        # Quotas near what is held, so most clean-ups evict some idle files and keep others.
        held = [k for k in self.rows if purpose is None or k.purpose == purpose]
        max_files = data.draw(st.none() | st.integers(0, len(held) + 1))
        max_bytes = data.draw(st.none() | st.integers(0, sum(SIZES[k] for k in held) + 100))
        now = self.clock.now
        items = self.runner.run(
            self.registry.reserve_cleanup(
                "kimi", max_files=max_files, max_bytes=max_bytes, purpose=purpose, lease_s=LEASE
            )
        )
        expired = {
            file_id
            for file_id, lease_until in self.reserved.items()
            if lease_until <= now and (purpose is None or self.reserved_items[file_id].key.purpose == purpose)
        }
        assert {item.file_id for item in items[: len(expired)]} == expired

        in_scope = {k: r for k, r in self.rows.items() if purpose is None or k.purpose == purpose}
        files, total = len(in_scope), sum(SIZES[k] for k in in_scope)
        idle = sorted(
            (k for k, r in in_scope.items() if r.state is RecordState.READY and r.refcount == 0),
            key=lambda k: (in_scope[k].last_used_at, in_scope[k].created_at, k.purpose, k.sha256),
        )
        expected: list[ContentKey] = []
        for k in idle:
            if not (
                (max_files is not None and files > max_files) or (max_bytes is not None and total > max_bytes)
            ):
                break
            expected.append(k)
            files, total = files - 1, total - SIZES[k]
        assert [item.key for item in items[len(expired) :]] == expected

        for item in items:
            self.reserved[item.file_id] = now + LEASE
            self.reserved_items[item.file_id] = item
        for k in expected:
            del self.rows[k]

    @rule(data=st.data())
    def mark_deleted(self, data: st.DataObject) -> None:
        choices = list(self.reserved_items.values()) + self.deleted
        if not choices:
            return
        item = data.draw(st.sampled_from(choices))
        gone = item in self.deleted
        assert self.runner.run(self.registry.mark_deleted(item)) is not gone
        if not gone:
            del self.reserved[item.file_id], self.reserved_items[item.file_id]
            self.deleted.append(item)

    @invariant()
    def records_match_the_model(self) -> None:
        for key in KEYS:
            record = self.runner.run(self.registry.get(key))
            row = self.rows.get(key)
            if row is None:
                assert record is None
                continue
            assert record is not None
            assert record.refcount >= 0
            assert (record.state, record.refcount, record.file_id, record.size) == (
                row.state,
                row.refcount,
                row.file_id,
                SIZES[key],
            )
            assert (record.last_used_at, record.lease_until) == (row.last_used_at, row.lease_until)

    @invariant()
    def usage_is_the_sum(self) -> None:
        usage = self.runner.run(self.registry.usage("kimi"))
        assert (usage.files, usage.bytes) == (len(self.rows), sum(SIZES[k] for k in self.rows))
        assert usage.deleting == len(self.reserved)
        assert usage.deleting_bytes == sum(item.size for item in self.reserved_items.values())


TestRegistryInvariants = RegistryMachine.TestCase
TestRegistryInvariants.settings = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,  # aiosqlite hops to its thread on every statement; latency varies on a shared machine
    suppress_health_check=[HealthCheck.too_slow],
)
