"""The few distribution functions the experiment statistics need, on the standard library.

* Normal: ``statistics.NormalDist`` for quantiles; tail probabilities through ``math.erfc``
  (accurate far into the tail, where ``1 - cdf`` would round to 0).
* Chi-square survival function ``P(X > x) = Q(df/2, x/2)``, ``Q`` the regularized upper
  incomplete gamma function, computed as in Press et al., "Numerical Recipes" (3rd ed., §6.2):
  the series ``P(a, x) = e^{-x} x^a / Γ(a) · Σ_k x^k / (a (a+1) ... (a+k))`` for
  ``x < a + 1`` (then ``Q = 1 - P``), else the continued fraction
  ``Q(a, x) = e^{-x} x^a / Γ(a) · 1 / (x + 1 - a - 1·(1-a) / (x + 3 - a - 2·(2-a) / ...))``
  evaluated by the modified Lentz method. Both converge to double precision.
"""

from __future__ import annotations

import math
from statistics import NormalDist

_STANDARD = NormalDist()
_EPS = 1e-16
_TINY = 1e-300
_MAX_ITER = 10_000


def norm_ppf(q: float) -> float:
    """The standard normal quantile (``Φ⁻¹``)."""
    return _STANDARD.inv_cdf(q)


def norm_cdf(z: float) -> float:
    """``Φ(z)``, accurate in both tails."""
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def two_sided_p(z: float) -> float:
    """``2 (1 - Φ(|z|))`` without cancellation."""
    return math.erfc(abs(z) / math.sqrt(2.0))


def _log_prefactor(a: float, x: float) -> float:
    """``log(e^{-x} x^a / Γ(a))``."""
    return -x + a * math.log(x) - math.lgamma(a)


def _lower_series(a: float, x: float) -> float:
    """``P(a, x)`` by its series (converges fast for ``x < a + 1``)."""
    term = 1.0 / a
    total = term
    denom = a
    for _ in range(_MAX_ITER):
        denom += 1.0
        term *= x / denom
        total += term
        if abs(term) < abs(total) * _EPS:
            break
    return total * math.exp(_log_prefactor(a, x))


def _upper_fraction(a: float, x: float) -> float:
    """``Q(a, x)`` by its continued fraction (modified Lentz; for ``x >= a + 1``)."""
    b = x + 1.0 - a
    c = 1.0 / _TINY
    d = 1.0 / b
    h = d
    for i in range(1, _MAX_ITER):
        an = -i * (i - a)
        b += 2.0
        d = an * d + b
        d = _TINY if abs(d) < _TINY else d
        c = b + an / c
        c = _TINY if abs(c) < _TINY else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < _EPS:
            break
    return h * math.exp(_log_prefactor(a, x))


def gammaincc(a: float, x: float) -> float:
    """The regularized upper incomplete gamma function ``Q(a, x) = Γ(a, x) / Γ(a)``."""
    if a <= 0 or not math.isfinite(a):
        raise ValueError(f"gammaincc needs a > 0, got {a}")
    if x < 0 or math.isnan(x):
        raise ValueError(f"gammaincc needs x >= 0, got {x}")
    if x == 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    if x < a + 1.0:
        return max(0.0, 1.0 - _lower_series(a, x))
    return min(1.0, _upper_fraction(a, x))


def chi2_sf(x: float, df: int) -> float:
    """``P(χ²_df > x)``."""
    if df < 1:
        raise ValueError(f"chi-square needs df >= 1, got {df}")
    return gammaincc(df / 2.0, max(x, 0.0) / 2.0)
