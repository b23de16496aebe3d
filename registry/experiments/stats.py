"""Per-arm sufficient statistics of an experiment metric, and the mean with its variance.

A gateway never sends raw observations: per arm and metric it sends sums over the randomization
units (users or tenants), which pool by addition across reports and replicas.

* ``BinaryStats(units, successes)``: a per-unit binary metric (the unit converted or not).
  Mean ``p = successes / units``, variance of the mean ``p (1 - p) / units`` (the unpooled Wald
  variance of statsmodels' two-proportion test).
* ``RatioStats``: a metric measured per request while randomization is per unit. For unit ``i``,
  ``x_i`` is the metric summed over its requests and ``m_i`` its request count (``m_i >= 1``);
  the gateway sends ``n``, ``Σx``, ``Σx²``, ``Σm``, ``Σm²`` and ``Σxm``. The mean is
  ``r = Σx / Σm`` and its variance comes from the delta method (Deng, Knoblich & Lu 2018,
  "Applying the Delta Method in Metric Analytics: A Practical Guide with Novel Ideas", KDD):

      var(r) = (s_x² - 2 r s_xm + r² s_m²) / (n m̄²),   m̄ = Σm / n,

  with the unbiased sample (co)variances ``s_x² = (Σx² - (Σx)²/n) / (n - 1)``,
  ``s_xm = (Σxm - Σx Σm / n) / (n - 1)``, ``s_m² = (Σm² - (Σm)²/n) / (n - 1)``. Requests of one
  unit are correlated (the same user); treating them as independent understates the variance,
  which this formula does not. With one request per unit (``m_i == 1``) it is the per-unit mean
  and ``s_x² / n``, the unequal-variance z-test's variance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Relative slack for the Cauchy-Schwarz checks: sums computed in floating point by another
# process may overshoot the exact bound by a few ulps.
_REL_TOL = 1e-9


def _check_count(cls: str, name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{cls}.{name} must be an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{cls}.{name} must be >= 0, got {value}")
    return value


def _check_finite(cls: str, name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{cls}.{name} must be a number, got {type(value).__name__}")
    if not math.isfinite(value):
        raise ValueError(f"{cls}.{name} must be finite, got {value}")
    return float(value)


def _at_most(lhs: float, rhs: float) -> bool:
    """``lhs <= rhs`` up to the relative floating-point slack."""
    return lhs <= rhs + _REL_TOL * max(abs(lhs), abs(rhs), 1.0)


@dataclass(frozen=True, slots=True)
class BinaryStats:
    """``units`` randomized units of one arm, ``successes`` of them converted."""

    units: int
    successes: int

    def __post_init__(self) -> None:
        _check_count("BinaryStats", "units", self.units)
        _check_count("BinaryStats", "successes", self.successes)
        if self.successes > self.units:
            raise ValueError(
                f"BinaryStats.successes ({self.successes}) exceeds units ({self.units})"
            )

    def __add__(self, other: BinaryStats) -> BinaryStats:
        """Pool two disjoint sets of units."""
        if not isinstance(other, BinaryStats):
            return NotImplemented
        return BinaryStats(self.units + other.units, self.successes + other.successes)

    @property
    def requests(self) -> int:
        """One observation per unit."""
        return self.units


@dataclass(frozen=True, slots=True)
class RatioStats:
    """Sums over the ``units`` of one arm: ``x`` the metric summed over a unit's requests, ``m``
    the unit's request count (at least 1)."""

    units: int
    sum_x: float
    sum_x2: float
    sum_m: float
    sum_m2: float
    sum_xm: float

    def __post_init__(self) -> None:
        n = _check_count("RatioStats", "units", self.units)
        sx = _check_finite("RatioStats", "sum_x", self.sum_x)
        sx2 = _check_finite("RatioStats", "sum_x2", self.sum_x2)
        sm = _check_finite("RatioStats", "sum_m", self.sum_m)
        sm2 = _check_finite("RatioStats", "sum_m2", self.sum_m2)
        sxm = _check_finite("RatioStats", "sum_xm", self.sum_xm)
        for name, value in (("sum_x2", sx2), ("sum_m", sm), ("sum_m2", sm2)):
            if value < 0:
                raise ValueError(f"RatioStats.{name} must be >= 0, got {value}")
        if n == 0:
            if any((sx, sx2, sm, sm2, sxm)):
                raise ValueError("RatioStats with 0 units must have all sums 0")
            return
        if not _at_most(n, sm):
            raise ValueError(
                f"RatioStats.sum_m ({sm}) is below units ({n}): every unit has >= 1 request"
            )
        if not _at_most(sm, sm2):
            raise ValueError(
                f"RatioStats.sum_m2 ({sm2}) is below sum_m ({sm}): request counts are >= 1"
            )
        if not _at_most(sx * sx, n * sx2):
            raise ValueError(
                f"RatioStats: sum_x**2 ({sx * sx}) exceeds units*sum_x2 ({n * sx2}) "
                "(Cauchy-Schwarz): the sums do not come from the same units"
            )
        if not _at_most(sm * sm, n * sm2):
            raise ValueError(
                f"RatioStats: sum_m**2 ({sm * sm}) exceeds units*sum_m2 ({n * sm2}) "
                "(Cauchy-Schwarz): the sums do not come from the same units"
            )
        if not _at_most(sxm * sxm, sx2 * sm2):
            raise ValueError(
                f"RatioStats: sum_xm**2 ({sxm * sxm}) exceeds sum_x2*sum_m2 ({sx2 * sm2}) "
                "(Cauchy-Schwarz): the sums do not come from the same units"
            )

    def __add__(self, other: RatioStats) -> RatioStats:
        """Pool two disjoint sets of units."""
        if not isinstance(other, RatioStats):
            return NotImplemented
        return RatioStats(
            self.units + other.units,
            self.sum_x + other.sum_x,
            self.sum_x2 + other.sum_x2,
            self.sum_m + other.sum_m,
            self.sum_m2 + other.sum_m2,
            self.sum_xm + other.sum_xm,
        )

    @property
    def requests(self) -> float:
        """The arm's request count, ``Σm``."""
        return self.sum_m


Stats = BinaryStats | RatioStats


@dataclass(frozen=True, slots=True)
class Moments:
    """An arm's mean and the variance of that mean (``nan`` when undefined)."""

    units: int
    mean: float
    var_mean: float


def moments(stats: Stats) -> Moments:
    """Mean and variance of the mean of one arm (module docstring for the formulas).

    ``mean`` is ``nan`` without units; ``var_mean`` is ``nan`` below 2 units for a ratio metric
    (no sample variance) and without units for a binary one. A variance that rounding makes
    slightly negative is clamped to 0.
    """
    n = stats.units
    if isinstance(stats, BinaryStats):
        if n == 0:
            return Moments(0, math.nan, math.nan)
        p = stats.successes / n
        return Moments(n, p, p * (1.0 - p) / n)
    if n == 0:
        return Moments(0, math.nan, math.nan)
    r = stats.sum_x / stats.sum_m
    if n < 2:
        return Moments(n, r, math.nan)
    s_xx = (stats.sum_x2 - stats.sum_x * stats.sum_x / n) / (n - 1)
    s_mm = (stats.sum_m2 - stats.sum_m * stats.sum_m / n) / (n - 1)
    s_xm = (stats.sum_xm - stats.sum_x * stats.sum_m / n) / (n - 1)
    m_bar = stats.sum_m / n
    var = (s_xx - 2.0 * r * s_xm + r * r * s_mm) / (n * m_bar * m_bar)
    return Moments(n, r, max(var, 0.0))


def ratio_stats_of(x: list[float], m: list[float] | None = None) -> RatioStats:
    """``RatioStats`` of per-unit values (``m`` defaults to one request per unit): what a
    gateway accumulates, for tests and examples."""
    counts = m if m is not None else [1.0] * len(x)
    if len(counts) != len(x):
        raise ValueError("x and m must have one entry per unit")
    return RatioStats(
        units=len(x),
        sum_x=math.fsum(x),
        sum_x2=math.fsum(v * v for v in x),
        sum_m=math.fsum(counts),
        sum_m2=math.fsum(c * c for c in counts),
        sum_xm=math.fsum(v * c for v, c in zip(x, counts, strict=True)),
    )
