import json
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from harness.service import ServiceConfig, create_app
from llmfiles import ConfigError
from mock_provider import MockProvider

pytestmark = pytest.mark.integration


@pytest.fixture
def service(tmp_path: Path) -> TestClient:
    with MockProvider("calm") as mock:
        config = ServiceConfig(
            provider_url=mock.kimi_base_url,
            percent=50,
            stage="50%",
            events_path=tmp_path / "events.jsonl",
            ledger_path=tmp_path / "ledger.jsonl",
            workdir=tmp_path / "spool",
        )
        with TestClient(create_app(config)) as client:
            client.mock = mock  # type: ignore[attr-defined]
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

    ledger = [json.loads(line) for line in (tmp_path / "ledger.jsonl").read_text().splitlines()]
    assert [row["file_id"] for row in ledger] == ids
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert len(events) == 7
    assert {e["stage"] for e in events} == {"50%"}
    metrics = service.get("/metrics").text
    assert "llmfiles_uploads_total" in metrics
    listed = {f["id"] for f in service.get("/files").json()["data"]}
    assert set(ids) <= listed
    assert list((tmp_path / "spool").iterdir()) == []  # spooled bodies are removed after the upload


def test_content_healthz_and_unknown_file(service: TestClient) -> None:
    file_id = service.post("/upload?name=doc.txt", content=b"hello").json()["file_id"]
    assert service.get(f"/files/{file_id}/content").status_code == 200
    assert service.get("/files/nope/content").status_code == 404
    assert service.get("/healthz").json() == {"ok": True, "stage": "50%", "percent": 50.0}


def test_multipart_without_a_file_part_is_a_clear_400(service: TestClient, tmp_path: Path) -> None:
    response = service.post("/upload", data={"other": "x"}, files={"nothing": ("n", b"")})
    assert response.status_code == 400
    assert "field='file'" in response.json()["message"]
    assert list((tmp_path / "spool").iterdir()) == []


@pytest.mark.parametrize(
    ("field", "value"), [("percent", 101.0), ("provider_url", "ftp://x")], ids=["percent", "url"]
)
def test_config_rejects_bad_values(tmp_path: Path, field: str, value: object) -> None:
    kwargs = {
        "provider_url": "http://127.0.0.1:1",
        "percent": 10.0,
        "stage": "10%",
        "events_path": tmp_path / "e",
        "ledger_path": tmp_path / "l",
        "workdir": tmp_path,
        field: value,
    }
    with pytest.raises(ConfigError, match=f"{field}="):
        ServiceConfig(**kwargs)  # type: ignore[arg-type]


def test_delete_after_removes_the_provider_file_but_keeps_it_in_the_ledger(tmp_path: Path) -> None:
    with MockProvider("calm") as mock:
        config = ServiceConfig(
            provider_url=mock.kimi_base_url,
            percent=100,
            stage="100%",
            events_path=tmp_path / "events.jsonl",
            ledger_path=tmp_path / "ledger.jsonl",
            workdir=tmp_path / "spool",
            delete_after=True,
        )
        with TestClient(create_app(config)) as client:
            file_id = client.post("/upload?name=gone.txt", content=b"bytes").json()["file_id"]
            assert client.get("/files").json()["data"] == []
        operations = [(e["operation"], e["file_id"]) for e in mock.journal()]
    assert ("upload", file_id) in operations
    assert ("delete", file_id) in operations
    assert file_id in (tmp_path / "ledger.jsonl").read_text()
