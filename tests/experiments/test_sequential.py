"""The mSPRT: its likelihood ratio is the normal-mixture integral, its interval is the set of
values it does not reject, and it is tuned to the planned size."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sps

from registry.experiments import BinaryStats, MetricSpec, compare
from registry.experiments.sequential import (
    boundary_z,
    interval,
    log_likelihood_ratio,
    mixture_constant,
    p_value,
)

PRIMARY = MetricSpec("conversion", "binary", "primary", "increase", mde=0.05)


@pytest.mark.parametrize(("estimate", "var", "tau2"), [(0.3, 0.04, 0.1), (-1.2, 0.5, 0.02)])
def test_likelihood_ratio_is_the_normal_mixture_integral(
    estimate: float, var: float, tau2: float
) -> None:
    """Λ = ∫ N(θ̂; θ, V) N(θ; 0, τ²) dθ / N(θ̂; 0, V)."""
    sd = math.sqrt(var)
    numerator, _ = integrate.quad(
        lambda t: sps.norm.pdf(estimate, t, sd) * sps.norm.pdf(t, 0, math.sqrt(tau2)),
        -20,
        20,
        epsabs=1e-14,
    )
    want = numerator / sps.norm.pdf(estimate, 0, sd)
    got = math.exp(log_likelihood_ratio(estimate / sd, tau2 / var))
    assert got == pytest.approx(want, rel=1e-8)


def test_interval_is_where_the_test_does_not_reject() -> None:
    alpha, a, estimate, var = 0.05, 3.0, 0.7, 0.09
    got = interval(estimate, var, alpha, a)
    sd = math.sqrt(var)
    for bound in (got.low, got.high):
        # At a bound, Λ(θ0 = bound) is exactly 1/alpha.
        assert log_likelihood_ratio((estimate - bound) / sd, a) == pytest.approx(
            math.log(1 / alpha), rel=1e-12
        )
    rng = np.random.default_rng(4)
    for _ in range(500):
        z, a_ = rng.normal(0, 3), rng.uniform(0.01, 50)
        iv = interval(z, 1.0, alpha, a_)
        assert (iv.p_value <= alpha) == (iv.low > 0 or iv.high < 0)
        assert iv.p_value == pytest.approx(p_value(z, a_))


def test_sequential_interval_is_wider_than_the_fixed_one_and_tuned_to_the_planned_size() -> None:
    c = mixture_constant(0.05)
    widths = {a: boundary_z(0.05, a) for a in (c / 4, c / 2, c, 2 * c, 4 * c)}
    # The mixture constant makes the boundary narrowest at the planned size (a = c).
    assert min(widths, key=widths.__getitem__) == c
    assert min(widths.values()) > sps.norm.ppf(0.975)
    got = compare(
        PRIMARY, BinaryStats(5_000, 500), BinaryStats(5_000, 560),
        alpha=0.05, planned_units_per_arm=5_000,
    )  # fmt: skip
    assert got.information == pytest.approx(1.0)
    assert got.fixed.low > got.sequential.low
    assert got.fixed.high < got.sequential.high
    assert got.sequential.p_value > got.fixed.p_value
