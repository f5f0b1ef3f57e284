"""`llmfiles upload` / `llmfiles download` end to end against the real mock, through typer's runner."""

import hashlib
import os
import socket
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
import structlog
from typer.testing import CliRunner, Result

from llmfiles.cli import app
from llmfiles.cli._transfer import ProviderName
from llmfiles.providers import PROVIDERS

pytestmark = pytest.mark.integration

TRANSFER_VARIABLES = (
    "LLMFILES_MAX_RETRIES",
    "ASYNC_UPLOAD_MAX_RETRIES",
    "LLMFILES_TIMEOUT_S",
    "ASYNC_UPLOAD_TIMEOUT",
    "LLMFILES_MAX_CONCURRENCY",
)


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in TRANSFER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    yield
    structlog.reset_defaults()  # the commands configure logging for the process


def kimi(mock: Any, **more: str) -> dict[str, str]:
    return {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": mock.kimi_base_url, **more}


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, args, env=env)


def uploads(mock: Any) -> list[dict[str, Any]]:
    return [entry for entry in mock.journal() if entry["operation"] == "upload"]


def first_upload_fails(mock: Any, effect: dict[str, Any]) -> None:
    mock.set_rules([{"match": {"operation": "upload"}, "trigger": {"first": 1}, "effect": effect}])


def one_line_error(result: Result) -> str:
    """The command's stderr, checked to be exactly one ``error:`` line and no traceback."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.output
    assert isinstance(result.exception, SystemExit)  # a clean exit, not an escaped exception
    return lines[0]


def flat(text: str) -> str:
    """`text` as one line: rich wraps help and error boxes at the runner's 80 columns."""
    return " ".join(text.replace("│", " ").split())


def write(path: Path, data: bytes = b"data") -> Path:
    path.write_bytes(data)
    return path


def test_upload_then_download(mock: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "batch.jsonl", b'{"n": 1}\n' * 10_000)
    env = {"ZHIPUAI_API_KEY": "sk-cli", "ZHIPUAI_BASE_URL": mock.glm_base_url}
    uploaded = run(["upload", str(source), "--provider", "glm", "--purpose", "batch"], env)
    assert uploaded.exit_code == 0, uploaded.output
    file_id, sha256, name = uploaded.stdout.strip().split("\t")
    assert sha256 == hashlib.sha256(source.read_bytes()).hexdigest()
    assert name == str(source)
    dest = tmp_path / "new" / "dir"
    downloaded = run(["download", file_id, "--to", str(dest), "--provider", "glm", "--sha256", sha256], env)
    assert downloaded.exit_code == 0, downloaded.output
    assert Path(downloaded.stdout.strip()).read_bytes() == source.read_bytes()


def test_missing_key_is_a_usage_error_not_a_traceback(tmp_path: Path) -> None:
    result = run(["upload", str(write(tmp_path / "a.txt"))], {"MOONSHOT_API_KEY": ""})
    assert result.exit_code == 2
    assert "MOONSHOT_API_KEY is not set" in one_line_error(result)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://example/v1", "base_url='ftp://example/v1' must be an http(s) URL"),
        ("http://127.0.0.1:99999/v1", "base_url='http://127.0.0.1:99999/v1' has port 99999, outside 1-65535"),
    ],
)
def test_bad_base_url_is_a_usage_error_naming_the_variable(tmp_path: Path, url: str, message: str) -> None:
    env = {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": url}
    result = run(["upload", str(write(tmp_path / "a.txt"))], env)
    assert result.exit_code == 2
    assert f"MOONSHOT_BASE_URL: {message}" in one_line_error(result)
    assert "sk-cli" not in result.output


def test_the_provider_choice_is_the_providers_table() -> None:
    assert [choice.value for choice in ProviderName] == list(PROVIDERS)


def test_unknown_provider_is_refused_by_the_choice() -> None:
    result = run(["download", "f1", "--to", ".", "--provider", "openai"])
    assert result.exit_code == 2
    assert "'openai' is not one of 'kimi', 'glm'" in flat(result.stderr)


def test_a_missing_file_is_a_usage_error_and_nothing_is_uploaded(mock: Any, tmp_path: Path) -> None:
    good, missing = write(tmp_path / "good.txt"), tmp_path / "missing.txt"
    result = run(["upload", str(good), str(missing)], kimi(mock))
    assert result.exit_code == 2
    assert f"not a readable file: '{missing}'" in one_line_error(result)
    assert result.stdout == ""
    assert mock.journal() == []


def test_a_purpose_the_provider_does_not_take_is_a_usage_error(mock: Any, tmp_path: Path) -> None:
    result = run(["upload", str(write(tmp_path / "a.txt")), "--purpose", "batch"], kimi(mock))
    assert result.exit_code == 2
    assert (
        "purpose='batch' is not accepted by kimi; use one of: file-extract, image, video"
        in one_line_error(result)
    )
    assert mock.journal() == []


def test_a_connection_failure_names_the_upload_the_user_asked_for(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"MOONSHOT_API_KEY": "sk-cli", "MOONSHOT_BASE_URL": f"http://127.0.0.1:{port}/v1"}
    result = run(["upload", str(write(tmp_path / "a.txt"))], {**env, "LLMFILES_MAX_RETRIES": "0"})
    assert result.exit_code == 1
    assert one_line_error(result).startswith(f"error: upload of '{tmp_path / 'a.txt'}' to kimi failed: ")


def test_one_bad_name_fails_alone_and_markup_in_names_is_printed_as_is(mock: Any, tmp_path: Path) -> None:
    # A name from another system (not UTF-8) cannot be announced in the multipart body; the rest go.
    good = write(tmp_path / "good.txt", b"good")
    bad = write(tmp_path / os.fsdecode(b"[red]bad\xff.txt"), b"bad")
    (tmp_path / "[").mkdir()
    marked = write(tmp_path / "[" / "x].txt", b"marked")  # the path holds "[/x]", a closing tag to rich
    result = run(["upload", str(good), str(bad), str(marked)], kimi(mock))

    assert result.exit_code == 1
    error = one_line_error(result)
    assert f"upload of '{tmp_path}/[red]bad\\xff.txt' to kimi failed" in error
    assert "is not valid UTF-8; rename the file" in error
    lines = result.stdout_bytes.splitlines()
    assert [line.split(b"\t")[2] for line in lines] == [os.fsencode(good), os.fsencode(marked)]
    stored = {entry["file_id"] for entry in uploads(mock)}
    assert {line.split(b"\t")[0].decode() for line in lines} == stored
    assert len(stored) == 2


def test_ids_and_purposes_with_markup_are_printed_as_given(mock: Any, tmp_path: Path) -> None:
    purpose = run(["upload", str(write(tmp_path / "a.txt")), "--purpose", "[/x][red]"], kimi(mock))
    assert purpose.exit_code == 2
    assert "purpose='[/x][red]' is not accepted" in one_line_error(purpose)

    download = run(["download", "[/x][red]id", "--to", str(tmp_path / "d")], kimi(mock))
    assert download.exit_code == 1
    assert one_line_error(download).startswith("error: download of '[/x][red]id' from kimi failed")


def test_sha256_must_be_64_hex_digits_before_any_request(mock: Any, tmp_path: Path) -> None:
    file_id = run(["upload", str(write(tmp_path / "a.txt"))], kimi(mock)).stdout.split("\t")[0]
    mock.reset()
    dest = tmp_path / "new"
    for bad in ("abc", "g" * 64, "a" * 63, "a" * 65):
        result = run(["download", file_id, "--to", str(dest), "--sha256", bad], kimi(mock))
        assert result.exit_code == 2
        assert f"--sha256='{bad}' is not 64 hexadecimal digits" in one_line_error(result)
    assert mock.journal() == []
    assert not dest.exists()


def test_a_failed_download_removes_the_directories_it_created(mock: Any, tmp_path: Path) -> None:
    existing = tmp_path / "existing"
    existing.mkdir()
    dest = existing / "new" / "deeper"
    result = run(["download", "nosuchfile", "--to", str(dest)], kimi(mock))

    assert result.exit_code == 1
    assert "status=404" in one_line_error(result)
    assert list(existing.iterdir()) == []  # `new` and `deeper` are gone, the user's own directory stays

    again = run(["download", "nosuchfile", "--to", str(existing)], kimi(mock))
    assert again.exit_code == 1
    assert existing.is_dir()


def test_help_names_the_variables_purposes_and_exit_codes() -> None:
    upload_help = run(["upload", "--help"]).stdout
    download_help = run(["download", "--help"]).stdout
    for text in (upload_help, download_help):
        for name in ("MOONSHOT_API_KEY", "ZHIPUAI_BASE_URL", "LLMFILES_MAX_RETRIES", "LLMFILES_TIMEOUT_S"):
            assert name in text
        assert "Exit codes: 0 all done; 1 a transfer failed" in flat(text)
        assert "2 usage or configuration error" in flat(text)
        assert "130/143 interrupted by SIGINT/SIGTERM" in flat(text)
        assert "kimi|glm" in text
        assert "list[Path]" not in text
        assert "{" not in text.split("\n\n")[0]  # the usage line: `FILE...`, not typer's `{files}...`
    assert "glm: agent, batch, code-interpreter, file-extract, voice-clone-input" in flat(upload_help)
    assert "Usage: root upload [OPTIONS] FILE..." in upload_help
    assert "Exit codes" in run(["--help"]).stdout


def test_version() -> None:
    result = run(["--version"])
    assert (result.exit_code, result.stdout) == (0, f"llmfiles {version('llmfiles')}\n")


def test_verbosity_flags_choose_what_reaches_stderr(mock: Any, tmp_path: Path) -> None:
    source = write(tmp_path / "a.txt")
    results = {}
    for flag in ("", "-v", "--quiet"):
        mock.reset()  # a fresh account each time: the same bytes stored twice would be ambiguous
        first_upload_fails(mock, {"kind": "error", "status": 503})  # a retry warning
        results[flag] = run(["upload", str(source), *([flag] if flag else [])], kimi(mock))

    assert {flag: result.exit_code for flag, result in results.items()} == {"": 0, "-v": 0, "--quiet": 0}
    assert "transfer.retry" in results[""].stderr
    assert "transfer.retry" in results["-v"].stderr
    assert results["--quiet"].stderr == ""  # no warning, no progress bar
    for result in results.values():
        assert result.stdout.count("\n") == 1  # the one result line, never log text


def test_verbose_shows_info_lines(mock: Any, tmp_path: Path) -> None:
    env = {"ZHIPUAI_API_KEY": "sk-cli", "ZHIPUAI_BASE_URL": mock.glm_base_url}
    source = write(tmp_path / "a.jsonl", b'{"n": 1}\n')
    outputs = []
    for flag in ("", "-v"):
        mock.reset()  # a fresh account each time: the same bytes stored twice would be ambiguous
        first_upload_fails(mock, {"kind": "lost_response"})  # stored, answer lost: found by the listing
        result = run(
            ["upload", str(source), "--provider", "glm", "--purpose", "batch", *([flag] if flag else [])], env
        )
        assert result.exit_code == 0, result.output
        outputs.append(result.stderr)
    assert "transfer.reconciled" not in outputs[0]
    assert "transfer.reconciled" in outputs[1]


@pytest.mark.parametrize("name", ["LLMFILES_MAX_RETRIES", "ASYNC_UPLOAD_MAX_RETRIES"])
def test_max_retries_from_the_environment_takes_effect(mock: Any, tmp_path: Path, name: str) -> None:
    source = write(tmp_path / "a.txt")
    first_upload_fails(mock, {"kind": "error", "status": 503})
    assert run(["upload", str(source)], kimi(mock)).exit_code == 0  # the default retries once more
    assert len(uploads(mock)) == 2
    mock.reset()

    result = run(["upload", str(source)], kimi(mock, **{name: "0"}))
    assert result.exit_code == 1
    assert "status=503" in one_line_error(result)
    assert len(uploads(mock)) == 1


def test_timeout_from_the_environment_takes_effect(mock: Any, tmp_path: Path) -> None:
    mock.set_rules([{"match": {"operation": "upload"}, "effect": {"kind": "hang"}}])
    env = kimi(mock, LLMFILES_TIMEOUT_S="0.3", LLMFILES_MAX_RETRIES="0")
    result = run(["upload", str(write(tmp_path / "a.txt"))], env)
    assert result.exit_code == 1
    assert "ReadTimeout" in one_line_error(result)


def _most_in_flight(entries: list[dict[str, Any]]) -> int:
    spans = [(e["started_at"], e["started_at"] + e["duration_s"]) for e in entries]
    return max(
        sum(other_start < end and other_end > start for other_start, other_end in spans)
        for start, end in spans
    )


@pytest.mark.parametrize(("concurrency", "in_flight"), [("1", 1), (None, 3)])
def test_max_concurrency_from_the_environment_takes_effect(
    mock: Any, tmp_path: Path, concurrency: str | None, in_flight: int
) -> None:
    mock.set_rules([{"match": {"operation": "upload"}, "effect": {"kind": "latency", "seconds": 0.3}}])
    files = [str(write(tmp_path / f"{i}.txt")) for i in range(3)]
    env = kimi(mock, **({"LLMFILES_MAX_CONCURRENCY": concurrency} if concurrency else {}))
    assert run(["upload", *files], env).exit_code == 0
    assert _most_in_flight(uploads(mock)) == in_flight


def test_the_rollouts_own_settings_never_stop_a_transfer(mock: Any, tmp_path: Path) -> None:
    env = kimi(mock, LLMFILES_FLAG_FILE=str(tmp_path / "not-yet.json"), LLMFILES_STAGE="bogus")
    result = run(["upload", str(write(tmp_path / "a.txt"))], env)
    assert result.exit_code == 0, result.output
    assert len(uploads(mock)) == 1


def test_a_bad_transfer_variable_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    env = {"MOONSHOT_API_KEY": "sk-cli", "LLMFILES_MAX_CONCURRENCY": "0"}
    result = run(["upload", str(write(tmp_path / "a.txt"))], env)
    assert result.exit_code == 2
    assert "LLMFILES_MAX_CONCURRENCY='0'" in one_line_error(result)
