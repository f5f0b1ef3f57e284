"""The load run's picture: per-arm latency and the async share over time, phases and verdict marked.

Calls are binned by their start, because the arm is chosen at the start: a call that started in a
control phase and finished in a candidate phase was routed by the control stage, and binning by
completion would smear each switch across the next bin. The share plotted is the async arm's share of
the calls started in the bin; the stage's percentage is drawn beside it, so a reader can check that the
switches took effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from harness.load._figures import Labeller, Sample
from harness.load._phases import PhaseWindow
from llmfiles.observe import Event

__all__ = ["draw_timeline"]

_COLOURS = {"async": "tab:blue", "legacy": "tab:orange"}
_ROLE_SHADE = {"control": "0.92", "candidate": "#dbe9f6"}


def draw_timeline(
    path: Path,
    windows: Sequence[PhaseWindow],
    events: Sequence[Event],
    *,
    samples: Sequence[Sample] = (),
    label: Labeller,
    title: str,
    decision: str,
) -> Path | None:
    """Write the PNG to `path`; None when no phase ran. `samples` (Locust's) add what callers saw."""
    if not windows:
        return None
    origin = windows[0].start
    end = windows[-1].end
    width = max(1.0, (end - origin) / 40)
    edges = np.arange(0.0, end - origin + width, width)
    starts: dict[str, list[float]] = {"async": [], "legacy": []}
    latency: dict[str, list[float]] = {"async": [], "legacy": []}
    for event in events:
        window = next((w for w in windows if w.holds(event.ts)), None)
        arm = None if window is None else label(event, window)
        if arm is None:
            continue
        starts[arm].append(event.ts - origin)
        latency[arm].append(event.duration_s * 1000)

    fig = Figure(figsize=(9, 6))
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    for ax in (top, bottom):
        for window in windows:
            ax.axvspan(window.start - origin, window.end - origin, color=_ROLE_SHADE[window.phase.role], lw=0)
    for window in windows:
        top.annotate(
            window.phase.name,
            (window.start - origin + width / 4, 1.0),
            xycoords=("data", "axes fraction"),
            va="top",
            fontsize=8,
        )
    counts = {arm: np.histogram(starts[arm], bins=edges)[0] for arm in starts}
    centres = (edges[:-1] + edges[1:]) / 2
    for arm, colour in _COLOURS.items():
        if not starts[arm]:
            continue
        top.scatter(starts[arm], latency[arm], s=4, alpha=0.25, color=colour, lw=0)
        index = np.digitize(starts[arm], edges) - 1
        values = np.asarray(latency[arm])
        medians = [
            float(np.median(values[index == i])) if np.any(index == i) else np.nan
            for i in range(len(centres))
        ]
        top.plot(centres, medians, "-", color=colour, lw=2, label=f"{arm} arm (dispatcher): median per bin")
    if samples:
        seen = np.asarray([s.t - origin for s in samples])
        waited = np.asarray([s.latency_s * 1000 for s in samples])
        index = np.digitize(seen, edges) - 1
        medians = [
            float(np.median(waited[index == i])) if np.any(index == i) else np.nan
            for i in range(len(centres))
        ]
        top.plot(centres, medians, "k:", lw=1.5, label="Locust (what callers saw): median")
    top.set_yscale("log")
    top.set_ylabel("latency (ms, log)")
    top.legend(loc="upper right", fontsize=8)
    top.set_title(f"{title}\nverdict: {decision}", fontsize=10)

    total = counts["async"] + counts["legacy"]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, counts["async"] / total * 100, np.nan)
    bottom.step(centres, share, where="mid", color=_COLOURS["async"], label="async share of calls started")
    for window in windows:
        bottom.hlines(
            window.phase.percent,
            window.start - origin,
            window.end - origin,
            colors="k",
            linestyles="--",
            lw=1,
        )
    bottom.plot([], [], "k--", lw=1, label="stage percentage")
    bottom.set_ylabel("async share (%)")
    bottom.set_xlabel(f"seconds since the first phase (calls binned by start, {width:.0f} s bins)")
    bottom.set_ylim(0, 105)
    bottom.legend(loc="upper right", fontsize=8)
    bottom.axvline(end - origin, color="red", lw=1.5)
    bottom.annotate(
        f"verdict {decision}", (end - origin, 50), color="red", ha="right", va="center", fontsize=9
    )
    FigureCanvasAgg(fig)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path
