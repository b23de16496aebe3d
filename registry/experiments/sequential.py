"""Always-valid inference: the mixture sequential probability ratio test (mSPRT).

Johari, Pekelis & Walsh, "Always Valid Inference: Continuous Monitoring of A/B Tests",
Operations Research 70(3), 2022 (arXiv:1512.04922, 2015/2017). For an estimate ``θ̂`` of the
difference of means, asymptotically normal with variance ``V`` (``V = V_control + V_treatment``,
each from ``stats.moments``), and a normal mixture ``θ ~ N(θ₀, τ²)`` over the alternatives, the
mixture likelihood ratio against ``H₀: θ = θ₀`` is

    Λ = sqrt(V / (V + τ²)) · exp( τ² (θ̂ - θ₀)² / (2 V (V + τ²)) ).

Under ``H₀``, ``Λ`` is a nonnegative martingale with mean 1 over the looks, so by Ville's
inequality ``P(sup Λ ≥ 1/alpha) ≤ alpha``: the test "reject when ``Λ ≥ 1/alpha``" may be
looked at after every batch of data, as often as one likes, and keeps its type I error at
``alpha``. Hence

* always-valid p-value: ``p = min(1, 1/Λ(θ₀ = 0))``;
* always-valid confidence interval (a confidence sequence), the ``θ₀`` that are not rejected:
  ``θ̂ ± sqrt( V (V + τ²) / τ² · (2 log(1/alpha) + log((V + τ²) / V)) )``.

Each is valid at every look on its own; a caller that keeps them may also take the running
minimum of the p-values and the running intersection of the intervals (still valid).

Writing ``a = τ² / V`` (how large the mixture is against the current variance):
``log Λ = -½ log(1 + a) + a/(1 + a) · z²/2`` with ``z = θ̂ / sqrt(V)``, and the half-width is
``sqrt(V (1 + 1/a) (2 log(1/alpha) + log(1 + a)))``.

Choice of ``τ²``: the mixture is tuned to the planned sample size. The variance of the difference
shrinks as ``1/n``; with ``n_eff = n_c n_t / (n_c + n_t)`` the effective number of units now and
``n_eff*`` at the planned size, ``V* = V · n_eff / n_eff*`` is the variance expected at the
planned size, and ``τ² = c · V*`` with ``c = L + log(1 + L)``, ``L = 2 log(1/alpha)``: the mixing
scale that (to within 0.1 % here) minimises the interval's width at the planned size: the
closed-form tuning of the normal-mixture boundary for a target time in Howard, Ramdas, McAuliffe
& Sekhon, "Time-uniform, nonparametric, nonasymptotic confidence sequences", Annals of
Statistics 49(2), 2021 (the tuning GrowthBook's sequential testing documents).
So ``a = c · n_eff / n_eff*``. ``τ²`` follows the data's variance (a plug-in, like the variance
in ``V`` itself): the guarantee is asymptotic in the number of units, as for any z-test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


def mixture_constant(alpha: float) -> float:
    """``c = L + log(1 + L)``, ``L = 2 log(1/alpha)``: ``τ² = c · V*`` (module docstring)."""
    big_l = 2.0 * math.log(1.0 / alpha)
    return big_l + math.log1p(big_l)


def mixture_ratio(alpha: float, n_eff: float, planned_n_eff: float) -> float:
    """``a = τ² / V = c · n_eff / n_eff*``."""
    if planned_n_eff <= 0:
        raise ValueError(f"planned effective units must be > 0, got {planned_n_eff}")
    return mixture_constant(alpha) * n_eff / planned_n_eff


def effective_units(n_control: float, n_treatment: float) -> float:
    """``n_c n_t / (n_c + n_t)``: the variance of a difference of means is ``σ² / n_eff``."""
    total = n_control + n_treatment
    return n_control * n_treatment / total if total > 0 else 0.0


def boundary_z(alpha: float, a: float) -> float:
    """The ``|z|`` at which ``Λ = 1/alpha``: ``sqrt((1 + 1/a) (2 log(1/alpha) + log(1 + a)))``. The
    interval's half-width is ``boundary_z · sqrt(V)``."""
    return math.sqrt((1.0 + 1.0 / a) * (2.0 * math.log(1.0 / alpha) + math.log1p(a)))


def log_likelihood_ratio(z: float, a: float) -> float:
    """``log Λ = -½ log(1 + a) + a / (1 + a) · z² / 2``."""
    return -0.5 * math.log1p(a) + a / (1.0 + a) * z * z / 2.0


def p_value(z: float, a: float) -> float:
    """The always-valid p-value ``min(1, 1/Λ)``."""
    return math.exp(min(0.0, -log_likelihood_ratio(z, a)))


@dataclass(frozen=True, slots=True)
class Interval:
    """``[low, high]`` (infinite when the data cannot bound it) and the p-value of ``θ = 0``."""

    low: float
    high: float
    p_value: float


def interval(estimate: float, var: float, alpha: float, a: float) -> Interval:
    """The confidence sequence at level ``1 - alpha`` at this look (``estimate ± boundary_z ·
    sqrt(var)``), and the always-valid p-value of 0."""
    if not (var > 0 and math.isfinite(var)) or not math.isfinite(estimate):
        return Interval(-math.inf, math.inf, 1.0)
    se = math.sqrt(var)
    half = boundary_z(alpha, a) * se
    return Interval(estimate - half, estimate + half, p_value(estimate / se, a))
