"""report.md, report.json and the plots, written from verdicts and collected data.

Each file is written to a temporary name in the same directory and renamed into place, so a run that
dies half-way never leaves a truncated report that looks finished.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.report._plots import draw_all
from harness.report._series import Collected
from harness.report._verdict import Outcome, Verdict, exit_code

__all__ = ["ReportFiles", "write_report"]


@dataclass(frozen=True, slots=True)
class ReportFiles:
    """Where a report landed."""

    markdown: Path
    json: Path
    plots: tuple[Path, ...]


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def _clean(value: Any) -> Any:
    """JSON has no NaN or infinity: a ratio over zero becomes null rather than an invalid document."""
    if isinstance(value, float):
        return _finite(value)
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    return value


def _row(verdict: Verdict) -> dict[str, Any]:
    measurement = verdict.measurement
    return {
        "id": verdict.claim.id,
        "topic": verdict.claim.topic,
        "claim": verdict.claim.text,
        "source": verdict.claim.source,
        "priority": str(verdict.claim.priority),
        "claimed": verdict.claim.claimed,
        "threshold": verdict.claim.threshold,
        "unit": verdict.claim.unit,
        "measured": _finite(measurement.value) if measurement else None,
        "measured_text": verdict.measured,
        "verdict": str(verdict.outcome),
        "how": verdict.claim.how,
        "note": measurement.note if measurement else "",
        "detail": dict(measurement.detail) if measurement else {},
    }


def _markdown(
    verdicts: Sequence[Verdict], data: Collected, plots: Sequence[Path], meta: Mapping[str, Any]
) -> str:
    failed = [v for v in verdicts if v.fails_run]
    passed = sum(v.outcome is Outcome.PASS for v in verdicts)
    lines = [
        "# llmfiles bench report",
        "",
        " · ".join(f"{key}: {value}" for key, value in meta.items()),
        "",
        f"**{passed}/{len(verdicts)} claims hold; "
        + (
            f"{len(failed)} must-claim(s) did not: {', '.join(v.claim.id for v in failed)}.**"
            if failed
            else "every must-claim holds.**"
        ),
        "",
        "| claim | source | priority | claimed | measured | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for verdict in verdicts:
        claim = verdict.claim
        lines.append(
            f"| `{claim.id}` {claim.text} | {claim.source} | {claim.priority} | {claim.claimed} "
            f"| {verdict.measured} | **{verdict.outcome}** |"
        )
    lines += ["", "## How each claim was measured", ""]
    for verdict in verdicts:
        note = verdict.measurement.note if verdict.measurement else ""
        lines.append(f"- `{verdict.claim.id}`: {verdict.claim.how}." + (f" *{note}*" if note else ""))
    if data.peers:
        lines += [
            "",
            "## Peers in the same run",
            "",
            "Both sides of a row ran the same number of rounds, taking turns in mirrored order (ours, "
            "theirs, theirs, ours, ...) on the same files; each figure is the median of the per-round "
            "figures, with the range over the rounds in brackets.",
            "",
            "| peer | figure | rounds | theirs | ours | ours/theirs |",
            "|---|---|---|---|---|---|",
        ]
        for peer in data.peers:
            lines.append(
                f"| {peer.peer} | {peer.figure} | {peer.rounds} "
                f"| {peer.theirs:.3g} {peer.unit}{_range(peer.theirs_range)} "
                f"| {peer.ours:.3g} {peer.unit}{_range(peer.ours_range)} | {peer.ratio:.3g} |"
            )
    lines += _scale_section(data)
    if plots:
        lines += ["", "## Plots", ""]
        lines += [f"![{path.stem}]({path.name})" for path in plots]
    return "\n".join(lines) + "\n"


def _range(bounds: tuple[float, float] | None) -> str:
    return "" if bounds is None else f" ({bounds[0]:.3g}-{bounds[1]:.3g})"


def _spread(value: tuple[float, float, float] | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    median, low, high = value
    return f"{median:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _scale_section(data: Collected) -> list[str]:
    """The curves as a table: one row per operation, level and client, timed figures beside memory."""
    timed = [p for p in data.scale if p.wall_s is not None]
    if not timed:
        return []
    memory = {(p.op, p.concurrency, p.client): p.peak_mb_per_transfer for p in data.scale if p.wall_s is None}
    rounds = max(p.rounds for p in timed)
    lines = [
        "",
        "## Scale: ours against the peers at each concurrency level",
        "",
        f"Each level N requests N transfers of the same files at once, batch after batch, next to a 5 ms "
        f"ticker on the same loop. Every client runs {rounds} rounds in mirrored order (ours, peers..., "
        "peers reversed, ours, ...), the mock reset before every upload run, each client with its "
        "library's defaults (ours: `TransferSettings()`). Figures are the median over the rounds with "
        "the range (min-max) in brackets; wall is seconds per batch of N; CPU is this process's (curl: "
        "its processes') CPU seconds per GB moved; peak memory is memray's high-water mark in a fresh "
        "process divided by the transfers in flight at once. Timing figures move with the machine's load: "
        "compare clients within one run, not across runs. The work differs by design: our uploads hash "
        "every byte (SHA-256) and our downloads check every byte against that hash (`expected_sha256`), "
        "then fsync the file and its directory and rename it into place; the peers' downloads write the "
        "body as it comes and stop there.",
        "",
        "| op | N | client | p99 stall ms | max stall ms | wall s | CPU s/GB | peak MB/transfer | errors |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for p in sorted(timed, key=lambda p: (p.op != "upload", p.concurrency)):
        peak = memory.get((p.op, p.concurrency, p.client))
        lines.append(
            f"| {p.op} | {p.concurrency} | {p.client} | {_spread(p.stall_p99_ms)} "
            f"| {_spread(p.stall_max_ms)} | {_spread(p.wall_s, 3)} | {_spread(p.cpu_s_per_gb, 2)} "
            f"| {'-' if peak is None else f'{peak:.2f}'} | {p.errors} |"
        )
    return lines


def write_report(
    out_dir: Path, verdicts: Sequence[Verdict], data: Collected, meta: Mapping[str, Any]
) -> ReportFiles:
    """Write report.md, report.json and the PNG plots into `out_dir` (created if missing).

    Args:
        out_dir: target directory; existing report files there are replaced.
        verdicts: one per claim, in table order.
        data: the raw figures; stored in report.json so plots can be redrawn later.
        meta: run facts for the header (mode, duration, machine); must be JSON-serialisable.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = tuple(draw_all(data, out_dir))
    document = {
        "meta": dict(meta),
        "exit_code": exit_code(verdicts),
        "claims": [_row(verdict) for verdict in verdicts],
        "peers": [
            {
                "peer": p.peer,
                "figure": p.figure,
                "unit": p.unit,
                "theirs": p.theirs,
                "ours": p.ours,
                "ratio": p.ratio,
                "rounds": p.rounds,
                "theirs_range": p.theirs_range,
                "ours_range": p.ours_range,
            }
            for p in data.peers
        ],
        "plots": [path.name for path in plots],
        "data": data.to_json(),
    }
    json_path = out_dir / "report.json"
    md_path = out_dir / "report.md"
    _atomic_write(json_path, json.dumps(_clean(document), indent=2, default=str, allow_nan=False) + "\n")
    _atomic_write(md_path, _markdown(verdicts, data, plots, meta))
    return ReportFiles(markdown=md_path, json=json_path, plots=plots)
