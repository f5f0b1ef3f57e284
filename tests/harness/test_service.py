import asyncio
import contextlib
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.testclient import TestClient
from starlette.types import Receive, Scope, Send

from harness import find_lost
from harness.service import NO_REGISTRY, ServiceConfig, create_app
from harness.service.__main__ import main
from harness.service._cleaner import Cleaner
from harness.service._dedup import QuotaGuard, RegistryMetrics
from llmfiles import ConfigError
from llmfiles.registry import ContentKey, Usage, open_registry
from llmfiles.rollout import CheckResult, RolloutController
from mock_provider import MockProvider

pytestmark = pytest.mark.integration

TOKEN = "test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(mock: MockProvider, tmp_path: Path, **overrides: Any) -> ServiceConfig:
    fields: dict[str, Any] = {
        "provider_url": mock.kimi_base_url,
        "percent": 100,
        "stage": "100%",
        "events_path": tmp_path / "events.jsonl",
        "ledger_path": tmp_path / "ledger.jsonl",
        "workdir": tmp_path / "spool",
        "token": TOKEN,
        **overrides,
    }
    return ServiceConfig(**fields)


@contextlib.asynccontextmanager
async def _serve(config: ServiceConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The real app in this event loop: lifespan started and stopped around the test's requests.

    httpx's ASGI transport runs no lifespan, so the state the lifespan yields is handed to each request
    the way an ASGI server does (a copy in ``scope["state"]``).
    """
    app = create_app(config)
    async with app.router.lifespan_context(app) as state:

        async def served(scope: Scope, receive: Receive, send: Send) -> None:
            await app({**scope, "state": dict(state or {})}, receive, send)

        transport = httpx.ASGITransport(app=served)
        async with httpx.AsyncClient(transport=transport, base_url="http://service", headers=AUTH) as client:
            yield client


def _uploads(mock: MockProvider) -> list[dict[str, Any]]:
    return [e for e in mock.journal() if e["operation"] == "upload" and e["status"] == 200]


def _ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _no_spooled_bodies(workdir: Path) -> bool:
    """No request body left in any spool slot, and nothing but the slots and the registry beside them."""
    bodies = [p for slot in (workdir / "bodies").iterdir() for p in slot.iterdir()]
    others = [p for p in workdir.iterdir() if p.name != "bodies" and not p.name.startswith("registry.db")]
    return bodies == others == []


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider("calm") as provider:
        yield provider


@pytest.fixture
def service(mock: MockProvider, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(_config(mock, tmp_path, percent=50, stage="50%")), headers=AUTH) as client:
        yield client


def test_uploads_raw_and_multipart_and_records_each(service: TestClient, tmp_path: Path) -> None:
    ids = []
    for i in range(6):
        response = service.post(
            f"/upload?name=a{i}.txt", content=b"x" * (2000 + i), headers={"X-User": f"u{i}"}
        )
        assert response.status_code == 200
        ids.append(response.json()["file_id"])
    response = service.post("/upload", files={"file": ("../../etc/m.txt", b"multipart body")})
    assert response.status_code == 200
    assert response.json()["filename"] == "m.txt" or "/" not in response.json()["filename"]
    ids.append(response.json()["file_id"])

    ledger = _ledger(tmp_path / "ledger.jsonl")
    assert [row["file_id"] for row in ledger] == ids
    assert ledger[-1]["sha256"] == hashlib.sha256(b"multipart body").hexdigest()
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) == 7
    assert {e["stage"] for e in events} == {"50%"}
    metrics = service.get("/metrics").text
    assert "llmfiles_uploads_total" in metrics
    listed = {f["id"] for f in service.get("/files").json()["data"]}
    assert set(ids) <= listed
    assert _no_spooled_bodies(tmp_path / "spool")


def test_content_healthz_and_unknown_file(service: TestClient) -> None:
    file_id = service.post("/upload?name=doc.txt", content=b"hello").json()["file_id"]
    assert service.get(f"/files/{file_id}/content").status_code == 200
    assert service.get("/files/nope/content").status_code == 404
    assert service.get("/healthz").json() == {"ok": True, "stage": "50%", "percent": 50.0}


def test_multipart_without_a_file_part_is_a_clear_400(service: TestClient, tmp_path: Path) -> None:
    response = service.post("/upload", data={"other": "x"}, files={"nothing": ("n", b"")})
    assert response.status_code == 400
    assert "field='file'" in response.json()["message"]
    assert _no_spooled_bodies(tmp_path / "spool")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("percent", 101.0),
        ("provider_url", "ftp://x"),
        ("keep_files", -1),
        ("keep_files", 901),
        ("max_files", 1001),
        ("keep_bytes", -1),
        ("max_bytes", 11 * 1024**3),
        ("registry", ""),
        ("max_spools", 0),
        ("cleanup_concurrency", 0),
        ("legacy_threads", 0),
    ],
    ids=[
        "percent",
        "url",
        "keep-negative",
        "keep-over-max",
        "max-over-account",
        "keep-bytes",
        "max-bytes",
        "registry",
        "spools",
        "cleanup",
        "legacy-threads",
    ],
)
def test_config_rejects_bad_values(tmp_path: Path, field: str, value: object) -> None:
    kwargs = {
        "provider_url": "http://127.0.0.1:1",
        "percent": 10.0,
        "stage": "10%",
        "events_path": tmp_path / "e",
        "ledger_path": tmp_path / "l",
        "workdir": tmp_path,
        "token": TOKEN,
        field: value,
    }
    with pytest.raises(ConfigError, match=f"{field}="):
        ServiceConfig(**kwargs)  # type: ignore[arg-type]


def test_an_unknown_registry_url_fails_at_start_without_showing_the_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = "mysql://user:hunter2@db/x"
    files = {"events_path": tmp_path / "e", "ledger_path": tmp_path / "l", "workdir": tmp_path / "w"}
    config = ServiceConfig(
        provider_url="http://127.0.0.1:1", percent=0, stage="0%", registry=url, token=TOKEN, **files
    )
    with pytest.raises(ConfigError, match="names no registry backend") as caught:
        create_app(config)
    assert "hunter2" not in str(caught.value)
    args = ["--provider-url", "http://127.0.0.1:1", "--events", str(files["events_path"])]
    args += ["--ledger", str(files["ledger_path"]), "--workdir", str(files["workdir"]), "--registry", url]
    with pytest.raises(SystemExit) as exited:
        main(args)
    assert exited.value.code == 2
    printed = capsys.readouterr().err
    assert "names no registry backend" in printed
    assert "hunter2" not in printed


async def test_the_same_bytes_twice_make_one_provider_file(mock: MockProvider, tmp_path: Path) -> None:
    body = b"same content " * 1000
    async with _serve(_config(mock, tmp_path)) as client:
        first = (await client.post("/upload?name=a.txt", content=body)).json()
        second = (await client.post("/upload?name=b.txt", content=body)).json()
        metrics = (await client.get("/metrics")).text
    assert (first["deduplicated"], second["deduplicated"]) == (False, True)
    assert first["file_id"] == second["file_id"]
    assert second["sha256"] == hashlib.sha256(body).hexdigest()
    assert [e["file_id"] for e in _uploads(mock)] == [first["file_id"]]
    assert 'llmfiles_registry_dedup_hits_total{provider="kimi",purpose="file-extract"} 1.0' in metrics
    # Both answers are in the ledger, and the nothing-lost check holds for the deduplicated one too.
    ledger = _ledger(tmp_path / "ledger.jsonl")
    assert [row["deduplicated"] for row in ledger] == [False, True]
    report = find_lost([(row["file_id"], row["sha256"]) for row in ledger], mock.journal())
    assert (report.checked, report.ok) == (2, True)
    # Only the request that reached an arm leaves a rollout event.
    assert len((tmp_path / "events.jsonl").read_text().splitlines()) == 1


async def test_twenty_concurrent_identical_uploads_upload_once(mock: MockProvider, tmp_path: Path) -> None:
    body = b"burst" * 50_000
    async with _serve(_config(mock, tmp_path)) as client:
        responses = await asyncio.gather(
            *(
                client.post(f"/upload?name=c{i}.bin", content=body, headers={"X-User": f"u{i}"})
                for i in range(20)
            )
        )
        metrics = (await client.get("/metrics")).text
    answers = [r.json() for r in responses]
    assert [r.status_code for r in responses] == [200] * 20
    assert len({a["file_id"] for a in answers}) == 1
    assert sorted(a["deduplicated"] for a in answers) == [False] + [True] * 19
    assert len(_uploads(mock)) == 1
    assert 'llmfiles_registry_dedup_hits_total{provider="kimi",purpose="file-extract"} 19.0' in metrics


async def test_different_purposes_sharing_a_registry_make_two_files(
    mock: MockProvider, tmp_path: Path
) -> None:
    shared = f"sqlite:///{tmp_path / 'shared.db'}"
    body = b"one content, two purposes"
    ids = []
    for purpose in ("file-extract", "image"):
        config = _config(mock, tmp_path / purpose, purpose=purpose, registry=shared)
        async with _serve(config) as client:
            for _ in range(2):
                ids.append((await client.post("/upload?name=p.txt", content=body)).json()["file_id"])
    assert ids[0] == ids[1]
    assert ids[2] == ids[3]
    assert ids[0] != ids[2]
    assert sorted(e["file_id"] for e in _uploads(mock)) == sorted({ids[0], ids[2]})
    async with open_registry(shared) as registry:
        usage = await registry.usage("kimi")
    assert (usage.files, usage.bytes) == (2, 2 * len(body))


async def test_delete_releases_a_reference_and_the_last_one_frees_the_file(
    mock: MockProvider, tmp_path: Path
) -> None:
    body = b"shared by two callers"
    sha256 = hashlib.sha256(body).hexdigest()
    async with _serve(_config(mock, tmp_path, keep_files=0)) as client:
        file_id = (await client.post("/upload", content=body)).json()["file_id"]
        await client.post("/upload", content=body)  # a second reference to the same file

        no_digest = await client.delete(f"/files/{file_id}")
        assert no_digest.status_code == 400
        assert "?sha256=" in no_digest.json()["message"]
        wrong_pair = await client.delete(f"/files/{file_id}", params={"sha256": "0" * 64})
        assert wrong_pair.status_code == 404

        first = await client.delete(f"/files/{file_id}", params={"sha256": sha256})
        assert first.json() == {"file_id": file_id, "references": 1, "kept": True}
        assert [f["id"] for f in (await client.get("/files")).json()["data"]] == [file_id]

        last = await client.delete(f"/files/{file_id}", params={"sha256": sha256})
        assert last.json() == {"file_id": file_id, "references": 0, "kept": False}
        assert (await client.get("/files")).json()["data"] == []
        again = await client.delete(f"/files/{file_id}", params={"sha256": sha256})
        assert again.status_code == 404

        fresh = (await client.post("/upload", content=body)).json()
    assert ("delete", file_id) in [(e["operation"], e["file_id"]) for e in mock.journal()]
    assert fresh["deduplicated"] is False
    assert fresh["file_id"] != file_id


async def test_an_unreferenced_file_within_the_quota_is_reused(mock: MockProvider, tmp_path: Path) -> None:
    body = b"kept for the next caller"
    async with _serve(_config(mock, tmp_path)) as client:
        first = (await client.post("/upload", content=body)).json()
        released = await client.delete(f"/files/{first['file_id']}", params={"sha256": first["sha256"]})
        second = (await client.post("/upload", content=body)).json()
    assert released.json()["kept"] is True
    assert (second["deduplicated"], second["file_id"]) == (True, first["file_id"])
    assert len(_uploads(mock)) == 1


async def test_delete_after_keeps_the_provider_within_keep_files(mock: MockProvider, tmp_path: Path) -> None:
    async with _serve(_config(mock, tmp_path, delete_after=True, keep_files=2)) as client:
        for i in range(6):
            assert (await client.post("/upload", content=f"file {i}".encode())).status_code == 200
    # Leaving the lifespan drains the requested clean-up passes before the registry closes.
    assert mock.stats()["files"]["kimi"] <= 2
    deleted = [e for e in mock.journal() if e["operation"] == "delete" and e["status"] == 200]
    assert len(deleted) >= 4
    assert len(_ledger(tmp_path / "ledger.jsonl")) == 6


def _peak_files(journal: list[dict[str, Any]]) -> int:
    """The most files the provider held at once, replayed from its journal."""
    held = peak = 0
    for entry in sorted(journal, key=lambda e: e["seq"]):
        if entry["status"] == 200 and entry["operation"] in ("upload", "delete"):
            held += 1 if entry["operation"] == "upload" else -1
            peak = max(peak, held)
    return peak


@pytest.mark.parametrize(
    "limits",
    [{"keep_files": 3, "max_files": 3}, {"keep_bytes": 30, "max_bytes": 30}],
    ids=["files", "bytes"],
)
async def test_an_upload_into_a_full_provider_first_evicts_the_oldest_unreferenced(
    mock: MockProvider, tmp_path: Path, limits: dict[str, int]
) -> None:
    async with _serve(_config(mock, tmp_path, delete_after=True, **limits)) as client:
        bodies = [f"file {i:05d}".encode() for i in range(8)]  # 10 bytes each
        ids = [(await client.post("/upload", content=body)).json()["file_id"] for body in bodies]
    journal = mock.journal()
    assert _peak_files(journal) == 3
    deleted = [e["file_id"] for e in journal if e["operation"] == "delete"]
    assert deleted == ids[:5]  # least recently used first
    assert len(_uploads(mock)) == 8


@pytest.mark.parametrize("registry", [NO_REGISTRY, "default"])
def test_delete_after_removes_the_provider_file_but_keeps_it_in_the_ledger(
    mock: MockProvider, tmp_path: Path, registry: str
) -> None:
    config = _config(mock, tmp_path, delete_after=True, registry=registry, keep_files=0)
    with TestClient(create_app(config), headers=AUTH) as client:
        file_id = client.post("/upload?name=gone.txt", content=b"bytes").json()["file_id"]
    operations = [(e["operation"], e["file_id"]) for e in mock.journal()]
    assert ("upload", file_id) in operations
    assert ("delete", file_id) in operations
    assert file_id in (tmp_path / "ledger.jsonl").read_text()


def test_without_a_registry_every_request_uploads(mock: MockProvider, tmp_path: Path) -> None:
    with TestClient(create_app(_config(mock, tmp_path, registry=NO_REGISTRY)), headers=AUTH) as client:
        answers = [client.post("/upload", content=b"twice").json() for _ in range(2)]
        deleted = client.delete(f"/files/{answers[0]['file_id']}")
        assert client.delete(f"/files/{answers[0]['file_id']}").status_code == 404
    assert [a["deduplicated"] for a in answers] == [False, False]
    assert len(_uploads(mock)) == 2
    assert deleted.json() == {"file_id": answers[0]["file_id"], "references": 0, "kept": False}
    assert _no_spooled_bodies(tmp_path / "spool")


async def test_a_registry_reference_survives_in_the_database(mock: MockProvider, tmp_path: Path) -> None:
    body = b"counted"
    async with _serve(_config(mock, tmp_path)) as client:
        for _ in range(3):
            await client.post("/upload", content=body)
    async with open_registry(f"sqlite:///{tmp_path / 'spool' / 'registry.db'}") as registry:
        record = await registry.get(ContentKey("kimi", "file-extract", hashlib.sha256(body).hexdigest()))
    assert record is not None
    assert record.refcount == 3


class _Gate:
    """A clean-up pass that counts its runs and, when closed, blocks until the test opens it."""

    def __init__(self) -> None:
        self.runs = 0
        self.open = asyncio.Event()
        self.open.set()
        self.fail = False

    async def __call__(self) -> None:
        self.runs += 1
        await self.open.wait()
        if self.fail:
            raise RuntimeError("boom")


async def test_cleaner_coalesces_requests_made_during_a_pass() -> None:
    gate = _Gate()
    async with Cleaner(gate) as cleaner:
        gate.open.clear()
        first = cleaner.request()
        await asyncio.sleep(0)  # let the pass start and block on the gate
        tickets = [cleaner.request() for _ in range(5)]
        gate.open.set()
        await cleaner.wait(first)
        await cleaner.wait(tickets[-1])
    assert gate.runs == 2


async def test_cleaner_survives_a_failing_pass_and_drains_on_exit() -> None:
    gate = _Gate()
    gate.fail = True
    async with Cleaner(gate) as cleaner:
        await cleaner.wait(cleaner.request())
        gate.fail = False
        cleaner.request()  # not awaited: leaving the block must still run it
    assert gate.runs == 2


async def test_cleaner_stop_gives_up_after_its_timeout() -> None:
    gate = _Gate()
    gate.open.clear()
    async with Cleaner(gate, stop_timeout_s=0.05) as cleaner:
        ticket = cleaner.request()
    await cleaner.wait(ticket)  # released by the stop, not left hanging
    assert gate.runs == 1


async def test_the_controller_checks_in_a_worker_thread_while_the_loop_serves(
    mock: MockProvider, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A check blocked on its state file (here: until the test lets it go) must not stall a request."""
    original = RolloutController.check
    release = threading.Event()
    threads: list[int] = []

    def blocking_check(self: RolloutController) -> CheckResult:
        threads.append(threading.get_ident())
        release.wait(10)
        return original(self)

    monkeypatch.setattr(RolloutController, "check", blocking_check)
    config = _config(mock, tmp_path, state_path=tmp_path / "state.json", check_interval_s=0.05)
    async with _serve(config) as client:
        while not threads:
            await asyncio.sleep(0.01)
        try:
            answer = await asyncio.wait_for(client.post("/upload", content=b"during a check"), 5)
        finally:
            release.set()
        assert answer.status_code == 200
        while len(threads) < 2:
            await asyncio.sleep(0.01)
    assert threading.get_ident() not in threads


async def test_cleaner_spaces_passes_but_exit_runs_what_was_asked_at_once() -> None:
    gate = _Gate()
    async with Cleaner(gate, min_interval_s=0.3) as cleaner:
        await cleaner.wait(cleaner.request())
        tickets = [cleaner.request() for _ in range(5)]
        await asyncio.sleep(0.05)
        assert gate.runs == 1  # the next pass waits out the interval, then serves all five
        await cleaner.wait(tickets[-1])
        assert gate.runs == 2
    gate = _Gate()
    async with Cleaner(gate, min_interval_s=60, stop_timeout_s=5) as cleaner:
        await cleaner.wait(cleaner.request())
        cleaner.request()  # asked during the interval: the exit neither drops it nor waits a minute
    assert gate.runs == 2


async def test_the_quota_guard_asks_the_registry_only_when_its_estimate_could_be_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    asked = []
    async with open_registry(f"sqlite:///{tmp_path / 'r.db'}") as registry:
        usage = registry.usage

        async def counted(provider: str, **kwargs: Any) -> Usage:
            asked.append(now[0])
            return await usage(provider, **kwargs)

        monkeypatch.setattr(registry, "usage", counted)

        async def nothing_to_delete(file_id: str) -> None:
            raise AssertionError(f"nothing is unreferenced, yet {file_id} was deleted")

        guard = QuotaGuard(
            registry,
            "kimi",
            delete=nothing_to_delete,
            max_files=3,
            max_bytes=10**6,
            metrics=RegistryMetrics(CollectorRegistry()),
            refresh_s=1.0,
            clock=lambda: now[0],
        )
        for _ in range(4):  # one answer (0 files), then 1, 2, 3 files let through without asking
            await guard.make_room(10)
        assert asked == [0.0]
        await guard.make_room(10)  # a 4th could pass 3: ask
        assert asked == [0.0, 0.0]
        now[0] = 0.5
        await guard.make_room(10)  # the fresh answer (0 files) leaves room: no question
        assert asked == [0.0, 0.0]
        now[0] = 1.0
        await guard.make_room(10)  # the answer is a refresh old
        assert asked == [0.0, 0.0, 1.0]
        await guard.make_room(2 * 10**6)  # too big for the estimate: ask
        assert asked == [0.0, 0.0, 1.0, 1.0]


async def test_chaos_aimed_at_the_async_arm_leaves_the_services_own_deletes_alone(
    mock: MockProvider, tmp_path: Path
) -> None:
    """Deletes are the service's work, not an arm's: a broken new arm must not stall the clean-up that
    every upload (of either arm) depends on once the account is near its quota.
    """
    body = b"uploaded by the legacy arm, released by the service"
    sha256 = hashlib.sha256(body).hexdigest()
    arm_down = {"x-llmfiles-arm": "async"}
    mock.set_rules([{"match": {"headers": arm_down}, "effect": {"kind": "error", "status": 503}}])
    async with _serve(_config(mock, tmp_path, percent=0, stage="0%", keep_files=0)) as client:
        uploaded = (await client.post("/upload", content=body)).json()
        released = await client.delete(f"/files/{uploaded['file_id']}", params={"sha256": sha256})
    assert released.json() == {"file_id": uploaded["file_id"], "references": 0, "kept": False}
    deletes = [e for e in mock.journal() if e["operation"] == "delete"]
    assert [(e["file_id"], e["status"]) for e in deletes] == [(uploaded["file_id"], 200)]
