"""The fleet run: several service instances sharing one rollout through PostgreSQL and Prometheus."""

from harness.fleet._run import FleetConfig, FleetResult, run_fleet

__all__ = ["FleetConfig", "FleetResult", "run_fleet"]
