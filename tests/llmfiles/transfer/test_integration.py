"""The async client against the real mock provider on loopback, under every fault the mock has."""

import asyncio
import hashlib
import json
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path, PosixPath
from typing import Any

import pytest

from llmfiles import (
    GLM,
    KIMI,
    AuthenticationError,
    ConfigError,
    IntegrityError,
    LLMFilesError,
    NotFoundError,
    ProviderError,
    RateLimitedError,
    ServerError,
    TransferIncompleteError,
    TransferTimeoutError,
    TransportError,
)
from llmfiles.legacy import LegacyFilesClient
from llmfiles.providers import ProviderSpec
from llmfiles.transfer import AsyncFilesClient, Obtained, TransferSettings, UploadResult

pytestmark = pytest.mark.integration

SIZE = 300_000
# Each fault with the outcome it must have when it never stops ("always"): an upload whose answer was
# cut, garbled or lost was stored all the same and is adopted through the listing; everything else that
# fails does so with its own error class, never a generic one (413 has no class of its own).
FAULTS: list[Any] = [
    pytest.param({"kind": "latency", "seconds": 0.05}, UploadResult, PosixPath, id="latency"),
    pytest.param(
        {"kind": "error", "status": 429, "retry_after": 1}, RateLimitedError, RateLimitedError, id="429"
    ),
    pytest.param({"kind": "error", "status": 500}, ServerError, ServerError, id="500"),
    pytest.param({"kind": "error", "status": 503}, RateLimitedError, RateLimitedError, id="503"),
    pytest.param({"kind": "error", "status": 401}, AuthenticationError, AuthenticationError, id="401"),
    pytest.param({"kind": "error", "status": 413}, ProviderError, ProviderError, id="413"),
    pytest.param({"kind": "reset"}, TransportError, TransportError, id="reset"),
    pytest.param(
        {"kind": "reset", "after_request_bytes": 65536}, TransportError, TransportError, id="reset-mid-body"
    ),
    pytest.param({"kind": "partial", "fraction": 0.5}, UploadResult, TransferIncompleteError, id="partial"),
    pytest.param({"kind": "malformed"}, UploadResult, IntegrityError, id="malformed"),
    pytest.param({"kind": "slow", "bytes_per_second": 2_000_000}, UploadResult, PosixPath, id="slow"),
    pytest.param({"kind": "hang"}, TransferTimeoutError, TransferTimeoutError, id="hang"),
    pytest.param({"kind": "lost_response"}, UploadResult, TransportError, id="lost-response"),
]
VERDICTS = {401, 413}
"""Statuses that are the provider's verdict on the request: retrying them cannot help."""
TRIGGERS = [pytest.param({"first": 1}, id="once"), pytest.param({}, id="always")]


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


async def settled(mock: Any, operation: str, count: int) -> list[dict[str, Any]]:
    """The journal's `operation` entries once `count` of them are in and no more arrive (up to 5 s).

    The mock journals a request after its last byte left, which can be a moment after the client saw it;
    waiting a quiet moment past `count` also catches an entry too many.
    """
    entries: list[dict[str, Any]] = []
    for _ in range(250):
        entries = [e for e in mock.journal() if e["operation"] == operation]
        if len(entries) >= count:
            await asyncio.sleep(0.05)
            again = [e for e in mock.journal() if e["operation"] == operation]
            if len(again) == len(entries):
                return entries
            continue
        await asyncio.sleep(0.02)
    return entries


def parts_left(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.endswith(".part")]


def client(provider: ProviderSpec, mock: Any, settings: Callable[..., TransferSettings]) -> AsyncFilesClient:
    """A client for `provider` pointed at the mock's base URL for it, with the never-sleeping settings."""
    base_url = mock.kimi_base_url if provider is KIMI else mock.glm_base_url
    return AsyncFilesClient(provider, api_key="sk-test", base_url=base_url, settings=settings())


@pytest.fixture
async def glm(mock: Any, settings: Callable[..., TransferSettings]) -> AsyncIterator[AsyncFilesClient]:
    """An open GLM client against the mock, closed after the test."""
    async with client(GLM, mock, settings) as opened:
        yield opened


@pytest.fixture
async def kimi(mock: Any, settings: Callable[..., TransferSettings]) -> AsyncIterator[AsyncFilesClient]:
    """An open Kimi client against the mock, closed after the test."""
    async with client(KIMI, mock, settings) as opened:
        yield opened


def on(
    operation: str, effect: dict[str, Any], *, trigger: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """The one chaos rule: `effect` on every `operation` request that `trigger` (default: all) picks."""
    return [{"match": {"operation": operation}, "trigger": trigger or {}, "effect": effect}]


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("effect", "upload_always", "download_always"), FAULTS)
async def test_upload_under_fault_succeeds_verified_or_fails_typed(
    mock: Any,
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    effect: dict[str, Any],
    trigger: dict[str, Any],
    upload_always: type,
    download_always: type,
) -> None:
    source = pattern_file("data.jsonl", SIZE)
    mock.set_rules(on("upload", effect, trigger=trigger))
    try:
        result: UploadResult | LLMFilesError = await glm.upload(source, purpose="batch")
    except LLMFilesError as exc:
        result = exc
    mock.set_rules([])
    stored = [f for f in await glm.list() if f.filename == "data.jsonl"]
    assert len(stored) <= 1, f"duplicate files at the provider: {stored}"
    if isinstance(result, UploadResult):
        assert result.sha256 == sha256_of(source)
        assert [f.id for f in stored] == [result.file.id]
        recorded = {e["file_id"]: e["sha256"] for e in await settled(mock, "upload", 1)}
        assert recorded[result.file.id] == result.sha256
    else:
        assert trigger == {} or effect.get("status") in VERDICTS, (
            f"a single fault was not retried: {result!r}"
        )
    if trigger == {}:
        assert type(result) is upload_always, f"under a persistent {effect}: {result!r}"


async def test_a_name_that_is_not_utf8_stores_nothing_through_either_arm(
    mock: Any, kimi: AsyncFilesClient, latin1_named: Path
) -> None:
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        await kimi.upload(latin1_named, purpose="file-extract")
    legacy = LegacyFilesClient(KIMI, api_key="sk-test", base_url=mock.kimi_base_url)
    with pytest.raises(ConfigError, match="not valid UTF-8"):
        await asyncio.to_thread(legacy.upload, latin1_named, purpose="file-extract")
    assert mock.journal() == []
    assert mock.stats()["files"]["kimi"] == 0


async def test_lost_response_leaves_exactly_one_file(
    mock: Any, glm: AsyncFilesClient, pattern_file: Callable[[str, int], Path]
) -> None:
    source = pattern_file("report.jsonl", SIZE)
    mock.set_rules(on("upload", {"kind": "lost_response"}, trigger={"first": 1}))
    result = await glm.upload(source, purpose="batch")
    listing = await glm.list()
    uploads = await settled(mock, "upload", 1)
    assert result.obtained is Obtained.RECONCILED_VERIFIED
    assert result.attempts == 1
    assert [f.id for f in listing] == [result.file.id]
    assert len(uploads) == 1
    assert uploads[0]["fault"] == "lost_response"
    assert uploads[0]["sha256"] == result.sha256 == sha256_of(source)


@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize(("effect", "upload_always", "download_always"), FAULTS)
async def test_download_under_fault_is_whole_or_absent(
    mock: Any,
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
    effect: dict[str, Any],
    trigger: dict[str, Any],
    upload_always: type,
    download_always: type,
) -> None:
    source = pattern_file("data.jsonl", SIZE)
    uploaded = await glm.upload(source, purpose="batch")
    mock.set_rules(on("content", effect, trigger=trigger))
    try:
        path: Path | LLMFilesError = await glm.download(
            uploaded.file.id, dest, expected_sha256=uploaded.sha256, expected_size=SIZE
        )
    except LLMFilesError as exc:
        path = exc
    assert parts_left(dest) == []
    if isinstance(path, Path):
        assert path == dest / "data.jsonl"
        assert sha256_of(path) == uploaded.sha256
    else:
        assert os.listdir(dest) == []
        assert trigger == {} or effect.get("status") in VERDICTS, f"a single fault was not retried: {path!r}"
    if trigger == {}:
        assert type(path) is download_always, f"under a persistent {effect}: {path!r}"


async def test_broken_download_resumes_with_range(
    mock: Any,
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    size = 2_000_000
    source = pattern_file("big.jsonl", size)
    uploaded = await glm.upload(source, purpose="batch")
    mock.set_rules(on("content", {"kind": "partial", "fraction": 0.5}, trigger={"first": 1}))
    path = await glm.download(uploaded.file.id, dest)
    assert sha256_of(path) == uploaded.sha256
    fetches = await settled(mock, "content", 2)
    assert [e["fault"] for e in fetches] == ["partial", None]
    assert 0 < fetches[0]["bytes_out"] < size
    assert fetches[0]["bytes_out"] + fetches[1]["bytes_out"] == size  # the second fetch sent only the rest
    assert fetches[1]["status"] == 206


async def test_single_flight_one_fetch_for_many_callers(
    mock: Any,
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    source = pattern_file("shared.jsonl", SIZE)
    other = pattern_file("other.jsonl", SIZE // 2)
    first, second = await glm.upload(source, purpose="batch"), await glm.upload(other, purpose="batch")
    mock.set_rules(on("content", {"kind": "latency", "seconds": 0.2}))
    paths = await asyncio.gather(
        *(glm.download(first.file.id, dest) for _ in range(10)),
        glm.download(second.file.id, dest),
    )
    fetches = [e["file_id"] for e in await settled(mock, "content", 2)]
    assert sorted(fetches) == sorted([first.file.id, second.file.id])
    assert set(paths[:10]) == {dest / "shared.jsonl"}
    assert paths[10] == dest / "other.jsonl"
    assert sorted(os.listdir(dest)) == ["other.jsonl", "shared.jsonl"]


async def test_single_flight_shares_the_error(mock: Any, glm: AsyncFilesClient, dest: Path) -> None:
    mock.set_rules(on("content", {"kind": "latency", "seconds": 0.1}))
    outcomes = await asyncio.gather(
        *(glm.download("file-missing", dest) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(o, NotFoundError) for o in outcomes)
    assert len({id(o) for o in outcomes}) == 1
    assert len(await settled(mock, "content", 1)) == 1


async def test_cancelled_caller_does_not_cancel_the_others(
    mock: Any,
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    source = pattern_file("shared.jsonl", SIZE)
    uploaded = await glm.upload(source, purpose="batch")
    mock.set_rules(on("content", {"kind": "slow", "bytes_per_second": 1_000_000}))
    leaving = asyncio.create_task(glm.download(uploaded.file.id, dest))
    staying = asyncio.create_task(glm.download(uploaded.file.id, dest))
    await asyncio.sleep(0.1)
    leaving.cancel()
    path = await staying
    assert leaving.cancelled()
    assert sha256_of(path) == uploaded.sha256
    assert len(await settled(mock, "content", 1)) == 1


async def test_cancelled_download_leaves_nothing(
    mock: Any,
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    source = pattern_file("slow.jsonl", SIZE)
    uploaded = await glm.upload(source, purpose="batch")
    mock.set_rules(on("content", {"kind": "slow", "bytes_per_second": 500_000}))
    seen: list[int] = []
    task = asyncio.create_task(glm.download(uploaded.file.id, dest, progress=lambda d, _t: seen.append(d)))
    while not seen:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen[-1] < SIZE
    assert os.listdir(dest) == []


async def test_collisions_get_a_suffix_and_overwrite_replaces(
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    source = pattern_file("data.jsonl", 1000)
    (dest / "data.jsonl").write_bytes(b"mine")
    uploaded = await glm.upload(source, purpose="batch")
    first = await glm.download(uploaded.file.id, dest)
    second = await glm.download(uploaded.file.id, dest)
    replaced = await glm.download(uploaded.file.id, dest, overwrite=True)
    named = await glm.download(uploaded.file.id, dest, filename="../escape.jsonl")
    assert (first.name, second.name, replaced.name) == ("data (1).jsonl", "data (2).jsonl", "data.jsonl")
    assert named == dest / "_escape.jsonl"
    assert sha256_of(replaced) == uploaded.sha256


async def test_symlinks_are_never_followed(
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    tmp_path: Path,
    dest: Path,
) -> None:
    source = pattern_file("data.jsonl", 1000)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"precious")
    (dest / "data.jsonl").symlink_to(outside)
    uploaded = await glm.upload(source, purpose="batch")
    kept = await glm.download(uploaded.file.id, dest)
    replaced = await glm.download(uploaded.file.id, dest, overwrite=True)
    assert kept == dest / "data (1).jsonl"
    assert replaced == dest / "data.jsonl"
    assert not replaced.is_symlink()
    assert outside.read_bytes() == b"precious"


async def test_integrity_mismatch_keeps_nothing(
    glm: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    source = pattern_file("data.jsonl", 1000)
    uploaded = await glm.upload(source, purpose="batch")
    with pytest.raises(LLMFilesError, match="expected_sha256="):
        await glm.download(uploaded.file.id, dest, expected_sha256="0" * 64)
    with pytest.raises(LLMFilesError, match="expected_size said 999"):
        await glm.download(uploaded.file.id, dest, expected_size=999)
    assert os.listdir(dest) == []


async def test_kimi_download_names_from_metadata(
    kimi: AsyncFilesClient,
    pattern_file: Callable[[str, int], Path],
    dest: Path,
) -> None:
    source = pattern_file("notes.txt", 1000)
    uploaded = await kimi.upload(source, purpose="file-extract")
    path = await kimi.download(uploaded.file.id, dest)
    await kimi.delete(uploaded.file.id)
    assert await kimi.list() == []
    # Kimi's /content of a file-extract upload is the extraction (JSON), not the bytes that went up,
    # and the name says so.
    assert path == dest / "notes.txt.extracted.json"
    assert json.loads(path.read_bytes())["filename"] == "notes.txt"


async def test_broken_download_without_range_support_starts_over(
    mock: Any, kimi: AsyncFilesClient, pattern_file: Callable[[str, int], Path], dest: Path
) -> None:
    source = pattern_file("notes.txt", 1000)
    uploaded = await kimi.upload(source, purpose="file-extract")
    mock.set_rules(on("content", {"kind": "partial", "fraction": 0.5}, trigger={"first": 1}))
    path = await kimi.download(uploaded.file.id, dest, filename="extracted.json")
    fetches = await settled(mock, "content", 2)
    assert [e["status"] for e in fetches] == [200, 200]
    assert path.stat().st_size == fetches[1]["bytes_out"]
    assert parts_left(dest) == []
