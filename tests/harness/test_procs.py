from pathlib import Path

import httpx
import pytest

from harness._procs import MockProcess, ServerProcess, ServerStartError

pytestmark = pytest.mark.integration


def test_a_child_that_prints_no_url_is_a_clear_error_with_its_stderr(tmp_path: Path) -> None:
    child = ServerProcess(
        ["-c", "import sys; sys.stderr.write('no port for you'); sys.exit(3)"], log_path=tmp_path / "x.log"
    )
    with pytest.raises(ServerStartError, match="no port for you"):
        child.start()
    assert not child.running


def test_mock_process_answers_control_calls_and_stops(tmp_path: Path) -> None:
    with MockProcess(profile="calm", data_dir=tmp_path / "data", log_path=tmp_path / "mock.log") as mock:
        assert mock.kimi_base_url.endswith("/kimi/v1")
        response = httpx.post(
            f"{mock.kimi_base_url}/files",
            headers={"Authorization": "Bearer k"},
            files={"file": ("a.txt", b"abc")},
            data={"purpose": "file-extract"},
        )
        assert response.status_code == 200
        assert [e["operation"] for e in mock.journal()] == ["upload"]
        mock.set_profile("flaky", seed=3)
        mock.reset()
        assert mock.journal() == []
        url = mock.url
    assert not mock.running
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/_stats")
