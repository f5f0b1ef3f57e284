import pytest

from harness.cases._stats import chi_square_p_value


@pytest.mark.parametrize(
    ("statistic", "low", "high"), [(99.0, 0.45, 0.52), (148.23, 0.0008, 0.0012), (0.0, 1, 1)]
)
def test_chi_square_p_value_matches_tables(statistic: float, low: float, high: float) -> None:
    # Reference values for 99 degrees of freedom: median ~98.3, 0.1 % critical value 148.23.
    assert low <= chi_square_p_value(statistic, 99) <= high


def test_chi_square_needs_a_degree_of_freedom() -> None:
    with pytest.raises(ValueError, match="dof=0"):
        chi_square_p_value(1.0, 0)
