"""What an experiment measures and how large it must be.

Sample size (units of the candidate arm; the stable arm gets ``n (1 - s) / s`` for a candidate
share ``s``). With the effect ``δ = mde · |baseline_mean|`` (a primary metric; a guardrail uses
its ``margin``), the standardized effect ``d = δ / baseline_sd`` and ``n_eff = n (1 - s)`` (the
effective units ``n_c n_t / (n_c + n_t)``), the test statistic at the planned size is normal with
mean ``d sqrt(n_eff)``; the size is the smallest ``n`` with

* primary (two-sided): ``Φ(d sqrt(n_eff) - k) + Φ(-d sqrt(n_eff) - k) ≥ power``;
* guardrail (one-sided, showing the candidate within its margin when it is no worse):
  ``Φ(d sqrt(n_eff) - k) ≥ power``;

where the critical value ``k`` is

* fixed horizon: ``z_{1-alpha/2}`` (two-sided) or ``z_{1-alpha}`` (one-sided): the classic z-test
  size, equal to statsmodels' ``NormalIndPower().solve_power`` (``ratio = (1 - s) / s``);
* sequential: the mSPRT boundary at the planned size, ``sqrt((1 + 1/c)(2 log(1/alpha) +
  log(1 + c)))`` (``sequential.boundary_z`` with ``a = c``; for the one-sided guardrail bound
  the two-sided boundary at ``2 alpha``). Power is computed at the last look alone, so any earlier
  looks only add to it.

``alpha`` of a primary metric is ``alpha / n_primary`` (Bonferroni over the primary metrics).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from registry.experiments.distributions import norm_cdf, norm_ppf
from registry.experiments.sequential import boundary_z, mixture_constant

Kind = Literal["binary", "ratio"]
Role = Literal["primary", "guardrail"]
Direction = Literal["increase", "decrease"]


def _in_open_unit(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be in (0, 1), got {value!r}")


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """One metric of an experiment. ``mde`` (primary) and ``margin`` (guardrail) are relative
    to the control mean: ``mde=0.02`` is a 2 % change, ``margin=0.01`` lets the candidate be up
    to 1 % worse."""

    name: str
    kind: Kind
    role: Role
    direction: Direction
    mde: float | None = None
    margin: float | None = None

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("MetricSpec.name must not be empty")
        if self.kind not in ("binary", "ratio"):
            raise ValueError(f"MetricSpec.kind must be 'binary' or 'ratio', got {self.kind!r}")
        if self.role not in ("primary", "guardrail"):
            raise ValueError(f"MetricSpec.role must be 'primary' or 'guardrail', got {self.role!r}")
        if self.direction not in ("increase", "decrease"):
            raise ValueError(
                f"MetricSpec.direction must be 'increase' or 'decrease', got {self.direction!r}"
            )
        if self.role == "primary" and not (self.mde is not None and self.mde > 0):
            raise ValueError(f"primary metric {self.name!r} needs an mde > 0")
        if self.role == "guardrail" and not (self.margin is not None and self.margin >= 0):
            raise ValueError(f"guardrail metric {self.name!r} needs a margin >= 0")
        for name, value in (("mde", self.mde), ("margin", self.margin)):
            if value is not None and not math.isfinite(value):
                raise ValueError(f"MetricSpec.{name} must be finite, got {value}")


@dataclass(frozen=True, slots=True)
class ExperimentDesign:
    """The metrics, error rates and traffic split of one experiment."""

    metrics: tuple[MetricSpec, ...]
    alpha: float = 0.05
    power: float = 0.8
    candidate_share: float = 0.5
    planned_units_per_arm: int | None = None

    def __post_init__(self) -> None:
        if not self.metrics:
            raise ValueError("ExperimentDesign needs at least one metric")
        names = [m.name for m in self.metrics]
        if len(set(names)) != len(names):
            raise ValueError(f"ExperimentDesign metric names must be unique, got {names}")
        _in_open_unit("alpha", self.alpha)
        _in_open_unit("power", self.power)
        _in_open_unit("candidate_share", self.candidate_share)
        planned = self.planned_units_per_arm
        if planned is not None and (isinstance(planned, bool) or planned < 2):
            raise ValueError(f"planned_units_per_arm must be >= 2, got {planned}")

    @property
    def primary(self) -> tuple[MetricSpec, ...]:
        return tuple(m for m in self.metrics if m.role == "primary")

    @property
    def primary_alpha(self) -> float:
        """``alpha`` of each primary metric: Bonferroni over the primary metrics."""
        return self.alpha / max(1, len(self.primary))


def _solve_standardized_effect(crit: float, power: float, two_sided: bool) -> float:
    """The ``d sqrt(n_eff)`` at which the test at critical value ``crit`` has ``power``
    (bisection on a monotone function: exact to double precision)."""

    def achieved(x: float) -> float:
        return norm_cdf(x - crit) + (norm_cdf(-x - crit) if two_sided else 0.0)

    if achieved(0.0) >= power:
        raise ValueError(f"power {power} is not above the test's size; nothing to plan")
    low, high = 0.0, crit + norm_ppf(power) + 10.0
    for _ in range(200):
        mid = 0.5 * (low + high)
        if achieved(mid) < power:
            low = mid
        else:
            high = mid
    return high


def sample_size_per_arm(
    spec: MetricSpec,
    *,
    baseline_mean: float,
    baseline_sd: float,
    alpha: float,
    power: float,
    candidate_share: float = 0.5,
    sequential: bool = True,
    n_primary: int = 1,
) -> int:
    """Units of the candidate arm for ``spec`` to reach ``power`` (module docstring).

    ``baseline_sd`` is the per-unit standard deviation of the metric in the control arm (for a
    binary metric ``sqrt(p (1 - p))``; for a ratio metric the linearized one,
    ``sqrt(n · var(mean))``).
    """
    _in_open_unit("alpha", alpha)
    _in_open_unit("power", power)
    _in_open_unit("candidate_share", candidate_share)
    if n_primary < 1:
        raise ValueError(f"n_primary must be >= 1, got {n_primary}")
    if not (math.isfinite(baseline_mean) and baseline_mean != 0):
        raise ValueError(f"baseline_mean must be finite and non-zero, got {baseline_mean}")
    if not (math.isfinite(baseline_sd) and baseline_sd > 0):
        raise ValueError(f"baseline_sd must be finite and > 0, got {baseline_sd}")
    two_sided = spec.role == "primary"
    relative = spec.mde if two_sided else spec.margin
    if relative is None or relative <= 0:
        raise ValueError(f"metric {spec.name!r} has no effect to plan for (mde or margin > 0)")
    level = alpha / n_primary if two_sided else alpha
    if sequential:
        cs_level = level if two_sided else 2 * level
        crit = boundary_z(cs_level, mixture_constant(cs_level))
    else:
        crit = norm_ppf(1 - level / 2) if two_sided else norm_ppf(1 - level)
    effect = relative * abs(baseline_mean) / baseline_sd
    x = _solve_standardized_effect(crit, power, two_sided)
    n_eff = (x / effect) ** 2
    return max(2, math.ceil(n_eff / (1.0 - candidate_share)))
