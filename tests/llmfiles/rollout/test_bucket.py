"""Bucketing: Unleash's vectors, the invariants as properties, and uniformity by chi-square."""

import os
import subprocess
import sys
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

import llmfiles
from llmfiles import ConfigError
from llmfiles.rollout import BUCKETS, bucket, in_rollout, normalized_hash, threshold

keys = st.text(max_size=40)
salts = st.text(min_size=1, max_size=20)
percents = st.integers(min_value=0, max_value=10_000).map(lambda hundredths: hundredths / 100)


# Unleash client-specification, specifications/03-gradual-rollout-user-id-strategy.json (groupId AB12A at
# 50 %: userId 122 enabled, 155 disabled) and 10-flexible-rollout-strategy.json (rollout 10: userId 174
# enabled, 499 disabled; rollout 55: userId 25 enabled; rollout 42: sessionId 147 enabled). Their rule is
# enabled <=> normalizedHash(id, groupId, 100) <= percentage.
@pytest.mark.parametrize(
    ("group", "key", "percentage", "enabled"),
    [
        ("AB12A", "122", 50, True),
        ("AB12A", "155", 50, False),
        ("Feature.flexibleRollout.10", "174", 10, True),
        ("Feature.flexibleRollout.10", "499", 10, False),
        ("Feature.flexibleRollout.userId.55", "25", 55, True),
        ("Feature.flexibleRollout.sessionId.42", "147", 42, True),
    ],
)
def test_normalized_hash_matches_unleash_specification(
    group: str, key: str, percentage: int, enabled: bool
) -> None:
    assert (normalized_hash(key, group=group, normalizer=100) <= percentage) is enabled


def test_known_murmur3_vector() -> None:
    # murmur3_x86_32("AB12A:122", seed 0) = 1062108722, so its bucket is 1062108722 % 10000.
    assert bucket("122", salt="AB12A") == 8722


def test_bucket_is_the_same_in_another_interpreter() -> None:
    # hash() would differ between processes (PYTHONHASHSEED); murmur3 must not. The child keeps this
    # process's environment and import path, so it imports this llmfiles, not whichever is installed.
    code = (
        "import llmfiles; from llmfiles.rollout import bucket; "
        "print(llmfiles.__file__); print(bucket('user-42', salt='flag'))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "123", "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    imported, value = other.stdout.split()
    assert imported == llmfiles.__file__
    assert int(value) == bucket("user-42", salt="flag")


@given(keys, salts)
def test_bucket_is_in_range_and_sticky(key: str, salt: str) -> None:
    first = bucket(key, salt=salt)
    assert 0 <= first < BUCKETS
    assert bucket(key, salt=salt) == first


@given(keys, salts, percents, percents)
def test_raising_the_percentage_never_moves_a_key_back(key: str, salt: str, low: float, high: float) -> None:
    low, high = min(low, high), max(low, high)
    if in_rollout(key, low, salt):
        assert in_rollout(key, high, salt)


@given(keys, salts)
def test_zero_and_hundred_percent_are_absolute(key: str, salt: str) -> None:
    assert not in_rollout(key, 0, salt)
    assert in_rollout(key, 100, salt)


@given(st.data())
def test_resolution_is_one_hundredth_of_a_percent(data: st.DataObject) -> None:
    hundredths = data.draw(st.integers(min_value=0, max_value=10_000))
    assert threshold(hundredths / 100) == hundredths


def test_flags_are_independent() -> None:
    population = [f"user-{i}" for i in range(20_000)]
    first = {key for key in population if in_rollout(key, 10, "flag-a")}
    second = {key for key in population if in_rollout(key, 10, "flag-b")}
    # Independent 10 % samples overlap on ~1 % of the population; the same salt would overlap on 10 %.
    overlap = len(first & second) / len(population)
    assert 0.005 < overlap < 0.015


@pytest.mark.parametrize(
    "percent",
    [-0.01, 100.01, float("nan"), float("inf"), True, "10"],
    ids=["negative", "over-100", "nan", "inf", "bool", "string"],
)
def test_invalid_percent_is_refused(percent: object) -> None:
    with pytest.raises(ConfigError, match="percent="):
        in_rollout("k", percent, "s")  # type: ignore[arg-type]


def test_non_string_key_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="key=42"):
        bucket(42, salt="s")  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def million_buckets() -> list[int]:
    return [bucket(f"user-{i}", salt="llmfiles.async_upload") for i in range(1_000_000)]


# Critical values of the chi-square distribution at p = 0.001: df = 1 -> 10.828, df = 99 -> 148.230
# (scipy is not in the environment; the table values are standard).
CHI2_DF1_P001 = 10.828
CHI2_DF99_P001 = 148.230


@pytest.mark.parametrize("percent", [1, 10, 50])
def test_split_is_uniform_at_stage_percentages(million_buckets: list[int], percent: int) -> None:
    n = len(million_buckets)
    cut = threshold(percent)
    inside = sum(1 for b in million_buckets if b < cut)
    expected_in = n * percent / 100
    expected_out = n - expected_in
    chi2 = (inside - expected_in) ** 2 / expected_in + ((n - inside) - expected_out) ** 2 / expected_out
    assert chi2 < CHI2_DF1_P001, f"{inside} of {n} in at {percent} %: chi2={chi2:.2f}"


def test_buckets_are_uniform_across_the_range(million_buckets: list[int]) -> None:
    cells = Counter(b // 100 for b in million_buckets)
    expected = len(million_buckets) / 100
    chi2 = sum((cells[i] - expected) ** 2 / expected for i in range(100))
    assert chi2 < CHI2_DF99_P001
