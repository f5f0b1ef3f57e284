import pytest

from harness import CLAIMS, TOPICS, Op, Priority, claim_by_id


def test_every_design_row_has_a_claim() -> None:
    assert {claim.topic for claim in CLAIMS} == set(TOPICS)


def test_claim_ids_are_unique_and_start_with_their_topic() -> None:
    ids = [claim.id for claim in CLAIMS]
    assert len(ids) == len(set(ids))
    assert all(claim.id.startswith(f"{claim.topic}.") for claim in CLAIMS)


def test_every_topic_has_a_must_claim_except_the_marketing_ranges() -> None:
    must_topics = {claim.topic for claim in CLAIMS if claim.priority is Priority.MUST}
    assert set(TOPICS) - must_topics == {"throughput", "latency"}


def test_claimed_reads_like_a_formula() -> None:
    assert claim_by_id("mem-upload.peak").claimed == "< 100 MB"


def test_unknown_claim_id_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"claim_id='nope'.*mem-upload\.peak"):
        claim_by_id("nope")


@pytest.mark.parametrize(
    ("op", "measured", "threshold", "holds"),
    [
        (Op.LT, 99.9, 100, True),
        (Op.LT, 100, 100, False),
        (Op.LE, 100, 100, True),
        (Op.GE, 80, 80, True),
        (Op.GE, 79.99, 80, False),
        (Op.EQ, 0, 0, True),
        (Op.EQ, 1, 0, False),
    ],
    ids=["lt-below", "lt-equal", "le-equal", "ge-equal", "ge-below", "eq-same", "eq-other"],
)
def test_op_holds(op: Op, measured: float, threshold: float, holds: bool) -> None:
    assert op.holds(measured, threshold) is holds
