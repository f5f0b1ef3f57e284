"""Chaos rules as data: profiles, validation, triggers, latency distributions, determinism."""

from __future__ import annotations

import asyncio
import random
import statistics
from pathlib import Path
from typing import Any

import httpx
import pytest

from mock_provider import Latency, MockProvider, Profile, ProfileError, Rule, load_profile, profile_names
from mock_provider._chaos import ChaosEngine, sample_latency
from tests.mock_provider._helpers import KEY, cli_server


def test_shipped_profiles_load() -> None:
    assert profile_names() == ["brownout", "calm", "flaky", "outage", "realistic", "stalls"]
    for name in profile_names():
        assert isinstance(load_profile(name), Profile)
    assert load_profile("calm").rules == ()


def test_flaky_has_every_kind_of_fault() -> None:
    kinds = {rule.effect.kind for rule in load_profile("flaky").rules}

    assert kinds == {"latency", "error", "reset", "partial", "malformed", "slow", "hang", "lost_response"}


def test_profile_from_a_toml_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[rules]]\ntrigger = { every = 2 }\neffect = { kind = "error", status = 502 }\n')

    (rule,) = load_profile(path).rules
    assert (rule.trigger.every, rule.effect.kind) == (2, "error")


def test_a_profile_matches_by_request_header_in_any_case(tmp_path: Path) -> None:
    path = tmp_path / "arm.toml"
    path.write_text(
        '[[rules]]\nmatch = { headers = { "X-LLMFiles-Arm" = "async" } }\n'
        'effect = { kind = "error", status = 503 }\n'
    )
    engine = ChaosEngine(load_profile(path).rules, seed=0)

    assert engine.decide("kimi", "upload", "POST", {"x-llmfiles-arm": "async"}).fault == "error"
    assert engine.decide("kimi", "upload", "POST", {"x-llmfiles-arm": "legacy"}).fault is None
    assert engine.decide("kimi", "upload", "POST", {}).fault is None
    assert engine.decide("kimi", "upload", "POST").fault is None


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        pytest.param(
            '[[rules]]\nmatch = { headers = { x-arm = 1 } }\neffect = { kind = "hang" }',
            "rules.0.match.headers.x-arm=1",
            id="header-value",
        ),
        pytest.param(
            '[[rules]]\neffect = { kind = "error", status = 418 }',
            "rules.0.effect.error.status=418",
            id="status",
        ),
        pytest.param('[[rules]]\neffect = { kind = "explode" }', "'explode'", id="kind"),
        pytest.param(
            '[[rules]]\ntrigger = { first = 1, every = 2 }\neffect = { kind = "hang" }',
            "one of",
            id="two-triggers",
        ),
        pytest.param(
            '[[rules]]\ntrigger = { probability = 2 }\neffect = { kind = "hang" }', "probability=2", id="prob"
        ),
        pytest.param(
            '[[rules]]\neffect = { kind = "latency", distribution = "lognormal" }', "median", id="lognormal"
        ),
        pytest.param("rules = [", "not valid TOML", id="toml"),
    ],
)
def test_bad_profiles_name_the_key_and_value(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)

    with pytest.raises(ProfileError, match=r"bad\.toml") as caught:
        load_profile(path)
    assert needle in str(caught.value)


def test_unknown_profile_lists_the_shipped_ones() -> None:
    with pytest.raises(ProfileError, match="'brownout', 'calm'"):
        load_profile("stormy")


@pytest.mark.parametrize(
    ("latency", "rel"),
    [
        # About three standard errors of a 2000-sample median (lognormal: 1.25 sigma / sqrt(n) in log space).
        pytest.param(Latency(distribution="lognormal", median=0.2, sigma=0.6), 0.05, id="lognormal"),
        pytest.param(Latency(distribution="uniform", low=0.1, high=0.3), 0.05, id="uniform"),
        pytest.param(Latency(seconds=0.2), 0.0, id="fixed"),
    ],
)
def test_latency_samples_have_the_configured_median(latency: Latency, rel: float) -> None:
    rng = random.Random(3)
    samples = [sample_latency(latency, rng) for _ in range(2000)]

    assert statistics.median(samples) == pytest.approx(0.2, rel=rel, abs=0)
    assert max(samples) <= latency.cap


def test_latency_cap_holds() -> None:
    latency = Latency(distribution="lognormal", median=1.0, sigma=3.0, cap=2.0)
    rng = random.Random(1)

    assert max(sample_latency(latency, rng) for _ in range(1000)) == 2.0


@pytest.mark.slow
async def test_latency_on_the_wire_has_the_configured_median(tmp_path: Path) -> None:
    median = 0.1
    profile = tmp_path / "lognormal.toml"
    effect = f'{{ kind = "latency", distribution = "lognormal", median = {median}, sigma = 0.5 }}'
    profile.write_text(f"[[rules]]\neffect = {effect}\n")
    with cli_server("--profile", str(profile), "--seed", "11") as server:
        url = server.url
        limits = httpx.Limits(max_connections=20)
        async with httpx.AsyncClient(base_url=url, headers=KEY, limits=limits, timeout=30) as http:
            await asyncio.gather(*(http.get("/kimi/v1/files") for _ in range(300)))
            entries = (await http.get("/_journal")).json()
    assert len(entries) == 300
    assert statistics.median(e["latency_s"] for e in entries) == pytest.approx(median, rel=0.15)
    # The drawn delay was really served: each exchange lasted at least that long. Only a lower bound, since
    # how much longer depends on how busy the machine is.
    assert all(e["duration_s"] >= e["latency_s"] for e in entries)


MIXED_RULES: list[dict[str, Any]] = [
    {"trigger": {"probability": 0.1}, "effect": {"kind": "error", "status": 500}},
    {"trigger": {"probability": 0.1}, "effect": {"kind": "malformed"}},
    {"match": {"operation": "list"}, "trigger": {"probability": 0.1}, "effect": {"kind": "partial"}},
    {"trigger": {"probability": 0.1}, "effect": {"kind": "reset"}},
    {
        "trigger": {"probability": 0.3},
        "effect": {"kind": "latency", "distribution": "uniform", "high": 0.001},
    },
]


def _fault_sequence(seed: int) -> list[tuple[str | None, int | None]]:
    with MockProvider(seed=seed) as mock, httpx.Client(base_url=mock.url, headers=KEY, timeout=5) as http:
        mock.set_rules(MIXED_RULES)
        for i in range(120):
            try:
                if i % 3:
                    http.get("/kimi/v1/files")
                else:
                    http.get("/glm/api/paas/v4/files")
            except httpx.TransportError:
                pass  # resets and partial bodies are the point
        return [(e["fault"], e["status"]) for e in mock.journal()]


def test_same_seed_same_faults_different_seed_different_faults() -> None:
    first, again, other = _fault_sequence(5), _fault_sequence(5), _fault_sequence(6)

    assert len(first) == 120
    assert first == again
    assert first != other
    assert {fault for fault, _ in first} >= {None, "error", "malformed", "partial", "reset", "latency"}


def test_engine_draws_are_independent_of_other_rules() -> None:
    """A rule's faults depend on its own matches only, so adding a rule elsewhere changes nothing."""
    error = Rule.model_validate({"trigger": {"probability": 0.3}, "effect": {"kind": "error", "status": 503}})
    other = Rule.model_validate({"match": {"provider": "glm"}, "effect": {"kind": "hang"}})
    alone = ChaosEngine((error,), seed=9)
    with_other = ChaosEngine((error, other), seed=9)

    seq_alone = [alone.decide("kimi", "list", "GET").fault for _ in range(200)]
    seq_with = [with_other.decide("kimi", "list", "GET").fault for _ in range(200)]
    assert seq_alone == seq_with
    assert 30 < seq_alone.count("error") < 90


def test_first_terminal_effect_wins_and_latencies_add() -> None:
    rules = tuple(
        Rule.model_validate({"effect": effect})
        for effect in (
            {"kind": "latency", "seconds": 0.1},
            {"kind": "error", "status": 500},
            {"kind": "latency", "seconds": 0.2},
            {"kind": "hang"},
            {"kind": "slow", "bytes_per_second": 10},
        )
    )

    decision = ChaosEngine(rules, seed=0).decide("kimi", "upload", "POST")
    assert decision.terminal is not None
    assert decision.terminal.kind == "error"
    assert decision.latency_s == pytest.approx(0.3)
    assert decision.bytes_per_second == 10
