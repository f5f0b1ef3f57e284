import pytest

from harness._stats import chi_square_p_value, percentile


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 99) == 99.0
    assert percentile(values, 100) == 100.0


@pytest.mark.parametrize(
    ("statistic", "low", "high"), [(99.0, 0.45, 0.52), (148.23, 0.0008, 0.0012), (0.0, 1, 1)]
)
def test_chi_square_p_value_matches_tables(statistic: float, low: float, high: float) -> None:
    # Reference values for 99 degrees of freedom: median ~98.3, 0.1 % critical value 148.23.
    assert low <= chi_square_p_value(statistic, 99) <= high


@pytest.mark.parametrize(("values", "q"), [([1.0], 0), ([1.0], 101)], ids=["zero", "over-100"])
def test_percentile_rejects_bad_q(values: list[float], q: float) -> None:
    with pytest.raises(ValueError, match=f"q={q!r}"):
        percentile(values, q)
