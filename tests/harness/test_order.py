from collections import Counter

from harness.cases._order import mirrored


def test_mirrored_order_gives_every_client_the_same_rounds_and_places() -> None:
    order = mirrored(["ours", "a", "b"], 4)
    assert order == ["ours", "a", "b", "b", "a", "ours", "ours", "a", "b", "b", "a", "ours"]
    assert set(Counter(order).values()) == {4}
    # over each pair of rounds every client's positions sum alike: no one always goes first
    positions = {name: sum(i % 3 for i, n in enumerate(order) if n == name) for name in ("ours", "a", "b")}
    assert len(set(positions.values())) == 1
