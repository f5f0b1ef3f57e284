"""Everything one mock server holds: files, journal, chaos, limits. Touched only by its event loop."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mock_provider._chaos import ChaosEngine
from mock_provider._journal import Journal
from mock_provider._providers import Provider, PurposeRule
from mock_provider._rules import Rule
from mock_provider._store import FileStore
from mock_provider._wire import DEFAULT_BODY_TIMEOUT


@dataclass(slots=True)
class MockState:
    """The server's state.

    Args:
        data_dir: where uploaded bytes and the journal (``journal.jsonl``) go.
        rules: the chaos rules in force; `profile` names where they came from (None: set by hand).
        seed: seeds the chaos streams and the file ids, so a run can be replayed.
        clock: wall-clock seconds, for ``created_at`` and the journal's ``started_at``.
        max_file_bytes: when set, replaces every per-purpose size limit (benchmarks move files larger
            than the providers' 100 MB); None keeps the providers' real limits.
        body_timeout: seconds a request body may go without a byte before the answer is 408.
    """

    data_dir: Path
    rules: tuple[Rule, ...]
    profile: str | None
    seed: int
    clock: Callable[[], float]
    max_file_bytes: int | None = None
    body_timeout: float = DEFAULT_BODY_TIMEOUT
    # Connections, so a client's pooling can be checked: many requests, few connections.
    connections_accepted: int = 0
    connections_open: int = 0
    store: FileStore = field(init=False)
    journal: Journal = field(init=False)
    chaos: ChaosEngine = field(init=False)
    ids: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.store = FileStore(self.data_dir)
        self.journal = Journal(self.clock, self.data_dir / "journal.jsonl")
        self.chaos = ChaosEngine(self.rules, self.seed)
        self.ids = random.Random(f"ids:{self.seed}")

    def set_rules(self, rules: tuple[Rule, ...], profile: str | None, seed: int | None = None) -> None:
        """Replace the chaos rules; the fault sequence starts over."""
        self.rules, self.profile = rules, profile
        if seed is not None:
            self.seed = seed
        self.chaos = ChaosEngine(self.rules, self.seed)

    def reset(self) -> None:
        """Forget files and journal, and start the fault and id sequences over (rules stay)."""
        self.store.clear()
        self.journal.clear()
        self.connections_accepted = self.connections_open
        self.chaos.restart()
        self.ids = random.Random(f"ids:{self.seed}")

    def max_bytes(self, provider: Provider, rule: PurposeRule | None) -> int:
        """The size limit in force for a purpose (`rule` None: the purpose is not known yet)."""
        if self.max_file_bytes is not None:
            return self.max_file_bytes
        if rule is not None:
            return rule.max_bytes
        return max(r.max_bytes for r in provider.purposes.values())

    def new_file_id(self, provider: Provider, now: float) -> str:
        while True:
            file_id = provider.new_id(self.ids, now)
            if not self.store.has_id(provider.name, file_id):
                return file_id
