import json
import math
from pathlib import Path

from harness import (
    Collected,
    Measurement,
    MemoryPoint,
    PeerFigure,
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
        peers=[PeerFigure("openai-path", "peak memory, 50 MB upload", "MB", 56.0, 2.5)],
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

    markdown = files.markdown.read_text()
    assert "| `mem-upload.peak` peak memory < 100 MB for a 50 MB upload |" in markdown
    assert "**PASS**" in markdown
    assert "did not: " in markdown
    assert "rollback.detect" in markdown


def test_plots_are_real_pngs_and_redrawable_from_json(tmp_path: Path) -> None:
    files = write_report(tmp_path, judge_all([]), _data(), {})
    names = sorted(p.name for p in files.plots)
    assert names == [
        "latency_cdf.png",
        "memory_vs_size.png",
        "rollback_timeline.png",
        "throughput_vs_concurrency.png",
    ]
    assert all(p.read_bytes().startswith(PNG_MAGIC) and p.stat().st_size > 5000 for p in files.plots)
    stored = Collected.from_json(json.loads(files.json.read_text())["data"])
    assert stored == _data()


def test_no_plot_without_data_and_no_temp_files_left(tmp_path: Path) -> None:
    files = write_report(tmp_path, judge_all([]), Collected(), {})
    assert files.plots == ()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json", "report.md"]
