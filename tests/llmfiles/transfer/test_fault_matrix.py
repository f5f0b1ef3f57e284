"""The fault matrix: every mock fault effect x upload/download x Kimi/GLM x on the first attempt / on every
attempt, plus same-name concurrency, cancellation and ``upload_many`` under the ``flaky`` profile.

Every cell must end in a success whose provider file holds exactly the caller's bytes (read from the mock's
data directory, not through the client), or in a typed error; never a swapped file, a second provider copy,
or a partial or temp file left behind. Each cell's outcome is recorded; the module prints the table at the
end and writes it as JSON to ``$LLMFILES_FAULT_MATRIX`` when that is set.
"""

import asyncio
import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmfiles import GLM, KIMI, LLMFilesError, UploadMayExistError
from llmfiles.providers import ProviderSpec
from llmfiles.transfer import AsyncFilesClient, TransferSettings, UploadResult
from llmfiles.transfer._reconcile import uploads_in_flight
from mock_provider import MockProvider
from tests.llmfiles.transfer._provider_files import mock_temp_files, settle_uploads, stored_ids, stored_sha256

pytestmark = pytest.mark.integration

SIZE = 100_000
PURPOSE = {"glm": "batch", "kimi": "file-extract"}
PROVIDERS = [pytest.param(GLM, id="glm"), pytest.param(KIMI, id="kimi")]
EFFECTS: list[Any] = [
    pytest.param({"kind": "latency", "seconds": 0.05}, id="latency"),
    pytest.param({"kind": "error", "status": 429, "retry_after": 1}, id="429"),
    pytest.param({"kind": "error", "status": 500}, id="500"),
    pytest.param({"kind": "error", "status": 502}, id="502"),
    pytest.param({"kind": "error", "status": 503}, id="503"),
    pytest.param({"kind": "error", "status": 504}, id="504"),
    pytest.param({"kind": "error", "status": 401}, id="401"),
    pytest.param({"kind": "error", "status": 413}, id="413"),
    pytest.param({"kind": "reset"}, id="reset"),
    pytest.param({"kind": "reset", "after_request_bytes": 16384}, id="reset-mid-body"),
    pytest.param({"kind": "partial", "fraction": 0.5}, id="partial"),
    pytest.param({"kind": "malformed"}, id="malformed"),
    pytest.param({"kind": "slow", "bytes_per_second": 2_000_000}, id="slow"),
    pytest.param({"kind": "hang"}, id="hang", marks=pytest.mark.slow),
    pytest.param({"kind": "lost_response"}, id="lost-response"),
    pytest.param({"kind": "stored_then_error", "status": 502}, id="stored-then-502"),
]
TRIGGERS = [pytest.param({"first": 1}, id="first"), pytest.param({}, id="every")]


@dataclass(frozen=True)
class Cell:
    case: str
    operation: str
    provider: str
    trigger: str
    outcome: str
    swaps: int = 0
    duplicates: int = 0
    leftovers: int = 0
    untyped: int = 0
    orphans: int = 0
    """Provider files of cancelled uploads: the bytes had left, the caller chose not to hear. Not a
    violation (one copy, not a second one), reported apart."""


CELLS: list[Cell] = []


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    if not CELLS:
        return
    violations = Counter[str]()
    orphans = sum(cell.orphans for cell in CELLS)
    for cell in CELLS:
        for kind in ("swaps", "duplicates", "leftovers", "untyped"):
            violations[kind] += getattr(cell, kind)
    outcomes = Counter(cell.outcome for cell in CELLS)
    print(
        f"\nfault matrix: {len(CELLS)} cells; outcomes {dict(outcomes)}; violations {dict(violations)}; "
        f"files of cancelled uploads {orphans}"
    )
    target = os.environ.get("LLMFILES_FAULT_MATRIX")
    if target:
        Path(target).write_text(json.dumps([asdict(cell) for cell in CELLS], indent=1))


@pytest.fixture(scope="module")
def mock() -> Iterator[MockProvider]:
    with MockProvider("calm", seed=9) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(mock: MockProvider) -> None:
    mock.set_rules([])
    mock.reset()


async def _no_sleep(_seconds: float) -> None:
    """Backoff and grace looks without waiting."""


def client(provider: ProviderSpec, mock: MockProvider) -> AsyncFilesClient:
    settings = TransferSettings(read_timeout=0.5, retries=3, sleep=_no_sleep, chunk_size=64 * 1024)
    base_url = mock.kimi_base_url if provider is KIMI else mock.glm_base_url
    return AsyncFilesClient(provider, api_key="sk-test", base_url=base_url, settings=settings)


def make_file(directory: Path, name: str, seed: int, size: int = SIZE) -> Path:
    """`size` bytes of ASCII text that depend on `seed` (text, so Kimi's extraction carries it whole)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    line = hashlib.sha256(seed.to_bytes(4, "big")).hexdigest().encode() + b"\n"
    path.write_bytes((line * (size // len(line) + 1))[:size])
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def judge_uploads(
    mock: MockProvider, provider: ProviderSpec, outcomes: dict[Path, object], **cell: str
) -> Cell:
    """Record and return the cell for `outcomes` (path -> result or exception)."""
    settle_uploads(mock)
    held = stored_ids(mock, provider)
    swaps = untyped = 0
    told: set[str] = set()
    kinds: list[str] = []
    for path, outcome in outcomes.items():
        if isinstance(outcome, UploadResult):
            swaps += stored_sha256(mock, provider, outcome.file.id) != sha256_of(path)
            swaps += outcome.sha256 != sha256_of(path)
            told.add(outcome.file.id)
            kinds.append(f"success:{outcome.obtained}")
        elif isinstance(outcome, LLMFilesError):
            if isinstance(outcome, UploadMayExistError):
                told.update(outcome.candidate_ids)
            kinds.append(f"error:{type(outcome).__name__}")
        else:
            untyped += 1
            kinds.append(f"untyped:{type(outcome).__name__}")
    contents = Counter(stored_sha256(mock, provider, file_id) for file_id in held)
    duplicates = sum(count - 1 for count in contents.values()) + len(held - told)
    leftovers = len(mock_temp_files(mock))
    result = Cell(
        outcome=",".join(sorted(set(kinds))),
        swaps=swaps,
        duplicates=duplicates,
        leftovers=leftovers,
        untyped=untyped,
        provider=provider.name,
        **cell,
    )
    CELLS.append(result)
    return result


def assert_clean(cell: Cell) -> None:
    assert (cell.swaps, cell.duplicates, cell.leftovers, cell.untyped) == (0, 0, 0, 0), cell


async def outcome_of(call: Any) -> object:
    try:
        return await call
    except (Exception, asyncio.CancelledError) as exc:  # anything: an untyped error is a violation
        return exc


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("effect", EFFECTS)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_upload_cell(
    mock: MockProvider,
    tmp_path: Path,
    provider: ProviderSpec,
    effect: dict[str, Any],
    trigger: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    source = make_file(tmp_path, "cell.jsonl", 1)
    mock.set_rules([{"match": {"operation": "upload"}, "trigger": trigger, "effect": effect}])
    async with client(provider, mock) as uploader:
        outcome = await outcome_of(uploader.upload(source, purpose=PURPOSE[provider.name]))
    mock.set_rules([])
    ids = request.node.callspec.id.split("-", 1)[1].rsplit("-", 1)
    cell = judge_uploads(mock, provider, {source: outcome}, case=ids[0], operation="upload", trigger=ids[1])
    assert_clean(cell)
    if trigger and effect.get("status") not in (401, 413):
        assert isinstance(outcome, UploadResult | UploadMayExistError), outcome  # one fault never fails


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("effect", EFFECTS)
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_download_cell(
    mock: MockProvider,
    tmp_path: Path,
    provider: ProviderSpec,
    effect: dict[str, Any],
    trigger: dict[str, Any],
    request: pytest.FixtureRequest,
) -> None:
    source = make_file(tmp_path, "cell.jsonl", 2)
    dest = tmp_path / "dest"
    dest.mkdir()
    async with client(provider, mock) as transfer:
        uploaded = await transfer.upload(source, purpose=PURPOSE[provider.name])
        with httpx.Client(headers={"Authorization": "Bearer sk-test"}) as raw:
            base_url = mock.kimi_base_url if provider is KIMI else mock.glm_base_url
            expected = raw.get(f"{base_url}/files/{uploaded.file.id}/content").content
        mock.set_rules([{"match": {"operation": "content"}, "trigger": trigger, "effect": effect}])
        outcome = await outcome_of(transfer.download(uploaded.file.id, dest))
    mock.set_rules([])
    left = sorted(os.listdir(dest))
    swaps = untyped = leftovers = 0
    if isinstance(outcome, Path):
        kind = "success"
        swaps = int(outcome.read_bytes() != expected)
        leftovers = len(left) - 1
    elif isinstance(outcome, LLMFilesError):
        kind = f"error:{type(outcome).__name__}"
        leftovers = len(left)
    else:
        kind, untyped = f"untyped:{type(outcome).__name__}", 1
    ids = request.node.callspec.id.split("-", 1)[1].rsplit("-", 1)
    cell = Cell(
        case=ids[0],
        operation="download",
        provider=provider.name,
        trigger=ids[1],
        outcome=kind,
        swaps=swaps,
        duplicates=len(stored_ids(mock, provider)) - 1,
        leftovers=leftovers,
        untyped=untyped,
    )
    CELLS.append(cell)
    assert_clean(cell)
    if trigger and effect.get("status") not in (401, 413):
        assert isinstance(outcome, Path), outcome


@pytest.mark.parametrize("effect", ["lost_response", "reset", "malformed"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_same_name_concurrency_cell(
    mock: MockProvider, tmp_path: Path, provider: ProviderSpec, effect: str
) -> None:
    a, b = make_file(tmp_path / "a", "data.bin", 3), make_file(tmp_path / "b", "data.bin", 4)
    mock.set_rules([{"match": {"operation": "upload"}, "trigger": {"first": 2}, "effect": {"kind": effect}}])
    async with client(provider, mock) as uploader:
        results = await asyncio.gather(
            outcome_of(uploader.upload(a, purpose=PURPOSE[provider.name])),
            outcome_of(uploader.upload(b, purpose=PURPOSE[provider.name])),
        )
    cell = judge_uploads(
        mock,
        provider,
        dict(zip((a, b), results, strict=True)),
        case=effect,
        operation="same-name",
        trigger="first2",
    )
    assert_clean(cell)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cancelled_upload_cell(mock: MockProvider, tmp_path: Path, provider: ProviderSpec) -> None:
    source = make_file(tmp_path, "cancel.bin", 5, size=400_000)
    mock.set_rules(
        [{"match": {"operation": "upload"}, "effect": {"kind": "slow", "bytes_per_second": 100_000}}]
    )
    async with client(provider, mock) as uploader:
        task = asyncio.ensure_future(uploader.upload(source, purpose=PURPOSE[provider.name]))
        await asyncio.sleep(0.3)
        task.cancel()
        outcome = await outcome_of(task)
        assert uploads_in_flight((uploader.base_url, "cancel.bin", 400_000)) == 0
        mock.set_rules([])
        settle_uploads(mock)
        before = stored_ids(mock, provider)
        # The lock for this name and size was released: the same upload goes through at once.
        again = await asyncio.wait_for(uploader.upload(source, purpose=PURPOSE[provider.name]), 10)
    assert isinstance(outcome, asyncio.CancelledError)
    assert stored_sha256(mock, provider, again.file.id) == again.sha256 == sha256_of(source)
    # Bytes already in the kernel's buffers still reach the provider: the cancelled upload may be stored,
    # once. The cell is judged on what the cancelled upload left, before the second one.
    assert len(before) <= 1
    orphans = len(before)
    cell = Cell(
        "cancel", "upload", provider.name, "mid-body", "cancelled", leftovers=len(mock_temp_files(mock))
    )
    CELLS.append(Cell(**{**asdict(cell), "orphans": orphans}))
    assert_clean(cell)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_cancelled_download_cell(mock: MockProvider, tmp_path: Path, provider: ProviderSpec) -> None:
    source = make_file(tmp_path, "cancel.bin", 6, size=400_000)
    dest = tmp_path / "dest"
    dest.mkdir()
    async with client(provider, mock) as transfer:
        uploaded = await transfer.upload(source, purpose=PURPOSE[provider.name])
        mock.set_rules(
            [{"match": {"operation": "content"}, "effect": {"kind": "slow", "bytes_per_second": 100_000}}]
        )
        task = asyncio.ensure_future(transfer.download(uploaded.file.id, dest, filename="cancel.bin"))
        await asyncio.sleep(0.3)
        task.cancel()
        outcome = await outcome_of(task)
    assert isinstance(outcome, asyncio.CancelledError)
    cell = Cell("cancel", "download", provider.name, "mid-body", "cancelled", leftovers=len(os.listdir(dest)))
    CELLS.append(cell)
    assert_clean(cell)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_upload_many_under_flaky_cell(
    mock: MockProvider, tmp_path: Path, provider: ProviderSpec
) -> None:
    paths = [make_file(tmp_path, f"batch-{i}.jsonl", 10 + i, size=20_000) for i in range(12)]
    mock.set_profile("flaky", seed=21)
    async with client(provider, mock) as uploader:
        results = await uploader.upload_many(paths, purpose=PURPOSE[provider.name])
    mock.set_profile("calm")
    outcomes: dict[Path, object] = dict(zip(paths, results, strict=True))
    cell = judge_uploads(mock, provider, outcomes, case="flaky", operation="upload_many", trigger="profile")
    assert_clean(cell)
