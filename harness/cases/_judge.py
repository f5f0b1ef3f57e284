"""Judge case: does checking every interval inflate false rollbacks, and what does the judge detect?

A simulation of whole stages from latencies recorded on the mock (``data/realistic-latencies.json``,
recorded by `record_latencies`, ``python -m harness.cases._judge``): each simulated stage draws its
calls from the recording, with replacement, and replays the controller's rule on them: at every check
the judge compares the arms over the last interval and over the stage so far, a FAIL on either counts,
a check whose interval has fewer than the rules' ``min_samples`` candidate calls neither counts nor
clears the streak, and `threshold` consecutive FAILs roll back. An A/A stage draws both arms from the
same recording (no worse, by construction); a slowed stage multiplies the candidate's latencies by
1.2 or 1.5.

Two sample schedules (`SCHEDULES`), each at the 10 % and the 50 % stage:

- ``load-run``: a two-minute load run, checked every 10 s (12 checks), ending at 200 candidate calls
  (`LOAD_RUN_MIN_UPLOADS`) and 1800 control calls at 10 %, growing evenly. Judged against the load-run
  tolerance (1.20, `LOAD_RUN_LATENCY_TOLERANCE`): a screen for gross slowdowns, so its power is shown
  at x1.5; at x1.2 it sits on the tolerance itself.
- ``production``: the production minimum, 500 candidate and 4500 control calls at 10 % (tolerance
  1.05). At that traffic a production stage brings a new candidate call every few minutes while the
  controller checks every 10 s, so every state of the stage is judged many times over: one FAIL of the
  stage so far lasts for `threshold` checks and rolls back. The schedule therefore judges the stage so
  far after every 10 candidate calls (48 looks, from 20 to 500) and rolls back on the first FAIL; the
  recent interval holds too few calls to judge. Looks between the grid's points are not simulated, so
  the figure is slightly optimistic (consecutive states differ by one call in hundreds).

Latency only: with equal failure rates in both arms the rate judgements cannot FAIL before their
interval's lower bound clears the stage's limit, and the recording's failures are retried away.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import numpy.typing as npt

from harness._context import BenchContext
from harness.cases._seams import REAL, LatencyVerdict, Seams
from harness.report._verdict import Measurement
from llmfiles.rollout import (
    DEFAULT_GATES,
    LOAD_RUN_GATES,
    JudgeVerdict,
    StageGate,
    latency_verdict,
    look_confidence,
)

__all__ = [
    "DATA",
    "SCHEDULES",
    "STAGES",
    "Schedule",
    "StageOutcome",
    "load_recording",
    "measure_judge",
    "record_latencies",
    "rollback_rate",
    "simulate_stage",
]

DATA = Path(__file__).with_name("data") / "realistic-latencies.json"
_CONFIDENCE = DEFAULT_GATES.rules.confidence
_MIN_SAMPLES = DEFAULT_GATES.rules.min_samples
#: The controller's default: consecutive failed checks that roll back.
THRESHOLD = 3
#: Simulated stages per schedule and slowdown, quick run or full: the claim needs at least 1000.
STAGES = 1000

_Array = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Schedule:
    """How a simulated stage's calls arrive and when it is judged.

    Args:
        name: e.g. ``load-run 10%``.
        gate: the stage's gate (tolerance, and the minimum uploads the looks' confidence is spent over).
        control: control calls by the end of the stage.
        candidate: candidate calls by the end of the stage.
        checks: evenly spaced checks over the stage.
        recent: whether a check also judges its own interval (the load run's 10-s interval holds enough
            calls; a production interval does not).
        threshold: consecutive failed checks that roll back (1 where one FAIL persists over as many
            checks as the controller's threshold, see the module docstring).
    """

    name: str
    gate: StageGate
    control: int
    candidate: int
    checks: int
    recent: bool
    threshold: int


def _schedules() -> tuple[Schedule, ...]:
    load10, load50 = LOAD_RUN_GATES.stage("10%"), LOAD_RUN_GATES.stage("50%")
    prod10, prod50 = DEFAULT_GATES.stage("10%"), DEFAULT_GATES.stage("50%")
    return (
        Schedule("load-run 10%", load10, 9 * load10.min_uploads, load10.min_uploads, 12, True, THRESHOLD),
        Schedule("load-run 50%", load50, 5 * load50.min_uploads, 5 * load50.min_uploads, 12, True, THRESHOLD),
        Schedule("production 10%", prod10, 9 * prod10.min_uploads, prod10.min_uploads, 48, False, 1),
        Schedule("production 50%", prod50, prod50.min_uploads, prod50.min_uploads, 99, False, 1),
    )


#: The load runs: two minutes at about 2000 calls (the 10 % stage ends at the load-run minimum of
#: candidate calls). Production: the stage's minimum uploads, looked at every 10 (10 %) or 20 (50 %)
#: candidate calls from the rules' min_samples on.
SCHEDULES = _schedules()


@dataclass(frozen=True, slots=True)
class StageOutcome:
    """One simulated stage: rolled back or not, at which check (1-based), after how many judgements."""

    rolled_back: bool
    check: int | None
    judgements: int


def load_recording(path: Path = DATA) -> dict[str, _Array]:
    """The recorded latencies per arm (seconds), ``{"async": ..., "legacy": ...}``."""
    data = json.loads(path.read_text(encoding="utf-8"))
    return {arm: np.asarray(data[arm], dtype=np.float64) for arm in ("async", "legacy")}


def _fails(
    control: _Array,
    candidate: _Array,
    gate: StageGate,
    confidence: float,
    spend: bool,
    judge: LatencyVerdict = latency_verdict,
) -> bool:
    # As the gates do: too few calls cannot roll back, and a look is judged at `look_confidence`.
    if len(candidate) < _MIN_SAMPLES:
        return False
    look = look_confidence(confidence, len(candidate), gate.min_uploads) if spend else confidence
    verdict = judge(control, candidate, tolerance=gate.max_latency_ratio, confidence=look)
    return verdict is JudgeVerdict.FAIL


def simulate_stage(
    rng: np.random.Generator,
    pool: _Array,
    schedule: Schedule,
    *,
    slowdown: float = 1.0,
    confidence: float = _CONFIDENCE,
    spend: bool = True,
    judge: LatencyVerdict = latency_verdict,
) -> StageOutcome:
    """One stage under the controller's rule, both arms drawn from `pool`, the candidate's x `slowdown`.

    `spend=False` judges every look at the full `confidence`, as the gates did before `look_confidence`.
    """
    control = rng.choice(pool, schedule.control)
    candidate = rng.choice(pool, schedule.candidate) * slowdown
    # The production grid starts at the rules' min_samples candidate calls: before that nothing is judged.
    offset = 0 if schedule.recent else _MIN_SAMPLES
    failed = judged = 0
    previous = (0, 0)
    for check in range(1, schedule.checks + 1):
        share = check / schedule.checks
        if schedule.recent:
            upto = (round(schedule.control * share), round(schedule.candidate * share))
        else:
            step = (schedule.candidate - offset) * share + offset
            upto = (round(step * schedule.control / schedule.candidate), round(step))
        whole = _fails(control[: upto[0]], candidate[: upto[1]], schedule.gate, confidence, spend, judge)
        judged += 1
        recent_calls = upto[1] - previous[1]
        recent = False
        if schedule.recent and recent_calls >= _MIN_SAMPLES:
            window = (control[previous[0] : upto[0]], candidate[previous[1] : upto[1]])
            recent = _fails(*window, schedule.gate, confidence, spend, judge)
            judged += 1
        previous = upto
        if whole or recent:
            failed += 1
        elif recent_calls >= _MIN_SAMPLES or not schedule.recent:
            failed = 0
        if failed >= schedule.threshold:
            return StageOutcome(True, check, judged)
    return StageOutcome(False, None, judged)


def rollback_rate(
    pool: _Array,
    schedule: Schedule,
    *,
    stages: int,
    slowdown: float = 1.0,
    seed: int = 0,
    confidence: float = _CONFIDENCE,
    judge: LatencyVerdict = latency_verdict,
) -> float:
    """The share of `stages` simulated stages that roll back (a fraction)."""
    rng = np.random.default_rng(seed)
    outcomes = [
        simulate_stage(rng, pool, schedule, slowdown=slowdown, confidence=confidence, judge=judge)
        for _ in range(stages)
    ]
    return sum(outcome.rolled_back for outcome in outcomes) / stages


def _figures(stages: int, seed: int, judge: LatencyVerdict) -> dict[str, dict[str, float]]:
    pool = load_recording()["async"]
    return {
        schedule.name: {
            f"x{slowdown:g}": rollback_rate(
                pool, schedule, stages=stages, slowdown=slowdown, seed=seed, judge=judge
            )
            for slowdown in (1.0, 1.2, 1.5)
        }
        for schedule in SCHEDULES
    }


async def measure_judge(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    figures = await asyncio.to_thread(_figures, STAGES, ctx.config.seed, seams.latency_verdict)
    detail = {
        "stages_per_figure": STAGES,
        "confidence": _CONFIDENCE,
        "threshold_checks": THRESHOLD,
        "schedules": {
            s.name: {
                "tolerance": s.gate.max_latency_ratio,
                "control": s.control,
                "candidate": s.candidate,
                "checks": s.checks,
            }
            for s in SCHEDULES
        },
        "rollback_share": figures,
        "recording": DATA.name,
    }
    worst = max(SCHEDULES, key=lambda s: figures[s.name]["x1"])
    power = {name: f"{100 * figures[name]['x1.2']:.1f} %" for name in figures}
    strong = {name: f"{100 * figures[name]['x1.5']:.1f} %" for name in figures}
    return [
        Measurement(
            "judge.false-rollback",
            100 * figures[worst.name]["x1"],
            detail,
            f"worst schedule: {worst.name}; all: "
            + ", ".join(f"{name} {100 * f['x1']:.1f} %" for name, f in figures.items()),
        ),
        Measurement(
            "judge.power-20pct",
            100 * figures["production 10%"]["x1.2"],
            detail,
            f"rolled back at x1.2: {power}; at x1.5: {strong}",
        ),
    ]


async def record_latencies(
    out: Path = DATA,
    *,
    per_arm: tuple[int, int] = (1000, 500),
    concurrency: int = 8,
    size: int = 220_000,
    seed: int = 7,
) -> dict[str, list[float]]:
    """Upload files of `size` bytes through each arm (async, legacy: `per_arm`) to a mock under
    ``realistic``, one arm after the other; write `out`.

    The mock runs in its own process (`MockProcess`), so the recording is the provider's latency and
    each client's own cost, not the recorder's GIL.
    """
    from harness._procs import MockProcess
    from harness.cases._arms import TIMEOUT_S
    from llmfiles import LLMFilesError
    from llmfiles.legacy import LegacyFilesClient
    from llmfiles.providers import KIMI
    from llmfiles.transfer import AsyncFilesClient, TransferSettings

    recorded: dict[str, list[float]] = {"async": [], "legacy": []}
    with tempfile.TemporaryDirectory(prefix="judge-record-") as scratch:
        root = Path(scratch)
        files = []
        for i in range(concurrency):
            path = root / f"upload-{i}.bin"
            path.write_bytes(np.random.default_rng(i).bytes(size))
            files.append(path)
        mock = MockProcess(profile="realistic", seed=seed, data_dir=root / "mock", log_path=root / "mock.log")
        with mock:
            settings = TransferSettings(read_timeout=TIMEOUT_S, max_concurrency=concurrency)
            async with AsyncFilesClient(
                KIMI, api_key="sk-judge", base_url=mock.kimi_base_url, settings=settings
            ) as client:

                async def async_worker(index: int) -> None:
                    loop = asyncio.get_running_loop()
                    for _ in range(2 * per_arm[0]):  # bounded: a mock that refuses everything ends it
                        if len(recorded["async"]) >= per_arm[0]:
                            return
                        started = loop.time()
                        with contextlib.suppress(LLMFilesError):  # failures are not latencies
                            uploaded = await client.upload(files[index], purpose="file-extract")
                            recorded["async"].append(loop.time() - started)
                            # Untimed: the provider's file-count quota (1000 at Kimi) must not end the run.
                            await client.delete(uploaded.file.id)

                await asyncio.gather(*(async_worker(i) for i in range(concurrency)))
            legacy = LegacyFilesClient(
                KIMI, api_key="sk-judge", base_url=mock.kimi_base_url, timeout=TIMEOUT_S
            )

            def legacy_worker(index: int) -> None:
                for _ in range(2 * per_arm[1]):
                    if len(recorded["legacy"]) >= per_arm[1]:
                        return
                    started = time.perf_counter()
                    with contextlib.suppress(Exception):  # the old client's failures are not latencies
                        uploaded = legacy.upload(files[index], purpose="file-extract")
                        recorded["legacy"].append(time.perf_counter() - started)
                        legacy.delete(uploaded.file.id)

            await asyncio.gather(*(asyncio.to_thread(legacy_worker, i) for i in range(concurrency)))
    payload = {
        "what": "upload latencies (s) of successful calls, each arm alone against the mock",
        "profile": "realistic",
        "recorded_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "file_bytes": size,
        "concurrency": concurrency,
        "mock_seed": seed,
        "async": [round(v, 5) for v in recorded["async"][: per_arm[0]]],
        "legacy": [round(v, 5) for v in recorded["legacy"][: per_arm[1]]],
    }
    await asyncio.to_thread(_write, out, json.dumps(payload) + "\n")
    return recorded


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2] if ordered else math.nan


if __name__ == "__main__":
    result = asyncio.run(record_latencies())
    print({arm: (len(v), round(_median(v), 4)) for arm, v in result.items()})
