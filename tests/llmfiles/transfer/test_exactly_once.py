"""Exactly-once uploads against the real mock on loopback: a success is the caller's own bytes, a retry
never leaves a second copy. Provider files are read from the mock's data directory, not through the client.
"""

import asyncio
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from llmfiles import GLM, KIMI, LLMFilesError, ServerError, UploadMayExistError
from llmfiles.cli._transfer import register
from llmfiles.providers import ProviderSpec
from llmfiles.transfer import AsyncFilesClient, Obtained, TransferSettings, UploadResult
from mock_provider import MockProvider
from tests.llmfiles.transfer._provider_files import OffsetClock, settle_uploads, stored_ids, stored_sha256

pytestmark = pytest.mark.integration

SIZE = 200_000
PURPOSE = {"glm": "batch", "kimi": "file-extract"}
PROVIDERS = [pytest.param(GLM, id="glm"), pytest.param(KIMI, id="kimi")]


async def _no_sleep(_seconds: float) -> None:
    """Backoff and grace looks without waiting: the decisions are under test, not the time they take."""


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def mock(clock: OffsetClock) -> Iterator[MockProvider]:
    with MockProvider("calm", seed=5, clock=clock) as running:
        yield running


def client(provider: ProviderSpec, mock: MockProvider, **overrides: Any) -> AsyncFilesClient:
    options: dict[str, Any] = {"read_timeout": 0.5, "retries": 3, "sleep": _no_sleep, "chunk_size": 64 * 1024}
    options.update(overrides)
    base_url = mock.kimi_base_url if provider is KIMI else mock.glm_base_url
    settings = TransferSettings(**options)
    return AsyncFilesClient(provider, api_key="sk-test", base_url=base_url, settings=settings)


def same_name_pair(tmp_path: Path, name: str, size: int = SIZE) -> tuple[Path, Path]:
    """Two files called `name`, of `size` bytes each, with different contents."""
    paths = []
    for folder, seed in (("a", 1), ("b", 2)):
        path = tmp_path / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        block = hashlib.sha256(bytes([seed])).digest() * (size // 32 + 1)
        path.write_bytes(block[:size])
        paths.append(path)
    return paths[0], paths[1]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def on_upload(effect: dict[str, Any], trigger: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [{"match": {"operation": "upload"}, "trigger": trigger or {}, "effect": effect}]


def check_no_swap_no_duplicate(
    mock: MockProvider, provider: ProviderSpec, outcomes: dict[Path, UploadResult | LLMFilesError]
) -> None:
    """Every success is the caller's own bytes at the provider; every stored file is accounted for once."""
    settle_uploads(mock)
    held = stored_ids(mock, provider)
    accounted: set[str] = set()
    for path, outcome in outcomes.items():
        if isinstance(outcome, UploadResult):
            assert outcome.sha256 == sha256_of(path)
            assert stored_sha256(mock, provider, outcome.file.id) == outcome.sha256, f"swapped: {path}"
            accounted.add(outcome.file.id)
        else:
            assert isinstance(outcome, UploadMayExistError), repr(outcome)
            accounted.update(outcome.candidate_ids)
    assert held <= accounted, f"provider files nobody was told about: {held - accounted}"
    by_content: dict[str, int] = {}
    for file_id in held:
        digest = stored_sha256(mock, provider, file_id)
        by_content[digest] = by_content.get(digest, 0) + 1
    assert all(count == 1 for count in by_content.values()), f"duplicate provider files: {by_content}"


@pytest.mark.parametrize("offset", [pytest.param(0, id="same-second"), pytest.param(2, id="later-second")])
@pytest.mark.parametrize("effect", ["lost_response", "reset", "malformed"])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_same_name_and_size_uploads_never_take_each_others_file(
    mock: MockProvider, clock: OffsetClock, tmp_path: Path, provider: ProviderSpec, effect: str, offset: int
) -> None:
    clock.offset = offset
    a, b = same_name_pair(tmp_path, "data.bin")
    mock.set_rules(on_upload({"kind": effect}, {"first": 2}))
    async with client(provider, mock) as uploader:
        results = await uploader.upload_many([a, b], purpose=PURPOSE[provider.name])
    outcomes = dict(zip((a, b), results, strict=True))
    check_no_swap_no_duplicate(mock, provider, outcomes)
    if provider is GLM or offset:  # provable by content, or the one later candidate: both must succeed
        assert all(isinstance(r, UploadResult) for r in results), results
        assert results[0].file.id != results[1].file.id  # type: ignore[union-attr]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_same_name_file_from_another_client_is_never_adopted(
    mock: MockProvider, tmp_path: Path, provider: ProviderSpec
) -> None:
    mine, theirs = same_name_pair(tmp_path, "same.jsonl")
    async with client(provider, mock) as other:
        stored = await other.upload(theirs, purpose=PURPOSE[provider.name])
    mock.set_rules(on_upload({"kind": "reset"}, {"first": 1}))
    async with client(provider, mock) as uploader:
        outcome: UploadResult | LLMFilesError
        try:
            outcome = await uploader.upload(mine, purpose=PURPOSE[provider.name])
        except UploadMayExistError as exc:
            outcome = exc
    check_no_swap_no_duplicate(mock, provider, {mine: outcome, theirs: stored})
    if provider is GLM:  # content shows the other file is not ours: send again
        assert isinstance(outcome, UploadResult)
        assert outcome.obtained is Obtained.SENT
    else:  # created in the second our send began or before: cannot be shown not to be ours
        assert isinstance(outcome, UploadMayExistError)
        assert outcome.candidate_ids == (stored.file.id,)
        assert stored.file.id in str(outcome)


@pytest.mark.slow
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_slow_body_and_short_read_timeout_leave_one_provider_file(
    mock: MockProvider, tmp_path: Path, provider: ProviderSpec
) -> None:
    source, _ = same_name_pair(tmp_path, "slow.bin", size=600_000)
    # 600 kB at 200 kB/s reaches the provider ~3 s after it left the client, which gives up after 1 s.
    mock.set_rules(on_upload({"kind": "slow", "bytes_per_second": 200_000}, {"first": 1}))
    patient = {"read_timeout": 1.0, "sleep": asyncio.sleep, "reconcile_grace": 8, "reconcile_interval": 0.25}
    async with client(provider, mock, **patient) as uploader:
        result = await uploader.upload(source, purpose=PURPOSE[provider.name])
    uploads = settle_uploads(mock)
    assert len(uploads) == 1, uploads
    assert stored_ids(mock, provider) == {result.file.id}
    assert stored_sha256(mock, provider, result.file.id) == result.sha256 == sha256_of(source)
    assert result.reconciled


@pytest.mark.parametrize("status", [502, 503, 504])
@pytest.mark.parametrize("provider", PROVIDERS)
async def test_stored_then_gateway_error_is_adopted_not_resent(
    mock: MockProvider, clock: OffsetClock, tmp_path: Path, provider: ProviderSpec, status: int
) -> None:
    clock.offset = 2  # Kimi cannot compare content: only a file stamped after our send began is adopted
    source, _ = same_name_pair(tmp_path, "gw.jsonl")
    mock.set_rules(on_upload({"kind": "stored_then_error", "status": status}, {"first": 1}))
    async with client(provider, mock) as uploader:
        result = await uploader.upload(source, purpose=PURPOSE[provider.name])
    uploads = settle_uploads(mock)
    assert [entry["fault"] for entry in uploads] == ["stored_then_error"]
    assert stored_ids(mock, provider) == {result.file.id} == {uploads[0]["file_id"]}
    assert stored_sha256(mock, provider, result.file.id) == result.sha256
    expected = Obtained.RECONCILED_VERIFIED if provider is GLM else Obtained.RECONCILED_UNVERIFIED
    assert result.obtained is expected


async def test_kimi_stored_then_error_in_the_same_second_is_refused_with_the_candidate(
    mock: MockProvider, tmp_path: Path
) -> None:
    source, _ = same_name_pair(tmp_path, "gw.jsonl")
    mock.set_rules(on_upload({"kind": "stored_then_error", "status": 502}, {"first": 1}))
    async with client(KIMI, mock) as uploader:
        with pytest.raises(UploadMayExistError, match="may exist") as caught:
            await uploader.upload(source, purpose="file-extract")
    (only,) = stored_ids(mock, KIMI)
    assert caught.value.candidate_ids == (only,)
    assert (caught.value.provider, caught.value.filename) == ("kimi", "gw.jsonl")


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_an_older_file_outside_the_window_is_never_a_candidate(
    mock: MockProvider, clock: OffsetClock, tmp_path: Path, provider: ProviderSpec
) -> None:
    """The same name, size (and for GLM the same bytes) an hour earlier: only the new copy is ours."""
    source, other = same_name_pair(tmp_path, "again.jsonl")
    earlier = source if provider is GLM else other
    clock.offset = -3600
    async with client(provider, mock) as uploader:
        old = await uploader.upload(earlier, purpose=PURPOSE[provider.name])
    clock.offset = 2
    mock.set_rules(on_upload({"kind": "lost_response"}, {"first": 1}))
    async with client(provider, mock) as uploader:
        result = await uploader.upload(source, purpose=PURPOSE[provider.name])
    (lost,) = [entry for entry in settle_uploads(mock) if entry["fault"] == "lost_response"]
    assert result.file.id == lost["file_id"] != old.file.id
    assert stored_ids(mock, provider) == {old.file.id, result.file.id}


async def test_a_failed_reconcile_says_the_upload_may_exist_with_the_listing_failure_as_cause(
    mock: MockProvider, tmp_path: Path
) -> None:
    source, _ = same_name_pair(tmp_path, "lost.jsonl")
    mock.set_rules(
        [
            *on_upload({"kind": "lost_response"}),
            {"match": {"operation": "list"}, "effect": {"kind": "error", "status": 500}},
        ]
    )
    async with client(GLM, mock) as uploader:
        with pytest.raises(UploadMayExistError) as caught:
            await uploader.upload(source, purpose="batch")
    message = str(caught.value)
    assert "lost.jsonl" in message
    assert "may exist" in message
    assert isinstance(caught.value.__cause__, ServerError)
    assert caught.value.candidate_ids == ()
    assert len(stored_ids(mock, GLM)) == 1  # stored once, never sent again


async def test_kimi_never_adopts_while_another_client_of_the_process_sends_the_same_name_and_size(
    mock: MockProvider, clock: OffsetClock, tmp_path: Path
) -> None:
    """X's file is stored but X still waits for its answer; Y's send broke: the one candidate is X's."""
    clock.offset = 2  # stamped after Y began, so only the in-flight rule stands between Y and X's file
    x_path, y_path = same_name_pair(tmp_path, "twin.txt")
    mock.set_rules(
        [
            *on_upload({"kind": "latency", "seconds": 1.0}, {"first": 1}),  # X: stored, answered 1 s later
            *on_upload({"kind": "reset"}, {"every": 2}),  # Y's first attempt
        ]
    )
    async with client(KIMI, mock) as x_client, client(KIMI, mock) as y_client:
        x_task = asyncio.ensure_future(x_client.upload(x_path, purpose="file-extract"))
        while not stored_ids(mock, KIMI):
            await asyncio.sleep(0.01)
        try:
            y: UploadResult | LLMFilesError = await y_client.upload(y_path, purpose="file-extract")
        except UploadMayExistError as exc:
            y = exc
        x = await x_task
    assert isinstance(y, UploadMayExistError)
    assert y.candidate_ids == (x.file.id,)
    assert "in flight" in str(y)
    check_no_swap_no_duplicate(mock, KIMI, {x_path: x, y_path: y})


async def test_a_corrupt_answer_to_the_content_check_never_disowns_our_file(
    mock: MockProvider, tmp_path: Path
) -> None:
    """The check's first GET /content is a 200 with other bytes: retried, not taken as "not ours"."""
    source, _ = same_name_pair(tmp_path, "checked.jsonl")
    mock.set_rules(
        [
            *on_upload({"kind": "lost_response"}, {"first": 1}),
            {"match": {"operation": "content"}, "trigger": {"first": 1}, "effect": {"kind": "malformed"}},
        ]
    )
    async with client(GLM, mock) as uploader:
        result = await uploader.upload(source, purpose="batch")
    assert result.obtained is Obtained.RECONCILED_VERIFIED
    assert stored_ids(mock, GLM) == {result.file.id}
    assert [e["fault"] for e in mock.journal() if e["operation"] == "content"] == ["malformed", None]


def test_the_cli_prints_an_unsettled_upload_and_exits_non_zero(mock: MockProvider, tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    source, _ = same_name_pair(tmp_path, "cli.jsonl")
    mock.set_rules(on_upload({"kind": "stored_then_error", "status": 502}, {"first": 1}))
    env = {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": mock.kimi_base_url}
    result = CliRunner().invoke(app, ["upload", str(source), "--purpose", "file-extract"], env=env)
    (only,) = stored_ids(mock, KIMI)
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "may exist" in result.stderr
    assert only in result.stderr
