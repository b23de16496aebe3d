"""Per-arm statistics: validation of what a gateway sends, pooling, and the delta method."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.experiments import BinaryStats, RatioStats
from registry.experiments.stats import moments, ratio_stats_of

GOOD = {"units": 3, "sum_x": 6.0, "sum_x2": 14.0, "sum_m": 4.0, "sum_m2": 6.0, "sum_xm": 8.0}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"units": -1, "successes": 0}, "units must be >= 0"),
        ({"units": 5, "successes": -1}, "successes must be >= 0"),
        ({"units": 5, "successes": 6}, "exceeds units"),
        ({"units": 5.0, "successes": 1}, "units must be an int"),
        ({"units": True, "successes": 1}, "units must be an int"),
    ],
)
def test_bad_binary_stats_are_refused(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BinaryStats(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"units": -2}, "units must be >= 0"),
        ({"sum_x2": -1.0}, "sum_x2 must be >= 0"),
        ({"sum_m": -1.0}, "sum_m must be >= 0"),
        ({"sum_x": math.nan}, "sum_x must be finite"),
        ({"sum_xm": math.inf}, "sum_xm must be finite"),
        ({"sum_m": "4"}, "sum_m must be a number"),
        ({"sum_m": 2.0, "sum_m2": 2.0}, "below units"),
        ({"sum_m2": 3.0}, "sum_m2 .* is below sum_m"),
        ({"sum_x2": 11.0}, r"sum_x\*\*2 .*Cauchy-Schwarz"),
        ({"sum_m": 5.0, "sum_m2": 8.0}, r"sum_m\*\*2 .*Cauchy-Schwarz"),
        ({"sum_xm": 9.5}, r"sum_xm\*\*2 .*Cauchy-Schwarz"),
        ({"units": 0}, "0 units must have all sums 0"),
    ],
)
def test_bad_ratio_stats_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RatioStats(**{**GOOD, **change})  # type: ignore[arg-type]


def test_good_sums_pass_and_a_bound_met_exactly_passes() -> None:
    RatioStats(**GOOD)  # type: ignore[arg-type]
    # Every unit alike: Cauchy-Schwarz holds with equality, rounding must not refuse it.
    x = [0.1] * 7
    ratio_stats_of(x)
    RatioStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)


def test_pooling_disjoint_units_is_the_stats_of_all_of_them() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(2.0, 1.0, 50)
    m = 1.0 + rng.poisson(3.0, 50)
    whole = ratio_stats_of(list(x), list(m))
    pooled = ratio_stats_of(list(x[:20]), list(m[:20])) + ratio_stats_of(list(x[20:]), list(m[20:]))
    for name in ("units", "sum_x", "sum_x2", "sum_m", "sum_m2", "sum_xm"):
        assert getattr(pooled, name) == pytest.approx(getattr(whole, name), rel=1e-12)
    assert BinaryStats(10, 3) + BinaryStats(5, 5) == BinaryStats(15, 8)
    assert pooled.requests == pytest.approx(m.sum())
    assert BinaryStats(10, 3).requests == 10


def test_delta_method_variance_is_deng_et_al_on_raw_data() -> None:
    """var(Σx/Σm) = (s_x² - 2 r s_xm + r² s_m²) / (n m̄²), with numpy's unbiased (co)variances
    of the raw per-unit values."""
    rng = np.random.default_rng(2)
    m = 1.0 + rng.poisson(4.0, 400)
    x = m * rng.normal(3.0, 1.0, 400) + rng.normal(0, 1, 400) * np.sqrt(m)
    got = moments(ratio_stats_of(list(x), list(m)))
    r = x.sum() / m.sum()
    cov = np.cov(x, m, ddof=1)
    expected = (cov[0, 0] - 2 * r * cov[0, 1] + r * r * cov[1, 1]) / (400 * m.mean() ** 2)
    assert got.mean == pytest.approx(r, rel=1e-12)
    assert got.var_mean == pytest.approx(expected, rel=1e-9)


def test_one_request_per_unit_is_the_plain_mean_and_its_variance() -> None:
    x = np.random.default_rng(3).exponential(2.0, 300)
    got = moments(ratio_stats_of(list(x)))
    assert got.mean == pytest.approx(x.mean(), rel=1e-12)
    assert got.var_mean == pytest.approx(x.var(ddof=1) / 300, rel=1e-9)


def test_binary_variance_is_the_unpooled_wald_one_and_undefined_cases_are_nan() -> None:
    got = moments(BinaryStats(200, 30))
    assert got.mean == 0.15
    assert got.var_mean == pytest.approx(0.15 * 0.85 / 200)
    assert math.isnan(moments(BinaryStats(0, 0)).mean)
    assert math.isnan(moments(ratio_stats_of([1.0])).var_mean)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
            st.integers(min_value=1, max_value=200),
        ),
        min_size=1,
        max_size=60,
    )
)
def test_sums_of_any_real_units_are_accepted_and_pool(units: list[tuple[float, int]]) -> None:
    """Sums a gateway computes naively (float additions, in any order) from real units are
    never refused by the consistency checks, and the variance is never negative."""
    stats = RatioStats(0, 0.0, 0.0, 0.0, 0.0, 0.0)
    for x, m in units:
        stats = stats + RatioStats(1, x, x * x, float(m), float(m * m), x * m)
    assert stats.units == len(units)
    got = moments(stats)
    assert len(units) < 2 or got.var_mean >= 0
