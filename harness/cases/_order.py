"""The order peers take turns in, shared by every case that compares us with a peer."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["mirrored"]


def mirrored(names: Sequence[str], rounds: int) -> list[str]:
    """Run order over `rounds`: forward, then backward, and so on (ours, a, b, b, a, ours, ...).

    Each client runs `rounds` times and, over two rounds, sits at every distance from the start, so a
    drift of the shared machine or of the mock's store (it fills up, its disk writes back) hits every
    client alike.
    """
    order: list[str] = []
    for index in range(rounds):
        order += names if index % 2 == 0 else list(reversed(names))
    return order
