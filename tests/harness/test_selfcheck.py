"""The negative controls: every claim has one, and the runner demands FAIL from each."""

import os
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness._cli import app
from harness._context import BenchConfig
from harness.cases._seams import REAL, Seams, resolve
from harness.cases._split import buckets_in_fresh_interpreter
from harness.cases._traversal import measure_traversal
from harness.report._claims import CLAIMS, claim_by_id
from harness.report._verdict import judge
from harness.selfcheck import CONTROLS, Control, run_self_check, uncovered_claims
from harness.selfcheck._broken import UnlimitedClient, python_hash_bucket
from harness.selfcheck._run import SPLIT_KEYS, ControlResult, control_config, controls_table


def test_every_claim_has_a_negative_control_and_every_control_a_claim() -> None:
    assert uncovered_claims() == []
    assert {control.claim for control in CONTROLS} == {claim.id for claim in CLAIMS}


def test_a_claim_without_a_control_is_found() -> None:
    assert uncovered_claims([c for c in CONTROLS if c.claim != "scale.lead"]) == ["scale.lead"]


def test_every_control_breaks_something() -> None:
    for control in CONTROLS:
        assert control.seams != REAL, control


def test_controls_that_share_a_case_and_a_break_share_one_run() -> None:
    keys = {control.run_key for control in CONTROLS}
    assert len(keys) < len(CONTROLS)


def test_resolve_finds_the_shipped_and_the_broken_bucketing() -> None:
    assert resolve(REAL.bucket)("user-1", salt="s") == resolve("llmfiles.rollout:bucket")("user-1", salt="s")  # type: ignore[operator]
    assert resolve("harness.selfcheck._broken:python_hash_bucket") is python_hash_bucket
    with pytest.raises(ValueError, match="name='nocolon'"):
        resolve("nocolon")


async def test_hash_bucketing_differs_between_fresh_interpreters_and_murmur3_does_not() -> None:
    keys = [f"user-{i}" for i in range(200)]

    async def both(bucket: str) -> tuple[list[int], list[int]]:
        first = await buckets_in_fresh_interpreter(keys, salt="s", bucket=bucket, hash_seed="1")
        second = await buckets_in_fresh_interpreter(keys, salt="s", bucket=bucket, hash_seed="2")
        return first, second

    murmur = await both(REAL.bucket)
    broken = await both("harness.selfcheck._broken:python_hash_bucket")
    assert murmur[0] == murmur[1]
    assert sum(a != b for a, b in zip(*broken, strict=True)) > 190


async def test_a_bad_bucket_name_is_refused_before_a_child_starts() -> None:
    with pytest.raises(ModuleNotFoundError, match="no_such_module"):
        await buckets_in_fresh_interpreter(["k"], salt="s", bucket="no_such_module:f", hash_seed="1")


@pytest.mark.integration
def test_a_control_that_passes_makes_the_self_check_exit_1(tmp_path: Path) -> None:
    honest = Control("traversal.escapes", "the real client: no break", measure_traversal, REAL)
    broken = next(c for c in CONTROLS if c.claim == "traversal.escapes")
    config = BenchConfig(quick=True, out=tmp_path)
    console = Console(width=160, record=True)

    assert run_self_check(config, console, [broken]) == 0
    assert run_self_check(config, console, [broken, honest]) == 1

    text = (tmp_path / "self-check.txt").read_text()
    assert "PASS  <- must FAIL" in text
    assert "download sanitiser that does nothing" in text
    assert "1 of 2 controls failed as they must" in text


def test_the_table_names_claims_without_a_control() -> None:
    console = Console(width=160, record=True)
    console.print(controls_table([], ["rollback.detect"]))
    assert "no control" in console.export_text()


def test_the_cli_offers_the_self_check() -> None:
    result = CliRunner().invoke(app, ["bench", "--help"], env={**os.environ, "COLUMNS": "200"})
    assert result.exit_code == 0
    assert "--self-check" in result.output


def test_the_table_gives_each_run_its_seconds_once() -> None:
    unmeasured = judge(claim_by_id("scale.lead"), None)
    shared = [c for c in CONTROLS if c.seams == Seams(client=UnlimitedClient)]
    results = [ControlResult(shared[0], unmeasured, 27.6), ControlResult(shared[1], unmeasured)]
    console = Console(width=200, record=True)
    console.print(controls_table(results, []))
    rows = [line for line in console.export_text().splitlines() if "no concurrency limit" in line]
    assert [row.split("│")[-2].strip() for row in rows] == ["28", "same run"]


def test_the_controls_run_at_the_quick_sizes_in_either_mode(tmp_path: Path) -> None:
    full = control_config(BenchConfig.for_mode(quick=False, out=tmp_path, seed=7))
    quick = BenchConfig.for_mode(quick=True, out=tmp_path)
    assert not full.quick
    assert (full.out, full.seed) == (tmp_path, 7)
    assert full.memory_sizes == quick.memory_sizes
    assert full.scale_file_size == quick.scale_file_size
    assert full.scale_levels == (150,)  # the stall claim's level only
    assert full.split_keys == SPLIT_KEYS < quick.split_keys
