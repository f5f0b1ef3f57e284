"""Split case: is the rollout's hash bucketing uniform, sticky and monotonic in the percentage?

Uniformity and monotonicity are computed here over `llmfiles.rollout.bucket`/`in_rollout`. Stickiness is
a promise across processes (a user must land in the same bucket on every replica and after a restart),
so it is checked where it can break: two fresh interpreters with different ``PYTHONHASHSEED``s compute
the buckets of the same keys, and every key whose bucket differs is a change.
Computed twice in one process, `hash()` bucketing would look perfectly sticky.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import cast

from harness._context import BenchContext
from harness.cases._seams import REAL, InRollout, Seams, resolve
from harness.cases._stats import chi_square_p_value
from harness.report._verdict import Measurement

__all__ = ["HASH_SEEDS", "STAGES", "buckets_in_fresh_interpreter", "measure_split", "split_figures"]

#: The rollout's stage percentages (DESIGN.md), with 0 in front: the path a key must only ever join.
STAGES = (0.0, 1.0, 10.0, 50.0, 100.0)
#: ``PYTHONHASHSEED`` of the two interpreters that must agree on every bucket.
HASH_SEEDS = ("1", "2")
_BINS = 100
_SALT = "bench-split"

Bucket = Callable[..., int]


def split_figures(
    keys: int, *, salt: str = _SALT, bucket: str = REAL.bucket, in_rollout: InRollout = REAL.in_rollout
) -> tuple[float, float, int]:
    """(chi-square statistic, p-value, monotonicity violations) over `keys` keys.

    Monotonicity is checked on the first tenth of the keys: it is an exact property, one counterexample is
    enough, and 10^5 keys keep the case within a few seconds.
    """
    function = cast(Bucket, resolve(bucket))
    counts = [0] * _BINS
    width = 10_000 // _BINS
    for i in range(keys):
        counts[function(f"user-{i}", salt=salt) // width] += 1
    expected = keys / _BINS
    statistic = sum((c - expected) ** 2 / expected for c in counts)
    p_value = chi_square_p_value(statistic, _BINS - 1)
    violations = 0
    for key in _sample(keys):
        joined = [in_rollout(key, percent, salt) for percent in STAGES]
        violations += any(earlier and not later for earlier, later in itertools.pairwise(joined))
    return statistic, p_value, violations


def _sample(keys: int) -> list[str]:
    return [f"user-{i}" for i in range(max(1, keys // 10))]


#: What each fresh interpreter runs: import the bucketing function by name, bucket the keys on stdin.
#: Inline rather than ``-m harness.cases...``, which would import every case first.
_CHILD = (
    "import importlib, json, sys\n"
    "module, _, name = sys.argv[1].partition(':')\n"
    "bucket = getattr(importlib.import_module(module), name)\n"
    "print(json.dumps([bucket(key, salt=sys.argv[2]) for key in sys.stdin.read().splitlines()]))\n"
)


async def buckets_in_fresh_interpreter(
    keys: Sequence[str], *, salt: str, bucket: str, hash_seed: str
) -> list[int]:
    """The buckets of `keys`, computed by a fresh interpreter with ``PYTHONHASHSEED=hash_seed``.

    The child inherits this process's environment and import path, so it imports the same llmfiles.
    """
    resolve(bucket)  # a bad name fails here, with the name, not as a child's traceback
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _CHILD,
        bucket,
        salt,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await process.communicate("\n".join(keys).encode())
    if process.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"bucket child with hash_seed={hash_seed!r} failed: {tail[0]}")
    buckets: list[int] = json.loads(out)
    return buckets


async def measure_split(ctx: BenchContext, *, seams: Seams = REAL) -> list[Measurement]:
    keys = ctx.config.split_keys
    statistic, p_value, violations = await asyncio.to_thread(
        split_figures, keys, bucket=seams.bucket, in_rollout=seams.in_rollout
    )
    sample = _sample(keys)
    first, second = await asyncio.gather(
        *(
            buckets_in_fresh_interpreter(sample, salt=_SALT, bucket=seams.bucket, hash_seed=seed)
            for seed in HASH_SEEDS
        )
    )
    changes = sum(a != b for a, b in zip(first, second, strict=True))
    detail = {"keys": keys, "bins": _BINS, "chi_square": round(statistic, 2), "dof": _BINS - 1}
    return [
        Measurement("split.uniform", p_value, detail),
        Measurement(
            "split.sticky",
            changes,
            {"keys": len(sample), "hash_seeds": list(HASH_SEEDS), "processes": len(HASH_SEEDS)},
        ),
        Measurement("split.monotonic", violations, {"keys": len(sample), "stages_percent": list(STAGES)}),
    ]
