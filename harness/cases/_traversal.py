"""Traversal case: hostile names and Content-Disposition headers must never land outside the target dir.

The corpus is the classic set (dot segments, both separators, absolute paths, encoded and full-width dots,
NUL, bidi overrides, device names, overlong names). It is checked twice:

- through the helpers, in every header form: header -> `parse_content_disposition` -> `sanitize_filename`
  -> `safe_join`. A refusal (`UnsafeFilenameError`) is a safe outcome; a path outside the directory is an
  escape;
- through real downloads from the mock: each name is stored at the provider as the uploaded file's name,
  so the mock's ``Content-Disposition`` carries it, and downloaded once by that header and once with the
  name passed as ``filename=``. An escape is a download whose path is not directly inside the target, or
  any file that appeared in the scratch tree outside it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from harness._context import API_KEY, BenchContext
from harness.cases._arms import base_url
from harness.cases._seams import REAL, Seams
from harness.report._verdict import Measurement
from llmfiles import LLMFilesError, UnsafeFilenameError
from llmfiles.providers import KIMI
from llmfiles.transfer import parse_content_disposition, safe_join, sanitize_filename

__all__ = ["ATTACK_NAMES", "EscapeAttemptError", "count_escapes", "download_escapes", "measure_traversal"]

ATTACK_NAMES: tuple[str, ...] = (
    "../evil.txt",
    "../../../../etc/passwd",
    "..\\..\\windows\\system32\\evil.dll",
    "/etc/passwd",
    "\\\\server\\share\\evil",
    "C:\\evil.txt",
    "..",
    ".",
    "",
    "....//....//evil",
    "..%2f..%2fevil",
    "%2e%2e%2fevil",
    "\uff0e\uff0e\uff0fevil",  # full-width "../"
    "\u2024\u2024/evil",  # one-dot leaders
    "evil\x00.txt",
    "a\u202egnp.exe",
    "CON",
    "nul.txt",
    "lpt1",
    ".bashrc",
    "x" * 1000 + ".txt",
    "dir/../../evil",
    "evil\n.txt",
    "~/.ssh/authorized_keys",
)


class EscapeAttemptError(Exception):
    """Raised by a download variant instead of writing outside its directory; counted as an escape.

    The bench runs as root and the corpus holds ``/etc/passwd``: a broken download must report where it
    would have written rather than write there.
    """

    def __init__(self, target: Path) -> None:
        super().__init__(f"would write {str(target)!r}")
        self.target = target


def _headers(name: str) -> list[str]:
    quoted = name.replace("\\", "\\\\").replace('"', '\\"')
    encoded = "".join(c if c.isalnum() else "".join(f"%{b:02X}" for b in c.encode()) for c in name)
    return [
        f'attachment; filename="{quoted}"',
        f"attachment; filename*=UTF-8''{encoded}",
        f"attachment; filename={name}",
    ]


def count_escapes(directory: Path) -> tuple[int, int, int]:
    """(escapes, refused, accepted) for every corpus name, raw and through each header form."""

    root = directory.resolve()
    escapes = refused = accepted = 0
    candidates: list[str] = []
    for name in ATTACK_NAMES:
        candidates.append(name)
        for header in _headers(name):
            parsed = parse_content_disposition(header)
            if parsed is not None:
                candidates.append(parsed)
    for candidate in candidates:
        for name in (candidate, sanitize_filename(candidate)):
            try:
                target = safe_join(root, name).resolve()
            except UnsafeFilenameError:
                refused += 1
                continue
            accepted += 1
            if target == root or not target.is_relative_to(root):
                escapes += 1
    return escapes, refused, accepted


def _files(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if not path.is_dir()}


async def _store(http: httpx.AsyncClient, name: str, index: int) -> str | None:
    """Upload a small file whose stored name is `name`; its id, or None when the provider refuses it."""
    files = {"file": (name, f"traversal {index}\n".encode())}
    response = await http.post("files", data={"purpose": "file-extract"}, files=files)
    return str(response.json()["id"]) if response.is_success else None


async def download_escapes(ctx: BenchContext, sandbox: Path, seams: Seams) -> dict[str, int]:
    """Store every corpus name at the mock, download each by header and by ``filename=``; count escapes.

    `sandbox` holds the target directory several levels down, so dot segments land inside it and are seen.
    """
    target = sandbox / "a" / "b" / "c" / "d" / "target"
    target.mkdir(parents=True, exist_ok=True)
    root = target.resolve()
    before = _files(sandbox)
    counts = {"stored": 0, "not_stored": 0, "downloads": 0, "refused": 0, "escapes": 0}
    kimi = base_url(ctx, "kimi")
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with (
        httpx.AsyncClient(base_url=kimi + "/", headers=headers) as http,
        seams.client(KIMI, api_key=API_KEY, base_url=kimi) as client,
    ):
        for index, name in enumerate(ATTACK_NAMES):
            file_id = await _store(http, name, index)
            if file_id is None:
                counts["not_stored"] += 1
                continue
            counts["stored"] += 1
            for filename in (None, name):  # by the header, then the name passed by the caller
                counts["downloads"] += 1
                try:
                    path = await client.download(file_id, target, filename=filename, overwrite=True)
                except EscapeAttemptError:
                    counts["escapes"] += 1
                    continue
                except (LLMFilesError, OSError, ValueError):  # refused or failed: nothing written
                    counts["refused"] += 1
                    continue
                resolved = path.resolve()
                if resolved.parent != root:
                    counts["escapes"] += 1
    counts["escapes"] += sum(1 for path in _files(sandbox) - before if path.resolve().parent != root)
    return counts


async def measure_traversal(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    sandbox = ctx.workdir / "traversal"
    sandbox.mkdir(exist_ok=True)
    await asyncio.to_thread(ctx.mock.reset)
    escapes, refused, accepted = await asyncio.to_thread(count_escapes, sandbox)
    downloads = await download_escapes(ctx, sandbox, seams)
    detail = {
        "corpus": len(ATTACK_NAMES),
        "helpers": {
            "checked": refused + accepted,
            "refused": refused,
            "accepted": accepted,
            "escapes": escapes,
        },
        "downloads": downloads,
    }
    return [Measurement("traversal.escapes", escapes + downloads["escapes"], detail)]
