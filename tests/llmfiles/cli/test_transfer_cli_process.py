"""The `llmfiles` console script as a shell runs it: a pipeline, and signals, against the real mock."""

import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration

LLMFILES = str(Path(sys.executable).with_name("llmfiles"))


def _env(mock: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LLMFILES_", "ASYNC_UPLOAD_"))}
    return {
        **env,
        "MOONSHOT_API_KEY": "sk-cli",
        "MOONSHOT_BASE_URL": mock.kimi_base_url,
        "ZHIPUAI_API_KEY": "sk-cli",
        "ZHIPUAI_BASE_URL": mock.glm_base_url,
    }


def _wait_for(probe: Callable[[], bool], timeout: float = 60.0) -> None:
    # Generous: a console script takes seconds to start on a busy machine.
    deadline = time.monotonic() + timeout
    while not probe():
        assert time.monotonic() < deadline, f"still false after {timeout} s"
        time.sleep(0.02)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_upload_piped_to_cut_prints_exactly_the_ids_after_a_503(mock: Any, tmp_path: Path) -> None:
    for name in ("a.pdf", "b.pdf"):
        (tmp_path / name).write_bytes(b"%PDF-1.4 " + name.encode() * 1000)
    mock.set_rules(
        [
            {
                "match": {"operation": "upload"},
                "trigger": {"first": 1},
                "effect": {"kind": "error", "status": 503},
            }
        ]
    )

    done = subprocess.run(
        ["/bin/sh", "-c", f"{shlex.quote(LLMFILES)} upload a.pdf b.pdf | cut -f1"],
        cwd=tmp_path,
        env=_env(mock),
        capture_output=True,
        text=True,
        timeout=60,
    )

    ids = done.stdout.splitlines()
    stored = [e["file_id"] for e in mock.journal() if e["operation"] == "upload" and e["status"] == 200]
    assert len(ids) == 2
    assert sorted(ids) == sorted(stored)
    assert "transfer.retry" in done.stderr  # the retry was reported, on stderr


@pytest.mark.slow  # three processes start: about 10 s on a busy machine
@pytest.mark.parametrize(("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_an_interrupted_download_leaves_no_part_file_and_no_directory_it_made(
    mock: Any, tmp_path: Path, sig: signal.Signals, code: int
) -> None:
    source = tmp_path / "big.jsonl"
    # 3.15 MB: more than one write batch (1 MiB), so bytes reach the .part file long before the end.
    source.write_bytes(b'{"n": 1}\n' * 350_000)
    uploaded = subprocess.run(
        [LLMFILES, "upload", str(source), "--provider", "glm", "--purpose", "batch", "--quiet"],
        env=_env(mock),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    file_id = uploaded.stdout.split("\t")[0]
    # 300 kB/s: ten seconds for the whole file, the first batch on disk after 3.5 s; the signal lands
    # mid-body.
    mock.set_rules(
        [{"match": {"operation": "content"}, "effect": {"kind": "slow", "bytes_per_second": 300_000}}]
    )
    parent = tmp_path / "downloads"
    parent.mkdir()
    dest = parent / "new"
    process = subprocess.Popen(
        [LLMFILES, "download", file_id, "--to", str(dest), "--provider", "glm"],
        env=_env(mock),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As a shell runs a foreground command: a test run started as a background job (`cmd &` in a
        # script) inherits SIGINT ignored, and Python then rightly never raises KeyboardInterrupt.
        preexec_fn=_default_sigint,
    )
    try:
        _wait_for(lambda: dest.is_dir() and any(p.name.endswith(".part") for p in dest.iterdir()))
        _wait_for(lambda: any(p.stat().st_size > 0 for p in dest.iterdir()))  # bytes are arriving
        process.send_signal(sig)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()

    assert process.returncode == code, stderr
    assert stdout == ""
    assert f"error: {'terminated (SIGTERM)' if sig == signal.SIGTERM else 'interrupted (SIGINT)'}" in stderr
    assert "Traceback" not in stderr
    assert list(parent.iterdir()) == []  # no .part file, and the directory the command made is gone
