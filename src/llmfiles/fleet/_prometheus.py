"""`PrometheusFigures`: the arms' figures over the whole fleet, read from Prometheus with PromQL.

Each instance exports `RolloutMetrics`; Prometheus scrapes them all. This reader answers the question the
in-process `Recorder` answers for one process, ``compare(window_s=...)``, from the fleet's series, so the
controller and ``llmfiles rollout evaluate`` feed the same gates and judge whichever source they use.
The queries (``W`` the window in seconds, ``SEL`` the configured selector, ``Δ(m)`` short for
``max_over_time(m[Ws]) - (m offset Ws or max_over_time(m[Ws]) * 0)``)::

    sum by (arm, outcome) (Δ(llmfiles_uploads_total{SEL}))
    sum by (arm) (Δ(llmfiles_upload_bytes_total{SEL}))
    sum by (arm, error_type, error_kind) (Δ(llmfiles_upload_errors_total{SEL}))
    sum by (arm, le) (Δ(llmfiles_upload_duration_seconds_bucket{SEL,outcome="success"}))

``Δ`` is a counter's value at the window's end minus its value at the window's start, or minus 0 for a
series born inside the window (an error class seen for the first time). Why not ``increase()``: it
extrapolates to the window's edges, which turned 35 calls into 40.8 when the last scrape came half an
interval before the query, and it cannot see a series' first sample; the judge's rate tests need whole
calls. ``Δ`` is exact for a counter that did not restart inside the window; an instance that did is
counted from its old peak (rare, and it errs towards more calls, not fewer failures).

A histogram keeps no more than how many calls fell in each bucket, so each counted call becomes one
latency at its bucket's midpoint; percentiles (nearest rank, as the recorder's) and the judge work on
those.

Queries are instant queries at an evaluation time (`at`), so a controller that took over late can judge
each missed interval at its own end. Prometheus unreachable raises `SharedStateError`: the controller
holds and says why, and never promotes or rolls back on figures it does not have.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import httpx

from llmfiles._errors import ConfigError, SharedStateError
from llmfiles.observe import ArmSummary, Comparison, ErrorKind, LatencySamples, compare_summaries, percentile
from llmfiles.observe._event import Arm

Clock = Callable[[], float]
Vector = list[tuple[Mapping[str, str], float]]
"""An instant vector: each series' labels and value."""


def _delta(series: str, rng: str) -> str:
    """A counter's value at the window's end minus at its start (0 for a series born inside)."""
    end = f"max_over_time({series}[{rng}])"
    return f"({end} - ({series} offset {rng} or {end} * 0))"


class PrometheusFigures:
    """Per-arm figures of the whole fleet over a window, in the shape the gates judge.

    Args:
        url: the Prometheus server, e.g. ``http://127.0.0.1:9090``.
        selector: label matchers for our series, e.g. ``job="llmfiles"`` (empty: every series).
        window_s: the longest window asked for (the stage window of the controller).
        clock: the evaluation time when `compare` is not given one (wall-clock seconds).
        timeout_s: per query.
        candidate, control: the arms compared.
    """

    def __init__(
        self,
        url: str,
        *,
        selector: str = "",
        window_s: float = 3600.0,
        clock: Clock = time.time,
        timeout_s: float = 5.0,
        candidate: Arm = "async",
        control: Arm = "legacy",
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(f"prometheus={url!r} must be an http:// or https:// URL")
        if not window_s > 0:
            raise ConfigError(f"window_s={window_s!r} must be > 0 seconds")
        self.url = url.rstrip("/")
        self.selector = selector
        self.window_s = window_s
        self.candidate: Arm = candidate
        self.control: Arm = control
        self._clock = clock
        self._http = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PrometheusFigures:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def latency_samples(self, *, window_s: float | None = None, at: float | None = None) -> LatencySamples:
        """Each arm's successful calls over the window, one latency per call at its bucket's midpoint.

        Raises:
            SharedStateError: Prometheus could not be reached or answered with an error.
        """
        _, when, rng = self._window(window_s, at)
        buckets = self._buckets(rng, when)
        return LatencySamples(
            control=tuple(self._arm_samples(self.control, buckets)),
            candidate=tuple(self._arm_samples(self.candidate, buckets)),
        )

    def compare(self, *, window_s: float | None = None, at: float | None = None) -> Comparison:
        """Candidate and control over ``(at - window_s, at]``.

        Raises:
            SharedStateError: Prometheus could not be reached or answered with an error.
        """
        span, when, rng = self._window(window_s, at)
        sel = self.selector
        counts = self._vector(
            f"sum by (arm, outcome) {_delta(f'llmfiles_uploads_total{{{sel}}}', rng)}", when
        )
        sizes = self._vector(f"sum by (arm) {_delta(f'llmfiles_upload_bytes_total{{{sel}}}', rng)}", when)
        errors = self._vector(
            f"sum by (arm, error_type, error_kind) {_delta(f'llmfiles_upload_errors_total{{{sel}}}', rng)}",
            when,
        )
        buckets = self._buckets(rng, when)
        return compare_summaries(
            self._summary(self.candidate, span, counts, sizes, errors, buckets),
            self._summary(self.control, span, counts, sizes, errors, buckets),
        )

    def _window(self, window_s: float | None, at: float | None) -> tuple[float, float, str]:
        """The window's length, its end, and its PromQL range (whole seconds, at least one)."""
        span = self.window_s if window_s is None else window_s
        if not 0 < span <= self.window_s:
            raise ConfigError(f"window_s={window_s!r} must be > 0 and <= the reader's {self.window_s!r}")
        return span, self._clock() if at is None else at, f"{max(1, math.ceil(span))}s"

    def _buckets(self, rng: str, when: float) -> Vector:
        success = f'{self.selector},outcome="success"' if self.selector else 'outcome="success"'
        histogram = f"llmfiles_upload_duration_seconds_bucket{{{success}}}"
        return self._vector(f"sum by (arm, le) {_delta(histogram, rng)}", when)

    @staticmethod
    def _arm_samples(arm: Arm, buckets: Vector) -> list[float]:
        return histogram_samples(
            [(labels["le"], n) for labels, n in buckets if labels.get("arm") == arm and "le" in labels]
        )

    def _summary(
        self, arm: Arm, span: float, counts: Vector, sizes: Vector, errors: Vector, buckets: Vector
    ) -> ArmSummary:
        outcomes: dict[str, int] = defaultdict(int)
        for labels, value in counts:
            if labels.get("arm") == arm:
                outcomes[labels.get("outcome", "")] += round(value)
        error_types: dict[str, int] = defaultdict(int)
        critical: dict[str, int] = defaultdict(int)
        timeouts = 0
        for labels, value in errors:
            calls = round(value)
            if labels.get("arm") != arm or "error_type" not in labels or calls <= 0:
                continue
            error_types[labels["error_type"]] += calls
            kind = labels.get("error_kind")
            if kind == ErrorKind.TIMEOUT.value:
                timeouts += calls
            elif kind == ErrorKind.CRITICAL.value:
                critical[labels["error_type"]] += calls
        latencies = self._arm_samples(arm, buckets)
        total = sum(outcomes.values())
        return ArmSummary(
            arm=arm,
            window_s=span,
            count=total,
            successes=outcomes["success"],
            failures=outcomes["failure"],
            fallbacks=outcomes["fallback"],
            timeouts=timeouts,
            bytes=sum(round(value) for labels, value in sizes if labels.get("arm") == arm),
            p50_s=percentile(latencies, 50),
            p95_s=percentile(latencies, 95),
            p99_s=percentile(latencies, 99),
            throughput_per_s=total / span,
            error_types=MappingProxyType(dict(error_types)),
            critical_errors=MappingProxyType(dict(critical)),
        )

    def _vector(self, query: str, at: float) -> Vector:
        try:
            response = self._http.get(
                f"{self.url}/api/v1/query", params={"query": query, "time": f"{at:.3f}"}
            )
        except httpx.HTTPError as exc:
            raise SharedStateError(f"prometheus={self.url!r} cannot be reached: {exc}") from exc
        try:
            body: dict[str, Any] = response.json()
        except ValueError as exc:
            raise SharedStateError(
                f"prometheus={self.url!r} answered {response.status_code} without JSON"
            ) from exc
        if response.status_code != 200 or body.get("status") != "success":
            raise SharedStateError(
                f"prometheus={self.url!r} refused {query!r}: {body.get('error', response.status_code)}"
            )
        result = body.get("data", {}).get("result", [])
        vector: Vector = []
        for item in result:
            value = float(item["value"][1])
            if math.isfinite(value):
                vector.append((item.get("metric", {}), value))
        return vector


def histogram_samples(buckets: list[tuple[str, float]]) -> list[float]:
    """One latency per counted call from cumulative bucket counts ``[(le, count), ...]``.

    Each call is placed at its bucket's midpoint (the first bucket's at half its bound; the ``+Inf``
    bucket's at the last finite bound): the best a histogram can say about where in its bucket it fell.
    """
    finite = sorted((float(le), count) for le, count in buckets if le != "+Inf")
    inf = [count for le, count in buckets if le == "+Inf"]
    samples: list[float] = []
    lower, below = 0.0, 0
    for bound, cumulative in finite:
        total = round(cumulative)
        samples.extend([(lower + bound) / 2] * max(0, total - below))
        lower, below = bound, max(below, total)
    if inf and finite:
        samples.extend([finite[-1][0]] * max(0, round(inf[0]) - below))
    return samples
