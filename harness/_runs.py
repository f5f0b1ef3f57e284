"""How a load run starts Locust and reads what it leaves on disk: one way for the load and the fleet run."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from harness._engines import free_port

__all__ = ["locust_commands", "locust_summary", "read_ledger"]


def locust_commands(base: list[str], lead: list[str], workers: int) -> list[list[str]]:
    """Locust's commands: `lead` alone, or as a master on a free loopback port with `workers` workers.

    `base` is ``python -m locust -f LOCUSTFILE``, which the workers run too; `lead` starts with it.
    """
    if workers == 0:
        return [lead]
    port = str(free_port())
    master = [*lead, "--master", "--expect-workers", str(workers)]
    master += ["--master-bind-host", "127.0.0.1", "--master-bind-port", port]
    worker = [*base, "--worker", "--master-host", "127.0.0.1", "--master-port", port]
    return [master] + [worker] * workers


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
