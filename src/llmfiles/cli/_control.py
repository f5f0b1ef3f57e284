"""`llmfiles rollout control`: the fleet's controller, one process of several of which exactly one acts.

It reads the arms' figures from Prometheus (the whole fleet's), the flags and its state from PostgreSQL,
and takes the lease before it acts (`llmfiles.fleet.FleetController`). Run two or more for failover;
stop one with SIGTERM or Ctrl-C and it hands the lease over at once.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

from llmfiles._errors import ConfigError, LLMFilesError
from llmfiles.fleet import (
    DEFAULT_FLAG,
    ControllerLease,
    FleetController,
    PinnedClock,
    PostgresFlagSource,
    PostgresStateStore,
    PrometheusFigures,
    is_postgres_url,
)
from llmfiles.observe import RolloutMetrics, configure_logging
from llmfiles.rollout import DEFAULT_GATES, GateTable, OverridableFlagSource, RolloutController


def control(
    database: Annotated[
        str, typer.Option("--database", help="postgresql:// URL holding the flags, state and lease.")
    ],
    prometheus: Annotated[str, typer.Option("--prometheus", help="Prometheus URL scraping every instance.")],
    selector: Annotated[
        str, typer.Option("--selector", help='PromQL label matchers for our series, e.g. job="llmfiles".')
    ] = "",
    flag: Annotated[str, typer.Option("--flag", help="The rollout's name (flag row).")] = DEFAULT_FLAG,
    interval: Annotated[float, typer.Option("--interval", help="Seconds between checks.")] = 10.0,
    threshold: Annotated[int, typer.Option("--threshold", help="Failed checks in a row that roll back.")] = 3,
    lease_ttl: Annotated[
        float | None, typer.Option("--lease-ttl", help="Seconds a lease holds (default: the interval).")
    ] = None,
    settle: Annotated[
        float, typer.Option("--settle", help="Prometheus' scrape interval: an interval is judged after it.")
    ] = 1.0,
    holder: Annotated[str | None, typer.Option("--holder", help="This controller's id (host:pid).")] = None,
    gates: Annotated[Path | None, typer.Option("--gates", help="TOML stage table.")] = None,
    soak: Annotated[float | None, typer.Option("--soak", help="Override every stage's soak (s).")] = None,
) -> None:
    """Run the fleet's controller until SIGTERM/SIGINT: judge from Prometheus, act while holding the lease."""
    configure_logging(level=logging.INFO, json=True, file=sys.stderr)
    try:
        if not is_postgres_url(database):
            raise ConfigError(f"database={database!r} must be a postgresql:// URL")
        table = GateTable.from_toml(gates) if gates is not None else DEFAULT_GATES
        table = table.with_soak(soak) if soak is not None else table
        runner = _fleet_controller(
            database,
            prometheus,
            selector=selector,
            flag=flag,
            gates=table,
            interval=interval,
            threshold=threshold,
            lease_ttl=interval if lease_ttl is None else lease_ttl,
            settle=settle,
            holder=holder or f"{socket.gethostname()}:{os.getpid()}",
        )
    except LLMFilesError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    typer.echo(
        f"controller {runner.lease.holder} running (interval {interval} s, threshold {threshold})", err=True
    )
    runner.run(stop)


def _fleet_controller(
    database: str,
    prometheus: str,
    *,
    selector: str,
    flag: str,
    gates: GateTable,
    interval: float,
    threshold: int,
    lease_ttl: float,
    settle: float,
    holder: str,
) -> FleetController:
    clock = PinnedClock()
    figures = PrometheusFigures(prometheus, selector=selector, clock=clock)
    controller = RolloutController(
        recorder=figures,
        flags=OverridableFlagSource(PostgresFlagSource(database, name=flag, actor=f"controller {holder}")),
        store=PostgresStateStore(database, name=flag),
        gates=gates,
        interval_s=interval,
        threshold=threshold,
        clock=clock,
        metrics=RolloutMetrics(),
    )
    lease = ControllerLease(database, holder=holder, name=flag, ttl_s=lease_ttl)
    return FleetController(controller, lease, clock=clock, settle_s=settle)
