"""Traversal case: hostile names and Content-Disposition headers must never land outside the target dir.

The corpus is the classic set (dot segments, both separators, absolute paths, encoded and full-width dots,
NUL, bidi overrides, device names, overlong names); each entry goes through the same path the download
takes: header -> `parse_content_disposition` -> `sanitize_filename` -> `safe_join`. A refusal
(`UnsafeFilenameError`) is a safe outcome; a resolved path outside the directory is an escape.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from harness._context import BenchContext
from harness.report._verdict import Measurement
from llmfiles import UnsafeFilenameError
from llmfiles.transfer import parse_content_disposition, safe_join, sanitize_filename

__all__ = ["ATTACK_NAMES", "count_escapes", "measure_traversal"]

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


async def measure_traversal(ctx: BenchContext) -> list[Measurement]:
    target = ctx.workdir / "traversal-target"
    target.mkdir(exist_ok=True)
    escapes, refused, accepted = await asyncio.to_thread(count_escapes, target)
    detail = {
        "corpus": len(ATTACK_NAMES),
        "checked": refused + accepted,
        "refused": refused,
        "accepted": accepted,
    }
    return [Measurement("traversal.escapes", escapes, detail)]
