"""The dispatcher adopting a file whose answer was lost, with real clients against the real mock.

The async arm posts the file and loses the answer (the mock stores it, then drops the connection), without
searching the listing itself: only the dispatcher's reconcile stands between the lost answer and a legacy
upload of a second copy. The caller's file must be hashed once, and the result labelled by what the
reconcile proved: verified where ``/content`` is the stored bytes (GLM ``batch``), unverified where it is
not (Kimi ``file-extract``).
"""

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmfiles.rollout._dispatch
import llmfiles.transfer._client
import llmfiles.transfer._models
from llmfiles import GLM, KIMI, Obtained
from llmfiles.legacy import LegacyFilesClient
from llmfiles.providers import ProviderSpec
from llmfiles.rollout import Dispatcher, FlagState
from llmfiles.transfer import AsyncFilesClient, TransferSettings, UploadResult, file_sha256
from mock_provider import MockProvider
from tests.llmfiles.transfer._provider_files import OffsetClock, settle_uploads, stored_ids, stored_sha256

pytestmark = pytest.mark.integration

PURPOSE = {"glm": "batch", "kimi": "file-extract"}
LOST_ANSWER = [
    {"match": {"operation": "upload"}, "trigger": {"first": 1}, "effect": {"kind": "lost_response"}}
]


class Flags:
    def snapshot(self) -> FlagState:
        return FlagState(enabled=True, percent=100.0, fallback=True)


@pytest.fixture
def clock() -> OffsetClock:
    return OffsetClock()


@pytest.fixture
def mock(clock: OffsetClock) -> Iterator[MockProvider]:
    with MockProvider("calm", seed=5, clock=clock) as running:
        yield running


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Counter[Path]:
    """Reads of a local file to hash it, per path, wherever the library hashes one."""
    counted: Counter[Path] = Counter()

    def counting(path: Path, chunk_size: int) -> str:
        counted[Path(path)] += 1
        return file_sha256(path, chunk_size)

    for module in (llmfiles.rollout._dispatch, llmfiles.transfer._models, llmfiles.transfer._client):
        monkeypatch.setattr(module, "file_sha256", counting)
    return counted


def answer_lost(base_url: str) -> Callable[..., Any]:
    """An async arm that sends the file once and, its answer lost, does not look for it in the listing."""

    async def send(path: Path, *, purpose: str) -> UploadResult:
        auth = {"Authorization": "Bearer sk-test"}
        async with httpx.AsyncClient(base_url=base_url + "/", headers=auth) as raw:
            await raw.post("files", data={"purpose": purpose}, files={"file": (path.name, path.read_bytes())})
        raise AssertionError("the mock was told to lose this answer")

    return send


@pytest.mark.parametrize(
    ("provider", "obtained"),
    [
        pytest.param(GLM, Obtained.RECONCILED_VERIFIED, id="glm-batch-content-proven"),
        pytest.param(KIMI, Obtained.RECONCILED_UNVERIFIED, id="kimi-file-extract-name-size-time"),
    ],
)
async def test_a_lost_answer_is_adopted_once_hashed_and_labelled_by_what_was_proven(
    mock: MockProvider,
    clock: OffsetClock,
    tmp_path: Path,
    hashes: Counter[Path],
    provider: ProviderSpec,
    obtained: Obtained,
) -> None:
    clock.offset = 2  # Kimi cannot compare content: only a file stamped after the call began is adopted
    source = tmp_path / "lost.jsonl"
    source.write_bytes(hashlib.sha256(b"seed").digest() * 4096)
    base_url = mock.glm_base_url if provider is GLM else mock.kimi_base_url
    mock.set_rules(LOST_ANSWER)
    settings = TransferSettings(retries=0, read_timeout=5.0)
    async with AsyncFilesClient(provider, api_key="sk-test", base_url=base_url, settings=settings) as client:
        dispatcher = Dispatcher(
            Flags(),
            async_arm=answer_lost(base_url),
            legacy_arm=LegacyFilesClient(provider, api_key="sk-test", base_url=base_url).upload,
            provider=provider.name,
            reconcile=client.find_uploaded,
            adopt=UploadResult.adopted,
        )
        result = await dispatcher.upload(source, purpose=PURPOSE[provider.name], key="k")
    uploads = settle_uploads(mock)
    assert [entry["fault"] for entry in uploads] == ["lost_response"]  # the legacy arm sent nothing
    assert stored_ids(mock, provider) == {result.file.id} == {uploads[0]["file_id"]}
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert stored_sha256(mock, provider, result.file.id) == result.sha256 == digest
    assert result.obtained is obtained
    assert hashes[source] == 1
