"""An experiment's readout: every metric compared, the SRM check, the overall decision.

Multiplicity: each primary metric is tested at ``alpha / n_primary`` (Bonferroni). The tests are
always valid (``sequential``), so the union bound holds over metrics *and* looks together: the
chance that any primary metric is ever called better or worse when none differs is at most
``alpha``. Guardrails are each tested one-sided at ``alpha`` (a false "worse" only rolls back).

Overall decision, in this order:

1. ``worse`` (reason ``guardrail_worse`` or ``primary_worse``) when any metric is ``worse``:
   roll back, whatever the traffic split says;
2. ``inconclusive`` (reason ``srm``) when the sample ratio mismatch check is flagged: the arms
   are not comparable, and every metric's ``better`` becomes ``inconclusive`` with reason
   ``srm`` as well;
3. ``better`` (reason ``all_clear``) when every primary metric is ``better`` and every
   guardrail ``within_margin``: ship;
4. else ``inconclusive`` (reason ``primary_inconclusive`` or ``guardrail_inconclusive``): keep
   collecting.

Planned size: ``design.planned_units_per_arm`` tunes the sequential test. Without it, the size is
``sample_size_per_arm`` of each primary metric with the control arm's current mean and per-unit
standard deviation as the baseline (the largest over the primary metrics; ``planned_from``
``observed_control``), or, when that is undefined (no primary metric, control mean 0, fewer than
2 units), the candidate's current units (``current_units``). Any choice keeps the test valid: it
only moves where the test is most powerful.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from registry.experiments.compare import CONTROL, TREATMENT, MetricResult, compare
from registry.experiments.design import ExperimentDesign, sample_size_per_arm
from registry.experiments.srm import SrmResult, srm_check
from registry.experiments.stats import Stats, moments

Overall = Literal["better", "worse", "inconclusive"]
PlannedFrom = Literal["design", "observed_control", "current_units"]
MULTIPLICITY = "bonferroni over the primary metrics' always-valid tests"


@dataclass(frozen=True, slots=True)
class Readout:
    """The analysis of one look at an experiment, with its inputs (so it can be replayed)."""

    design: ExperimentDesign
    arms: dict[str, dict[str, Stats]]
    metrics: tuple[MetricResult, ...]
    srm: SrmResult
    srm_units: dict[str, int]
    srm_threshold: float
    primary_alpha: float
    planned_units_per_arm: int
    planned_from: PlannedFrom
    decision: Overall
    reason: str

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (``codec.readout_to_dict``)."""
        from registry.experiments.codec import readout_to_dict

        return readout_to_dict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Readout:
        """The readout ``to_dict`` wrote (``codec.readout_from_dict``)."""
        from registry.experiments.codec import readout_from_dict

        return readout_from_dict(data)


def _check_arms(design: ExperimentDesign, arms: Mapping[str, Mapping[str, Stats]]) -> None:
    if set(arms) != {CONTROL, TREATMENT}:
        raise ValueError(f"arms must be exactly {CONTROL!r} and {TREATMENT!r}, got {sorted(arms)}")
    wanted = {m.name for m in design.metrics}
    for arm, metrics in arms.items():
        if set(metrics) != wanted:
            raise ValueError(
                f"arm {arm!r} has metrics {sorted(metrics)}, the design has {sorted(wanted)}"
            )


def _planned(
    design: ExperimentDesign, arms: Mapping[str, Mapping[str, Stats]]
) -> tuple[int, PlannedFrom]:
    if design.planned_units_per_arm is not None:
        return design.planned_units_per_arm, "design"
    sizes = []
    for spec in design.primary:
        mc = moments(arms[CONTROL][spec.name])
        if mc.units < 2 or not (math.isfinite(mc.mean) and mc.mean != 0):
            continue
        sd = math.sqrt(mc.var_mean * mc.units)
        if not (math.isfinite(sd) and sd > 0):
            continue
        sizes.append(
            sample_size_per_arm(
                spec,
                baseline_mean=mc.mean,
                baseline_sd=sd,
                alpha=design.alpha,
                power=design.power,
                candidate_share=design.candidate_share,
                n_primary=len(design.primary),
            )
        )
    if sizes:
        return max(sizes), "observed_control"
    first = design.metrics[0].name
    return max(2, arms[TREATMENT][first].units), "current_units"


def _overall(results: tuple[MetricResult, ...], srm: SrmResult) -> tuple[Overall, str]:
    for role in ("guardrail", "primary"):
        if any(r.decision == "worse" and r.role == role for r in results):
            return "worse", f"{role}_worse"
    if srm.flagged:
        return "inconclusive", "srm"
    if not all(r.decision == "better" for r in results if r.role == "primary"):
        return "inconclusive", "primary_inconclusive"
    if not all(r.decision == "within_margin" for r in results if r.role == "guardrail"):
        return "inconclusive", "guardrail_inconclusive"
    return "better", "all_clear"


def analyze(
    design: ExperimentDesign,
    arms: Mapping[str, Mapping[str, Stats]],
    *,
    units: Mapping[str, int] | None = None,
    srm_threshold: float = 0.001,
) -> Readout:
    """Compare every metric of ``design`` between ``arms["stable"]`` and ``arms["candidate"]``.

    The SRM check counts ``units`` (arm -> randomized units) when given, else the units of the
    design's first metric.
    """
    _check_arms(design, arms)
    planned, planned_from = _planned(design, arms)
    first = design.metrics[0].name
    counts = units if units is not None else {arm: arms[arm][first].units for arm in arms}
    share = design.candidate_share
    srm = srm_check(counts, {CONTROL: 1.0 - share, TREATMENT: share}, srm_threshold)
    results = []
    for spec in design.metrics:
        result = compare(
            spec,
            arms[CONTROL][spec.name],
            arms[TREATMENT][spec.name],
            alpha=design.primary_alpha if spec.role == "primary" else design.alpha,
            planned_units_per_arm=planned,
            candidate_share=share,
        )
        if srm.flagged and result.decision == "better":
            result = replace(result, decision="inconclusive", reason="srm")
        results.append(result)
    decision, reason = _overall(tuple(results), srm)
    return Readout(
        design=design,
        arms={arm: dict(arms[arm]) for arm in (CONTROL, TREATMENT)},
        metrics=tuple(results),
        srm=srm,
        srm_units=dict(counts),
        srm_threshold=srm_threshold,
        primary_alpha=design.primary_alpha,
        planned_units_per_arm=planned,
        planned_from=planned_from,
        decision=decision,
        reason=reason,
    )


def replay(data: Mapping[str, Any]) -> Readout:
    """Recompute a recorded readout from the inputs it recorded (its design and arms)."""
    recorded = Readout.from_dict(data)
    return analyze(
        recorded.design,
        recorded.arms,
        units=recorded.srm_units,
        srm_threshold=recorded.srm_threshold,
    )
