"""The rollout across a fleet: flags and controller state in PostgreSQL, arms judged from Prometheus.

Several instances of a service behind a load balancer share one rollout:

- `PostgresFlagSource`: the flags every instance routes by, changed in one transaction with its history
  and seen by every instance within a second (LISTEN/NOTIFY, polling when notifications do not come).
- `PostgresStateStore`: the controller's state, the same contract as the file store.
- `ControllerLease` and `FleetController`: several controllers may run, exactly one acts.
- `PrometheusFigures`: the arms' figures over the whole fleet, fed to the same gates and judge.

`open_flag_source` and `open_state_store` pick the file or the PostgreSQL form from one setting, so the
CLI and a service take ``--flags postgresql://...`` wherever they take a flag file. The single-host
defaults (environment, flag file, state file) need none of this.
"""

from llmfiles.fleet._controller import FleetController, FleetTick, PinnedClock
from llmfiles.fleet._flags import CHANNEL, DEFAULT_FLAG, FlagChange, PostgresFlagSource
from llmfiles.fleet._lease import CheckRecord, ControllerLease, LeaseGrant
from llmfiles.fleet._open import open_flag_source, open_state_store
from llmfiles.fleet._pg import is_postgres_url
from llmfiles.fleet._prometheus import PrometheusFigures, histogram_samples
from llmfiles.fleet._state import PostgresStateStore

__all__ = [
    "CHANNEL",
    "DEFAULT_FLAG",
    "CheckRecord",
    "ControllerLease",
    "FlagChange",
    "FleetController",
    "FleetTick",
    "LeaseGrant",
    "PinnedClock",
    "PostgresFlagSource",
    "PostgresStateStore",
    "PrometheusFigures",
    "histogram_samples",
    "is_postgres_url",
    "open_flag_source",
    "open_state_store",
]
