"""`llmfiles upload` / `llmfiles download` end to end against the real mock."""

import hashlib
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from llmfiles.cli._transfer import register

pytestmark = pytest.mark.integration


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


def test_upload_then_download(app: typer.Typer, mock: Any, tmp_path: Path) -> None:
    source = tmp_path / "batch.jsonl"
    source.write_bytes(b'{"n": 1}\n' * 10_000)
    env = {"ZHIPUAI_API_KEY": "sk-cli", "ZHIPUAI_BASE_URL": mock.glm_base_url}
    runner = CliRunner()
    uploaded = runner.invoke(app, ["upload", str(source), "--provider", "glm", "--purpose", "batch"], env=env)
    assert uploaded.exit_code == 0, uploaded.output
    file_id, sha256, name = uploaded.stdout.strip().split("\t")
    assert sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert name == str(source)
    dest = tmp_path / "new" / "dir"
    downloaded = runner.invoke(
        app, ["download", file_id, "--to", str(dest), "--provider", "glm", "--sha256", sha256], env=env
    )
    assert downloaded.exit_code == 0, downloaded.output
    assert Path(downloaded.stdout.strip()).read_bytes() == source.read_bytes()


def test_missing_key_is_a_usage_error_not_a_traceback(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"x")
    result = CliRunner().invoke(app, ["upload", str(source)], env={"MOONSHOT_API_KEY": ""})
    assert result.exit_code == 2
    assert "MOONSHOT_API_KEY is not set" in result.stderr
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception


def test_bad_base_url_is_a_usage_error_naming_the_variable(app: typer.Typer, tmp_path: Path) -> None:
    source = tmp_path / "a.txt"
    source.write_bytes(b"x")
    env = {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": "ftp://example/v1"}
    result = CliRunner().invoke(app, ["upload", str(source)], env=env)
    assert result.exit_code == 2
    assert "MOONSHOT_BASE_URL: base_url='ftp://example/v1' must be an http(s) URL" in result.stderr
    assert "sk-cli" not in result.output


def test_unknown_provider_is_a_usage_error(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["download", "f1", "--to", ".", "--provider", "openai"])
    assert result.exit_code == 2
    assert "provider='openai' is unknown" in result.stderr


def test_failed_upload_exits_1_and_names_the_file(app: typer.Typer, mock: Any, tmp_path: Path) -> None:
    good, missing = tmp_path / "good.txt", tmp_path / "missing.txt"
    good.write_bytes(b"fine")
    env = {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": mock.kimi_base_url}
    result = CliRunner().invoke(app, ["upload", str(good), str(missing)], env=env)
    assert result.exit_code == 1
    assert "good.txt" in result.stdout
    assert "missing.txt" in result.stderr
    assert "sk-cli" not in result.output


def test_download_error_exits_1_without_traceback(app: typer.Typer, mock: Any, tmp_path: Path) -> None:
    env = {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": mock.kimi_base_url}
    result = CliRunner().invoke(app, ["download", "nosuchfile", "--to", str(tmp_path)], env=env)
    assert result.exit_code == 1
    assert "status=404" in result.stderr
    assert list(tmp_path.iterdir()) == []
