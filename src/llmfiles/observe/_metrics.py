"""Prometheus metrics for the rollout, in a registry of their own.

Each `RolloutMetrics` owns a `CollectorRegistry` (pass one to share it with an app's registry): two
instances never fight over metric names in the process-wide default registry, which is what lets tests,
and a process that runs two rollouts, create as many as they need.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from llmfiles.observe._event import ARMS, OUTCOMES, ErrorKind, Event

# Upload latencies range from tens of milliseconds (small files on loopback) to minutes (100 MB, slow
# links); the buckets cover that span with resolution where the stage gates compare arms.
_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


class RolloutMetrics:
    """Counters and histograms labelled by arm, provider and outcome; an event sink (`record`).

    Args:
        registry: where the metrics live; a fresh `CollectorRegistry` when None.
        namespace: metric name prefix.
        providers: provider labels whose series are created at 0 up front.
    """

    def __init__(
        self,
        registry: CollectorRegistry | None = None,
        *,
        namespace: str = "llmfiles",
        providers: tuple[str, ...] = ("kimi", "glm"),
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        labels = ("arm", "provider", "outcome")
        self.uploads = Counter(
            "uploads",
            "Dispatched uploads by arm, provider and outcome.",
            labels,
            namespace=namespace,
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "upload_bytes",
            "Bytes uploaded through each arm.",
            labels,
            namespace=namespace,
            registry=self.registry,
        )
        self.errors = Counter(
            "upload_errors",
            "Calls the chosen arm failed (rescued or not), by error class and kind (timeout, critical).",
            ("arm", "provider", "error_type", "error_kind"),
            namespace=namespace,
            registry=self.registry,
        )
        self.duration = Histogram(
            "upload_duration_seconds",
            "Time from dispatch to answer, fallback included.",
            labels,
            namespace=namespace,
            registry=self.registry,
            buckets=_DURATION_BUCKETS,
        )
        self.rollbacks = Counter(
            "rollout_rollbacks",
            "Rollbacks applied, by trigger (automatic or manual).",
            ("trigger",),
            namespace=namespace,
            registry=self.registry,
        )
        self.percent = Gauge(
            "rollout_percent",
            "Share of keys routed to the async arm, in percent.",
            namespace=namespace,
            registry=self.registry,
        )
        self.memory_growth = Gauge(
            "rollout_memory_growth_ratio",
            "Process RSS over the stage baseline, minus one.",
            namespace=namespace,
            registry=self.registry,
        )

        # Every arm/provider/outcome series exists from the start at 0: Prometheus' increase() cannot see
        # a series' first sample, so a series born at 1 would hide the first call of a fleet-wide window.
        for arm in ARMS:
            for provider in providers:
                for outcome in OUTCOMES:
                    self.uploads.labels(arm, provider, outcome)
                    self.upload_bytes.labels(arm, provider, outcome)
                    self.duration.labels(arm, provider, outcome)

    def record(self, event: Event) -> None:
        """Count one dispatched call."""
        labels = (event.arm, event.provider, event.outcome)
        self.uploads.labels(*labels).inc()
        self.upload_bytes.labels(*labels).inc(event.bytes)
        self.duration.labels(*labels).observe(event.duration_s)
        if event.error_type is not None:
            kind = ErrorKind.OTHER if event.error_kind is None else event.error_kind
            self.errors.labels(event.arm, event.provider, event.error_type, kind.value).inc()

    def rollback(self, *, trigger: str) -> None:
        """Raise the rollback counter; `trigger` is ``"automatic"`` or ``"manual"``."""
        self.rollbacks.labels(trigger).inc()
        self.percent.set(0)

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format, for a ``/metrics`` endpoint."""
        return generate_latest(self.registry)
