"""Fixed-horizon numbers equal scipy.stats / statsmodels on the same data (within 1e-9): the
two-proportion Wald test and interval, the unequal-variance z-test of per-unit means, the
chi-square goodness of fit and the fixed-horizon sample size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats import proportion
from statsmodels.stats.power import NormalIndPower
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW, ztest

from registry.experiments import BinaryStats, MetricSpec, compare, sample_size_per_arm, srm_check
from registry.experiments.distributions import chi2_sf, gammaincc
from registry.experiments.stats import ratio_stats_of

TOL = 1e-9
CONVERSION = MetricSpec("conversion", "binary", "primary", "increase", mde=0.05)
LATENCY = MetricSpec("latency", "ratio", "primary", "decrease", mde=0.05)


@pytest.mark.parametrize(
    ("control", "treatment", "alpha"),
    [
        ((10_000, 1_000), (9_800, 1_050), 0.05),
        ((500, 37), (520, 22), 0.01),
        ((12_345, 6_000), (3_000, 1_530), 0.1),
        ((80, 1), (90, 0), 0.05),
    ],
)
def test_binary_fixed_is_statsmodels_unpooled_two_proportion_wald(
    control: tuple[int, int], treatment: tuple[int, int], alpha: float
) -> None:
    (n_c, s_c), (n_t, s_t) = control, treatment
    got = compare(
        CONVERSION,
        BinaryStats(n_c, s_c),
        BinaryStats(n_t, s_t),
        alpha=alpha,
        planned_units_per_arm=10_000,
    )
    test = proportion.test_proportions_2indep(s_t, n_t, s_c, n_c, method="wald", compare="diff")
    low, high = proportion.confint_proportions_2indep(
        s_t, n_t, s_c, n_c, method="wald", compare="diff", alpha=alpha
    )
    assert got.fixed.p_value == pytest.approx(test.pvalue, abs=TOL)
    assert got.fixed.low == pytest.approx(low, abs=TOL)
    assert got.fixed.high == pytest.approx(high, abs=TOL)
    assert got.abs_diff == pytest.approx(s_t / n_t - s_c / n_c, abs=1e-15)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_per_unit_means_fixed_is_statsmodels_unequal_variance_ztest(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x_c = rng.exponential(1.0, 400 + 50 * seed)
    x_t = rng.exponential(1.1, 700) * rng.normal(1.0, 0.2, 700)
    got = compare(
        LATENCY, ratio_stats_of(list(x_c)), ratio_stats_of(list(x_t)),
        alpha=0.05, planned_units_per_arm=1_000,
    )  # fmt: skip
    _, p = ztest(x_t, x_c, usevar="unequal")
    low, high = CompareMeans(DescrStatsW(x_t), DescrStatsW(x_c)).zconfint_diff(
        alpha=0.05, usevar="unequal"
    )
    assert got.fixed.p_value == pytest.approx(p, abs=TOL)
    assert got.fixed.low == pytest.approx(low, abs=TOL)
    assert got.fixed.high == pytest.approx(high, abs=TOL)


@pytest.mark.parametrize(
    ("units", "shares"),
    [
        ({"stable": 10_000, "candidate": 9_000}, {"stable": 0.5, "candidate": 0.5}),
        ({"stable": 5_030, "candidate": 4_970}, {"stable": 0.5, "candidate": 0.5}),
        ({"stable": 8_100, "candidate": 1_900}, {"stable": 0.8, "candidate": 0.2}),
        ({"a": 310, "b": 290, "c": 420}, {"a": 0.3, "b": 0.3, "c": 0.4}),
    ],
)
def test_srm_is_scipy_chisquare(units: dict[str, int], shares: dict[str, float]) -> None:
    got = srm_check(units, shares)
    arms = sorted(units)
    total = sum(units.values())
    want = sps.chisquare([units[a] for a in arms], [total * shares[a] for a in arms])
    assert got.chi2 == pytest.approx(want.statistic, abs=TOL)
    assert got.p_value == pytest.approx(want.pvalue, abs=TOL)
    assert got.df == len(units) - 1
    assert got.flagged == (want.pvalue < 0.001)


def test_chi2_survival_and_incomplete_gamma_are_scipys() -> None:
    worst = 0.0
    for df in (1, 2, 3, 4, 7, 10, 25, 60, 150):
        for x in [*np.linspace(0.0, 250.0, 251), 1e-9, 0.3, 600.0]:
            worst = max(worst, abs(chi2_sf(float(x), df) - sps.chi2.sf(x, df)))
    assert worst < TOL
    for a in (0.3, 1.7, 12.5):
        for x in (0.01, 1.0, 5.0, 40.0):
            assert gammaincc(a, x) == pytest.approx(float(sps.gamma.sf(x, a)), abs=TOL)


@pytest.mark.parametrize("share", [0.5, 0.2, 0.7])
@pytest.mark.parametrize(("alpha", "power"), [(0.05, 0.8), (0.01, 0.9), (0.1, 0.5)])
def test_fixed_sample_size_is_statsmodels_normal_ind_power(
    share: float, alpha: float, power: float
) -> None:
    p = 0.1
    sd = math.sqrt(p * (1 - p))
    got = sample_size_per_arm(
        CONVERSION, baseline_mean=p, baseline_sd=sd, alpha=alpha, power=power,
        candidate_share=share, sequential=False,
    )  # fmt: skip
    want = NormalIndPower().solve_power(
        effect_size=0.05 * p / sd, alpha=alpha, power=power, ratio=(1 - share) / share
    )
    assert got == math.ceil(want)


def latency_size(*, sequential: bool = True, n_primary: int = 1) -> int:
    return sample_size_per_arm(
        LATENCY, baseline_mean=1.0, baseline_sd=1.0, alpha=0.05, power=0.8,
        sequential=sequential, n_primary=n_primary,
    )  # fmt: skip


def test_sequential_size_is_larger_and_bonferroni_makes_it_larger_still() -> None:
    fixed, seq = latency_size(sequential=False), latency_size()
    assert fixed < seq < latency_size(n_primary=3)
    assert 1.5 < seq / fixed < 2.5


def test_sample_size_refuses_what_cannot_be_planned() -> None:
    with pytest.raises(ValueError, match="baseline_mean"):
        sample_size_per_arm(LATENCY, baseline_mean=0.0, baseline_sd=1.0, alpha=0.05, power=0.8)
    with pytest.raises(ValueError, match="baseline_sd"):
        sample_size_per_arm(LATENCY, baseline_mean=1.0, baseline_sd=0.0, alpha=0.05, power=0.8)
    with pytest.raises(ValueError, match="power"):
        sample_size_per_arm(LATENCY, baseline_mean=1.0, baseline_sd=1.0, alpha=0.05, power=1.0)
