import json
import math
from pathlib import Path

import pytest

from harness import (
    Collected,
    Measurement,
    MemoryPoint,
    PeerFigure,
    ScalePoint,
    ThroughputPoint,
    TimelinePoint,
    judge_all,
    write_report,
)

MB = 1024 * 1024
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _data() -> Collected:
    return Collected(
        memory=[
            MemoryPoint(arm, "upload", size * MB, int(size * MB * (2.1 if arm == "legacy" else 0.05)))
            for arm in ("legacy", "async")
            for size in (1, 50)
        ],
        throughput=[
            ThroughputPoint(arm, c, 32, 32 * 256 * 1024, 10 / c if arm == "async" else 8.0)
            for arm in ("legacy", "async")
            for c in (1, 8, 32)
        ],
        latency_s={"async": [0.1, 0.2, 0.3], "legacy": [0.3, 0.5, 0.9]},
        timeline=[TimelinePoint(t, "async success rate", 1.0 if t < 5 else 0.7) for t in range(10)],
        markers_s={"brownout": 5.0, "rollback": 7.5},
        peers=[
            PeerFigure("openai-path", "peak memory, 50 MB upload", "MB", 56.0, 2.5),
            PeerFigure.of_rounds(
                "AsyncOpenAI, file object", "max loop stall", "ms", [4.0, 2.0, 9.0], [3, 1, 2]
            ),
        ],
        scale=[
            *(
                ScalePoint(
                    client,
                    "upload",
                    level,
                    2,
                    (s, s - 1, s + 1),
                    (2 * s, s, 3 * s),
                    (0.5, 0.4, 0.6),
                    (1.5, 1.4, 1.6),
                )
                for client, s in (("ours", 3.0), ("aiohttp, MultipartWriter", 8.0))
                for level in (8, 150)
            ),
            ScalePoint("curl", "upload", 150, 2, None, None, (0.9, 0.8, 1.0), (4.0, 3.9, 4.1)),
            ScalePoint("ours", "upload", 150, peak_mb_per_transfer=0.9),
        ],
    )


def test_report_has_every_claim_with_its_verdict(tmp_path: Path) -> None:
    verdicts = judge_all(
        [
            Measurement("mem-upload.peak", 2.5, {"async_mb": 2.5}),
            Measurement("throughput.ratio", math.nan, note="no legacy uploads"),
        ]
    )
    files = write_report(tmp_path / "out", verdicts, _data(), {"mode": "test"})

    document = json.loads(files.json.read_text())
    rows = {row["id"]: row for row in document["claims"]}
    assert len(rows) == len(verdicts)
    assert {"claim", "source", "claimed", "measured", "verdict"} <= set(rows["mem-upload.peak"])
    assert rows["mem-upload.peak"]["measured"] == 2.5
    assert rows["mem-upload.peak"]["verdict"] == "PASS"
    assert rows["throughput.ratio"]["measured"] is None  # NaN is not valid JSON
    assert rows["rollback.detect"]["verdict"] == "UNMEASURED"
    assert document["exit_code"] == 1
    assert document["peers"][0]["ratio"] == 2.5 / 56.0
    assert document["peers"][1] | {"ratio": None} == {
        "peer": "AsyncOpenAI, file object", "figure": "max loop stall", "unit": "ms", "theirs": 4.0,
        "ours": 2, "ratio": None, "rounds": 3, "theirs_range": [2.0, 9.0], "ours_range": [1, 3],
    }  # fmt: skip

    markdown = files.markdown.read_text()
    assert "| `mem-upload.peak` peak memory < 100 MB for a 50 MB upload |" in markdown
    assert "**PASS**" in markdown
    assert "did not: " in markdown
    assert "rollback.detect" in markdown
    assert "| AsyncOpenAI, file object | max loop stall | 3 | 4 ms (2-9) | 2 ms (1-3) | 0.5 |" in markdown
    assert "mirrored order" in markdown
    # the timed row and the memory probe of the same client and level meet in one table row
    assert "| upload | 150 | ours | 3.0 (2.0-4.0) | 6.0 (3.0-9.0) | 0.500 (0.400-0.600) " in markdown
    assert "| 1.50 (1.40-1.60) | 0.90 | 0 |" in markdown
    assert "| upload | 150 | curl | - | - | 0.900 (0.800-1.000) | 4.00 (3.90-4.10) | - | 0 |" in markdown


def test_plots_are_real_pngs_and_redrawable_from_json(tmp_path: Path) -> None:
    files = write_report(tmp_path, judge_all([]), _data(), {})
    names = sorted(p.name for p in files.plots)
    assert names == [
        "latency_cdf.png",
        "memory_vs_size.png",
        "rollback_timeline.png",
        "scale_curves.png",
        "throughput_vs_concurrency.png",
    ]
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 5000 for p in files.plots)
    stored = Collected.from_json(json.loads(files.json.read_text())["data"])
    assert stored == _data()


def test_no_plot_without_data_and_no_temp_files_left(tmp_path: Path) -> None:
    files = write_report(tmp_path, judge_all([]), Collected(), {})
    assert files.plots == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]


def test_peer_figures_need_the_same_rounds_on_both_sides() -> None:
    with pytest.raises(ValueError, match="rounds differ"):
        PeerFigure.of_rounds("curl", "MB/s", "MB/s", [1.0, 2.0], [1.0])
