"""PNG plots drawn from `Collected` data; nothing here measures anything.

matplotlib runs on its Agg backend (no display, no GUI toolkit), selected per figure through the
object-oriented API so importing this module never changes global matplotlib state for a host program.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.report._series import Collected

__all__ = ["draw_all"]

MB = 1024 * 1024


def _save(fig: Figure, path: Path) -> Path:
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _latency_cdf(data: Collected, path: Path) -> Path | None:
    if not data.latency_s:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    for arm, samples in sorted(data.latency_s.items()):
        if not samples:
            continue
        ordered = sorted(samples)
        n = len(ordered)
        ax.step(
            [s * 1000 for s in ordered], [(i + 1) / n for i in range(n)], where="post", label=f"{arm} (n={n})"
        )
    ax.set_xscale("log")
    ax.set_xlabel("upload latency (ms, log scale)")
    ax.set_ylabel("fraction of uploads")
    ax.set_title("Upload latency CDF per arm (realistic profile, same run)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _memory(data: Collected, path: Path) -> Path | None:
    if not data.memory:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    lines: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
    for point in data.memory:
        lines[(point.client, point.op)].append((point.size_bytes, point.peak_bytes))
    for (client, op), points in sorted(lines.items()):
        points.sort()
        style = "-o" if op == "upload" else "--s"
        ax.plot([s / MB for s, _ in points], [p / MB for _, p in points], style, label=f"{client} {op}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("file size (MB)")
    ax.set_ylabel("peak traced memory (MB, memray)")
    ax.set_title("Peak memory against file size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def _throughput(data: Collected, path: Path) -> Path | None:
    if not data.throughput:
        return None
    fig = Figure(figsize=(7, 4.5))
    ax = fig.add_subplot()
    arms: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for point in data.throughput:
        arms[point.arm].append((point.concurrency, point.files_per_s))
    for arm, points in sorted(arms.items()):
        points.sort()
        ax.plot([c for c, _ in points], [f for _, f in points], "-o", label=arm)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("concurrent uploads")
    ax.set_ylabel("files per second")
    ax.set_title("Throughput against concurrency (realistic profile)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    return _save(fig, path)


def _timeline(data: Collected, path: Path) -> Path | None:
    """Calls binned by start time (the arm is chosen at the start), the decision marked, after it shaded.

    Binned by completion, calls started on the async arm before a rollback and finishing after it would
    make the async share look alive after the decision.
    """
    if not data.timeline:
        return None
    fig = Figure(figsize=(8, 4.5))
    ax = fig.add_subplot()
    series: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for point in data.timeline:
        series[point.series].append((point.t_s, point.value))
    for name, points in sorted(series.items()):
        points.sort()
        ax.plot([t for t, _ in points], [v for _, v in points], "-", drawstyle="steps-post", label=name)
    ends = [t for points in series.values() for t, _ in points]
    for label, t in sorted(data.markers_s.items(), key=lambda kv: kv[1]):
        ax.axvline(t, linestyle=":", color="black")
        ax.annotate(label, (t, 1.0), xycoords=("data", "axes fraction"), rotation=90, va="top", fontsize=8)
    decision = data.markers_s.get("rollback decision")
    if decision is not None and ends:
        ax.axvspan(decision, max(ends) + 1, color="grey", alpha=0.15, label="after the decision: legacy only")
    ax.set_xlabel("seconds since the run began (calls binned by the time they started)")
    ax.set_ylabel("share of the calls started in the bin")
    ax.set_ylim(-0.02, 1.05)
    ax.set_title("Rollback timeline: injected brownout, the decision, and where calls went after it")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


_SCALE_PANELS = (
    ("stall_p99_ms", "p99 loop stall (ms)"),
    ("stall_max_ms", "max loop stall (ms)"),
    ("wall_s", "wall per batch (s)"),
    ("cpu_s_per_gb", "CPU s per GB"),
    ("peak_mb_per_transfer", "peak MB per transfer"),
)


def _scale_curves(data: Collected, path: Path) -> Path | None:
    """Ours against the peers per concurrency level: one row per operation, one column per figure."""
    if not data.scale:
        return None
    ops = [op for op in ("upload", "download") if any(p.op == op for p in data.scale)]
    colors = {client: f"C{i}" for i, client in enumerate(sorted({p.client for p in data.scale}))}
    fig = Figure(figsize=(4 * len(_SCALE_PANELS), 3.6 * len(ops)))
    axes = fig.subplots(len(ops), len(_SCALE_PANELS), squeeze=False)
    for row, op in enumerate(ops):
        for column, (figure, label) in enumerate(_SCALE_PANELS):
            ax = axes[row][column]
            lines: dict[str, list[tuple[int, float]]] = defaultdict(list)
            for point in data.scale:
                value = getattr(point, figure)
                if point.op == op and value is not None:
                    lines[point.client].append(
                        (point.concurrency, value if figure.startswith("peak") else value[0])
                    )
            for client, points in sorted(lines.items()):
                points.sort()
                style = "-o" if client.startswith("ours") else "--."
                ax.plot(
                    [c for c, _ in points], [v for _, v in points], style, color=colors[client], label=client
                )
            ax.set_xscale("log", base=2)
            ax.set_xlabel("transfers requested at once")
            ax.set_title(f"{op}: {label}", fontsize=9)
            ax.grid(True, alpha=0.3)
            if figure == "wall_s":  # the one panel every client (curl too) is on
                ax.legend(fontsize=7)
    return _save(fig, path)


def draw_all(data: Collected, out_dir: Path) -> list[Path]:
    """Draw every plot that has data into `out_dir`; return the files written, in a stable order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = [
        _latency_cdf(data, out_dir / "latency_cdf.png"),
        _memory(data, out_dir / "memory_vs_size.png"),
        _throughput(data, out_dir / "throughput_vs_concurrency.png"),
        _timeline(data, out_dir / "rollback_timeline.png"),
        _scale_curves(data, out_dir / "scale_curves.png"),
    ]
    return [path for path in drawn if path is not None]
