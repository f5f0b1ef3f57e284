"""What a load run leaves on disk, read the same way by the load run and the fleet run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

__all__ = ["locust_summary", "read_ledger"]


def locust_summary(out: Path) -> dict[str, Any]:
    """The Aggregated row of Locust's stats CSV (``out/locust_stats.csv``), as numbers."""
    path = out / "locust_stats.csv"
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    total = rows.get("Aggregated", {})
    keys = {
        "Request Count": "requests",
        "Failure Count": "failures",
        "Median Response Time": "p50_ms",
        "95%": "p95_ms",
        "99%": "p99_ms",
        "Requests/s": "rps",
    }
    return {name: float(total[key]) for key, name in keys.items() if total.get(key) not in (None, "", "N/A")}


def read_ledger(path: Path) -> list[tuple[str, str]]:
    """``(file_id, sha256)`` of every upload a service answered as done (its JSONL ledger)."""
    if not path.exists():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [(row["file_id"], row["sha256"]) for row in rows]
