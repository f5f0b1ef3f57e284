"""`default_headers` on both clients, seen on the wire by the mock's header-matched chaos rules."""

from pathlib import Path
from typing import Any

import pytest

from llmfiles import KIMI, ConfigError, ProviderError
from llmfiles.legacy import LegacyFilesClient
from llmfiles.transfer import AsyncFilesClient, TransferSettings

pytestmark = pytest.mark.integration

ARM = "X-LLMFiles-Arm"


def _fail_uploads_labelled(mock: Any, arm: str) -> None:
    # 401 is never retried, so one request per upload reaches the journal.
    match = {"operation": "upload", "headers": {ARM: arm}}
    mock.set_rules([{"match": match, "effect": {"kind": "error", "status": 401}}])


async def test_each_client_carries_its_label_and_only_the_labelled_one_gets_the_chaos(
    mock: Any, tmp_path: Path
) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"hello" * 100)
    legacy = LegacyFilesClient(
        KIMI, api_key="sk-test", base_url=mock.kimi_base_url, default_headers={ARM: "legacy"}
    )
    once = TransferSettings(retries=0)
    url = mock.kimi_base_url
    async with AsyncFilesClient(
        KIMI, api_key="sk-test", base_url=url, settings=once, default_headers={ARM: "async"}
    ) as client:
        _fail_uploads_labelled(mock, "async")
        with pytest.raises(ProviderError):
            await client.upload(source, purpose="file-extract")
        assert legacy.upload(source, purpose="file-extract").size == source.stat().st_size

        _fail_uploads_labelled(mock, "legacy")
        with pytest.raises(ProviderError):
            legacy.upload(source, purpose="file-extract")
        assert (await client.upload(source, purpose="file-extract")).size == source.stat().st_size

    faults = [e["fault"] for e in mock.journal() if e["operation"] == "upload"]
    assert faults == ["error", None, "error", None]


@pytest.mark.parametrize("name", ["Authorization", "authorization"])
async def test_default_headers_cannot_replace_the_key(name: str) -> None:
    with pytest.raises(ConfigError, match="api_key"):
        LegacyFilesClient(KIMI, api_key="sk-test", default_headers={name: "Bearer other"})
    with pytest.raises(ConfigError, match="api_key"):
        AsyncFilesClient(KIMI, api_key="sk-test", default_headers={name: "Bearer other"})
