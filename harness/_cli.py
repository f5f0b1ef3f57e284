"""``python -m harness bench|load``: the command line of the harness."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness.load._load import DEFAULT_RATE
from llmfiles import ConfigError

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure llmfiles' claims; load-test it.")


@app.callback()
def _group() -> None:
    """Measure llmfiles' claims (`bench`) or load-test it through the reference service (`load`)."""


@app.command()
def bench(
    quick: Annotated[
        bool, typer.Option("--quick", help="CI variant: 1 and 50 MB, fewer files (< 3 min).")
    ] = False,
    out: Annotated[Path, typer.Option("--out", help="Directory for report.md, report.json, plots.")] = Path(
        "bench-out"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the mock's chaos.")] = 0,
    self_check: Annotated[
        bool,
        typer.Option(
            "--self-check",
            help="Measure each claim against a broken variant instead; exit 1 unless every one FAILs.",
        ),
    ] = False,
    case: Annotated[
        list[str] | None,
        typer.Option(
            "--case", help="Run only this case (repeat for several); the others' claims are absent."
        ),
    ] = None,
) -> None:
    """Start the mock provider, measure every claim, write the report; exit 1 if a must-claim fails."""
    from harness._bench import run_bench
    from harness._context import BenchConfig
    from harness.cases import CASES

    chosen = CASES
    if case:
        known = {c.name for c in CASES}
        unknown = [name for name in case if name not in known]
        if unknown:
            Console(stderr=True).print(
                f"[red]error:[/] case={unknown[0]!r} is unknown; use one of {sorted(known)}"
            )
            raise typer.Exit(2)
        chosen = tuple(c for c in CASES if c.name in case)
    config = BenchConfig.for_mode(quick=quick, out=out, seed=seed)
    if self_check:
        from harness.selfcheck import run_self_check

        raise typer.Exit(run_self_check(config, Console(log_path=False)))
    raise typer.Exit(run_bench(config, chosen, Console(log_path=False)))


@app.command()
def load(
    stage: Annotated[float, typer.Option(help="Rollout percentage on the async arm: 1, 10, 50 or 100.")] = 10,
    profile: Annotated[str, typer.Option(help="Mock chaos profile.")] = "realistic",
    users: Annotated[int, typer.Option(help="Concurrent Locust users.")] = 150,
    duration: Annotated[int, typer.Option(help="Seconds of load.")] = 120,
    scenario: Annotated[
        str, typer.Option(help="upload_burst, mixed or stage_promotion.")
    ] = "stage_promotion",
    workers: Annotated[int, typer.Option(help="Local Locust workers (0: no master/worker split).")] = 0,
    out: Annotated[Path, typer.Option("--out", help="Directory for Locust CSV/HTML, logs, events.")] = Path(
        "load-out"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the mock's chaos.")] = 0,
    legacy_in_thread: Annotated[
        bool,
        typer.Option(
            "--legacy-in-thread/--legacy-on-loop",
            help="The service's legacy arm in a worker thread (default: a fair comparison), or on its "
            "event loop as the old service ran it (each legacy upload then freezes the loop).",
        ),
    ] = True,
    max_file_mb: Annotated[
        float | None, typer.Option(help="Cap upload sizes (default: the scenario's).")
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(help="The service's upload registry URL, or 'none' (default: SQLite in the run's dir)."),
    ] = None,
    rate: Annotated[
        float,
        typer.Option(help="Requests/s all users offer together (stage_promotion), a pace the box sustains."),
    ] = DEFAULT_RATE,
    async_profile: Annotated[
        str | None, typer.Option(help="Mock profile for the async arm's requests only, on top of --profile.")
    ] = None,
    legacy_profile: Annotated[
        str | None, typer.Option(help="Mock profile for the legacy arm's requests only, on top of --profile.")
    ] = None,
    control_arm: Annotated[
        str, typer.Option(help="'legacy', or 'async' for an A/A run (both sides the async client).")
    ] = "legacy",
) -> None:
    """Mock, service and Locust; nothing-lost check; the judge's verdict (exit 0/3/4, 1 if lost)."""
    from harness.load._load import LoadConfig, run_load
    from mock_provider import ProfileError

    try:
        config = LoadConfig(
            scenario=scenario,
            stage=stage,
            profile=profile,
            users=users,
            duration_s=duration,
            out=out,
            workers=workers,
            seed=seed,
            legacy_in_thread=legacy_in_thread,
            max_file_bytes=int(max_file_mb * 1024 * 1024) if max_file_mb else None,
            registry=registry,
            rate=rate,
            async_profile=async_profile,
            legacy_profile=legacy_profile,
            control_arm=control_arm,  # type: ignore[arg-type]  # LoadConfig validates it
        )
    except (ConfigError, ProfileError) as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    raise typer.Exit(run_load(config, Console()).exit_code)


@app.command()
def fleet(
    out: Annotated[Path, typer.Option(help="Where logs and fleet.json go.")] = Path("fleet-out"),
    duration: Annotated[
        float, typer.Option(help="Seconds of load: the kill at 1/4, the brownout at 1/2.")
    ] = 60.0,
    users: Annotated[int, typer.Option(help="Locust users over all instances.")] = 30,
    interval: Annotated[float, typer.Option(help="The controllers' check interval, seconds.")] = 4.0,
    threshold: Annotated[int, typer.Option(help="Failed checks in a row that roll back.")] = 2,
) -> None:
    """Three instances, PostgreSQL, Prometheus, two controllers, Locust; exit 0 if every bound holds."""
    from harness._engines import EngineError
    from harness.fleet import FleetConfig, run_fleet

    config = FleetConfig(out=out, duration_s=duration, users=users, interval_s=interval, threshold=threshold)
    try:
        result = run_fleet(config, Console())
    except EngineError as exc:
        Console(stderr=True).print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None
    raise typer.Exit(0 if result.ok else 1)


def main() -> None:
    app()
