"""One metric, candidate (treatment) against stable (control): estimates, intervals, decision.

For each arm ``stats.moments`` gives the mean ``μ`` and the variance of that mean ``V``
(binary: ``p (1 - p) / n``; ratio: the delta method). Then

* absolute difference ``Δ = μ_t - μ_c``, ``V_Δ = V_t + V_c`` (unequal variances);
* relative difference ``rel = μ_t / μ_c - 1``, by the delta method for a ratio of independent
  means ``V_rel = V_t / μ_c² + μ_t² V_c / μ_c⁴`` (Deng, Knoblich & Lu 2018, §3.3);
* ``fixed``: the fixed-horizon two-sided z-test and interval, ``z = Δ / sqrt(V_Δ)``,
  ``p = 2 (1 - Φ(|z|))``, ``Δ ± z_{1-alpha/2} sqrt(V_Δ)``: statsmodels' unpooled two-proportion
  Wald test for a binary metric, its unequal-variance ``ztest`` / ``zconfint_diff`` for per-unit
  means. Valid only when looked at once, at the planned size; reported for reference;
* ``sequential``: the always-valid mSPRT interval and p-value (``sequential``), valid at every
  look; the decision uses it only. ``relative_fixed`` and ``relative_sequential`` are the same
  intervals for ``rel``.

Decisions (``direction`` says which sign of ``Δ`` is good):

* primary: ``better`` when the sequential interval at ``alpha`` excludes 0 on the good side,
  ``worse`` when it excludes 0 on the bad side, else ``inconclusive``;
* guardrail (one-sided at ``alpha``: the bounds of the two-sided interval at ``2 alpha``):
  ``worse`` when the good-side bound is on the bad side of 0 (the candidate is surely worse);
  ``within_margin`` when the bad-side bound of the relative interval is inside the margin
  (``> -margin`` for an ``increase`` metric, ``< +margin`` for a ``decrease`` one); else
  ``inconclusive``. Its sequential ``p_value`` is the one-sided always-valid p-value of "the
  candidate is worse"
  (half the two-sided one when ``Δ`` is on the bad side, else 1).

Stable reason codes: ``candidate_better``, ``candidate_worse``, ``ci_includes_zero``,
``within_margin``, ``margin_not_excluded``, ``no_relative_estimate`` (control mean 0),
``insufficient_data`` (fewer than 2 units in an arm, or no variance), ``srm`` (set by
``readout.analyze``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from registry.experiments.design import Direction, Kind, MetricSpec, Role
from registry.experiments.distributions import norm_ppf, two_sided_p
from registry.experiments.sequential import Interval, effective_units, interval, mixture_ratio
from registry.experiments.stats import BinaryStats, Moments, RatioStats, Stats, moments

Decision = Literal["better", "worse", "within_margin", "inconclusive"]
CONTROL, TREATMENT = "stable", "candidate"


UNBOUNDED = Interval(-math.inf, math.inf, 1.0)


@dataclass(frozen=True, slots=True)
class MetricResult:
    """The comparison of one metric; ``None`` where a figure is undefined (no units, control
    mean 0)."""

    name: str
    role: Role
    kind: Kind
    direction: Direction
    control_mean: float | None
    treatment_mean: float | None
    abs_diff: float | None
    rel_diff: float | None
    units: dict[str, int]
    requests: dict[str, float]
    fixed: Interval
    sequential: Interval
    relative_fixed: Interval | None
    relative_sequential: Interval | None
    alpha: float
    information: float  # effective units now / at the planned size (tunes the mixture)
    decision: Decision
    reason: str


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _fixed(estimate: float, var: float, alpha: float) -> Interval:
    if not (var > 0 and math.isfinite(var) and math.isfinite(estimate)):
        return UNBOUNDED
    se = math.sqrt(var)
    half = norm_ppf(1.0 - alpha / 2.0) * se
    return Interval(estimate - half, estimate + half, two_sided_p(estimate / se))


def _relative(mc: Moments, mt: Moments) -> tuple[float, float] | None:
    """``(rel, V_rel)``, or None when the control mean is 0 or undefined."""
    if not (math.isfinite(mc.mean) and math.isfinite(mt.mean)) or mc.mean == 0:
        return None
    rel = mt.mean / mc.mean - 1.0
    var = mt.var_mean / mc.mean**2 + mt.mean**2 * mc.var_mean / mc.mean**4
    return rel, var


def _check_kinds(spec: MetricSpec, control: Stats, treatment: Stats) -> None:
    expected = BinaryStats if spec.kind == "binary" else RatioStats
    for arm, stats in ((CONTROL, control), (TREATMENT, treatment)):
        if not isinstance(stats, expected):
            raise ValueError(
                f"metric {spec.name!r} is {spec.kind}: the {arm} arm needs {expected.__name__}, "
                f"got {type(stats).__name__}"
            )


def _primary_decision(spec: MetricSpec, seq: Interval) -> tuple[Decision, str]:
    good = 1.0 if spec.direction == "increase" else -1.0
    if seq.low > 0 or seq.high < 0:
        side = 1.0 if seq.low > 0 else -1.0
        return ("better", "candidate_better") if side == good else ("worse", "candidate_worse")
    return "inconclusive", "ci_includes_zero"


def _guardrail_decision(
    spec: MetricSpec, seq: Interval, rel_seq: Interval | None
) -> tuple[Decision, str]:
    increase = spec.direction == "increase"
    if (seq.high < 0) if increase else (seq.low > 0):
        return "worse", "candidate_worse"
    if rel_seq is None:
        return "inconclusive", "no_relative_estimate"
    margin = spec.margin or 0.0
    if (rel_seq.low > -margin) if increase else (rel_seq.high < margin):
        return "within_margin", "within_margin"
    return "inconclusive", "margin_not_excluded"


def _one_sided(spec: MetricSpec, estimate: float, seq: Interval) -> Interval:
    """A guardrail's sequential interval with the one-sided p-value of "candidate worse"."""
    bad_side = estimate < 0 if spec.direction == "increase" else estimate > 0
    return Interval(seq.low, seq.high, seq.p_value / 2.0 if bad_side else 1.0)


def compare(
    spec: MetricSpec,
    control: Stats,
    treatment: Stats,
    *,
    alpha: float,
    planned_units_per_arm: int,
    candidate_share: float = 0.5,
) -> MetricResult:
    """Compare ``treatment`` (candidate) with ``control`` (stable) on ``spec`` at level
    ``alpha`` (already corrected for multiplicity by the caller). ``planned_units_per_arm``
    (candidate units, as ``design.sample_size_per_arm`` counts them) and ``candidate_share``
    tune the sequential test's mixture (``sequential``)."""
    _check_kinds(spec, control, treatment)
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must be in (0, 0.5), got {alpha}")
    if planned_units_per_arm < 2:
        raise ValueError(f"planned_units_per_arm must be >= 2, got {planned_units_per_arm}")
    if not 0 < candidate_share < 1:
        raise ValueError(f"candidate_share must be in (0, 1), got {candidate_share}")
    mc, mt = moments(control), moments(treatment)
    diff = mt.mean - mc.mean
    var = mt.var_mean + mc.var_mean
    rel = _relative(mc, mt)
    cs_level = alpha if spec.role == "primary" else 2.0 * alpha
    information = effective_units(mc.units, mt.units) / (
        planned_units_per_arm * (1.0 - candidate_share)
    )
    a = mixture_ratio(cs_level, information, 1.0)
    enough = min(mc.units, mt.units) >= 2 and var > 0 and math.isfinite(var)
    fixed = _fixed(diff, var, alpha) if enough else UNBOUNDED
    seq = interval(diff, var, cs_level, a) if enough else UNBOUNDED
    rel_fixed = rel_seq = None
    if rel is not None and enough:
        rel_fixed = _fixed(rel[0], rel[1], alpha)
        rel_seq = interval(rel[0], rel[1], cs_level, a)
    decision: Decision
    if not enough:
        decision, reason = "inconclusive", "insufficient_data"
    elif spec.role == "primary":
        decision, reason = _primary_decision(spec, seq)
    else:
        decision, reason = _guardrail_decision(spec, seq, rel_seq)
        seq = _one_sided(spec, diff, seq)
    return MetricResult(
        name=spec.name,
        role=spec.role,
        kind=spec.kind,
        direction=spec.direction,
        control_mean=_finite(mc.mean),
        treatment_mean=_finite(mt.mean),
        abs_diff=_finite(diff),
        rel_diff=rel[0] if rel is not None else None,
        units={CONTROL: control.units, TREATMENT: treatment.units},
        requests={CONTROL: float(control.requests), TREATMENT: float(treatment.requests)},
        fixed=fixed,
        sequential=seq,
        relative_fixed=rel_fixed,
        relative_sequential=rel_seq,
        alpha=alpha,
        information=information,
        decision=decision,
        reason=reason,
    )
