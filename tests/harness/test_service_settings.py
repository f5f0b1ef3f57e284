"""The reference service takes its client's retries, timeout and concurrency from the LLMFILES_* variables."""

from pathlib import Path

import pytest
from starlette.testclient import TestClient

from harness.service import NO_REGISTRY, ServiceConfig, create_app
from llmfiles import ConfigError
from llmfiles.transfer import TransferSettings
from mock_provider import MockProvider

pytestmark = pytest.mark.integration

TOKEN = "settings-test-token-0123"


def _config(mock: MockProvider, tmp_path: Path) -> ServiceConfig:
    return ServiceConfig(
        provider_url=mock.kimi_base_url,
        percent=100,
        stage="100%",
        events_path=tmp_path / "events.jsonl",
        ledger_path=tmp_path / "ledger.jsonl",
        workdir=tmp_path / "spool",
        registry=NO_REGISTRY,
        token=TOKEN,
    )


@pytest.mark.parametrize(("retries", "answered", "attempts"), [(None, 200, 2), ("0", 502, 1)])
def test_max_retries_from_the_environment_reaches_the_services_client(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, retries: str | None, answered: int, attempts: int
) -> None:
    monkeypatch.delenv("LLMFILES_MAX_RETRIES", raising=False)
    monkeypatch.delenv("ASYNC_UPLOAD_MAX_RETRIES", raising=False)
    if retries is not None:
        monkeypatch.setenv("ASYNC_UPLOAD_MAX_RETRIES", retries)  # the old name works as well
    with MockProvider() as mock:
        mock.set_rules(
            [
                {
                    "match": {"operation": "upload"},
                    "trigger": {"first": 1},
                    "effect": {"kind": "error", "status": 503},
                }
            ]
        )
        with TestClient(create_app(_config(mock, tmp_path))) as service:
            response = service.post(
                "/upload?name=a.txt",
                content=b"abc",
                headers={"X-User": "u1", "Authorization": f"Bearer {TOKEN}"},
            )
        sent = [e for e in mock.journal() if e["operation"] == "upload"]

    assert response.status_code == answered, response.text
    assert len(sent) == attempts


def test_timeout_and_concurrency_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMFILES_TIMEOUT_S", "7.5")
    monkeypatch.setenv("LLMFILES_MAX_CONCURRENCY", "3")
    with MockProvider() as mock:
        transfer = _config(mock, tmp_path).transfer

    assert (transfer.read_timeout, transfer.write_timeout, transfer.max_concurrency) == (7.5, 7.5, 3)
    assert transfer.connect_timeout == TransferSettings().connect_timeout


def test_a_bad_value_is_a_config_error_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("LLMFILES_MAX_CONCURRENCY", "0")
    with MockProvider() as mock, pytest.raises(ConfigError, match="LLMFILES_MAX_CONCURRENCY='0'"):
        _config(mock, tmp_path)
