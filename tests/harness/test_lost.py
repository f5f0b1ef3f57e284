from pathlib import Path
from typing import Any

import pytest

from harness import find_lost
from llmfiles.providers import GLM, KIMI, ProviderSpec
from llmfiles.transfer import AsyncFilesClient
from mock_provider import MockProvider
from tests.mock_provider._helpers import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def mock() -> MockProvider:
    with MockProvider("calm") as running:
        yield running


async def _upload(
    mock: MockProvider, tmp_path: Path, count: int, provider: ProviderSpec = KIMI
) -> list[tuple[str, str]]:
    done = []
    base_url = mock.kimi_base_url if provider is KIMI else mock.glm_base_url
    purpose = "file-extract" if provider is KIMI else "batch"
    async with AsyncFilesClient(provider, api_key="test-key", base_url=base_url) as client:
        for i in range(count):
            path = tmp_path / f"f{i}.txt"
            path.write_bytes(bytes([i]) * (1000 + i))
            result = await client.upload(path, purpose=purpose)
            done.append((result.file.id, result.sha256))
    return done


def stored_uploads(mock: MockProvider, count: int) -> list[dict[str, Any]]:
    """The journal once it holds `count` uploads: the mock writes an entry after the exchange ends."""
    wait_for(lambda: len([e for e in mock.journal() if e["operation"] == "upload"]) >= count)
    return mock.journal()


async def test_real_uploads_are_all_found(mock: MockProvider, tmp_path: Path) -> None:
    done = await _upload(mock, tmp_path, 4)
    report = find_lost(done, stored_uploads(mock, 4))
    assert report.ok
    assert report.checked == 4


async def test_a_missing_file_and_a_changed_hash_are_both_lost(mock: MockProvider, tmp_path: Path) -> None:
    done = await _upload(mock, tmp_path, 2)
    (first_id, first_sha), (second_id, _) = done
    claimed = [(first_id, first_sha), (second_id, "0" * 64), ("never-uploaded", first_sha)]
    report = find_lost(claimed, stored_uploads(mock, 2))
    assert report.missing == ("never-uploaded",)
    assert set(report.mismatched) == {second_id}
    assert report.lost == 2


async def test_a_lost_response_still_counts_as_stored(mock: MockProvider, tmp_path: Path) -> None:
    mock.set_rules(
        [{"match": {"operation": "upload"}, "trigger": {"first": 1}, "effect": {"kind": "lost_response"}}]
    )
    # GLM batch: the adopted file is proven by its content (Kimi file-extract cannot be, within a second).
    done = await _upload(mock, tmp_path, 1, GLM)
    journal = stored_uploads(mock, 1)
    assert any(entry["fault"] == "lost_response" for entry in journal)
    assert find_lost(done, journal).ok


async def test_a_failed_upload_in_the_journal_is_not_a_stored_file() -> None:
    journal = [{"operation": "upload", "status": 500, "file_id": "abc", "sha256": "x", "fault": "error"}]
    assert find_lost([("abc", "x")], journal).missing == ("abc",)
