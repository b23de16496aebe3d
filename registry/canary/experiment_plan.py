"""The ``experiment:`` section of a rollout plan: what an A/B test between the stable and the
candidate version measures, and how sure it must be.

A plan with ``mode: experiment`` holds one fixed split (its single step: the candidate's share
and the minimum duration) with no automatic progression: the controller rolls back only when a
guardrail says the candidate is surely worse (or an absolute cap fails), pauses on a sample-ratio
mismatch, and otherwise holds until a person ships (``deployments rollout --to-share 100``) or
drops (``deployments rollback``) the candidate from the readout. A ``mode: rollout`` plan may
carry an ``experiment:`` section too: its guardrails join the step's analysis rules and its
primary metrics are read out.

Shape (every key but ``metrics`` optional)::

    experiment:
      alpha: 0.05            # two-sided, split over the primary metrics (Bonferroni)
      power: 0.8
      units_per_arm: 20000   # the planned sample size; default: computed from the baselines
      metrics:
        - {name: thumbs_up, kind: binary, role: primary, direction: increase,
           mde: 0.02, baseline_mean: 0.30}
        - {name: latency_ms, kind: ratio, role: guardrail, direction: decrease, margin: 0.05}

``mde`` and ``margin`` are relative to the stable arm's mean (0.02 = 2 %). A primary metric needs
``baseline_mean`` (and ``baseline_sd`` for a ratio metric: the per-unit standard deviation of the
metric) unless ``units_per_arm`` is given; the plan's sample size per arm is then the largest any
primary metric needs (``registry.experiments.sample_size_per_arm``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Literal

from registry.canary import _checks as c
from registry.experiments import MetricSpec, sample_size_per_arm

Mode = Literal["rollout", "experiment"]
METRIC_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
MAX_METRICS = 16
_KEYS = frozenset({"alpha", "power", "units_per_arm", "metrics"})
_METRIC_KEYS = frozenset(
    {"name", "kind", "role", "direction", "mde", "margin", "baseline_mean", "baseline_sd"}
)


@dataclass(frozen=True, slots=True)
class Baseline:
    mean: float
    sd: float | None = None


@dataclass(frozen=True, slots=True)
class ExperimentPlan:
    metrics: tuple[MetricSpec, ...]
    alpha: float = 0.05
    power: float = 0.8
    units_per_arm: int | None = None
    baselines: tuple[tuple[str, Baseline], ...] = ()

    @property
    def primary(self) -> tuple[MetricSpec, ...]:
        return tuple(m for m in self.metrics if m.role == "primary")

    @property
    def guardrails(self) -> tuple[MetricSpec, ...]:
        return tuple(m for m in self.metrics if m.role == "guardrail")

    def planned_units_per_arm(self, candidate_share: float = 0.5) -> int | None:
        """The sample size per arm the plan needs: ``units_per_arm`` when given, else the
        largest any primary metric needs at its MDE (``None`` without primary metrics)."""
        if self.units_per_arm is not None:
            return self.units_per_arm
        baselines = dict(self.baselines)
        sizes = []
        for spec in self.primary:
            base = baselines[spec.name]
            sd = base.sd if base.sd is not None else math.sqrt(base.mean * (1 - base.mean))
            sizes.append(
                sample_size_per_arm(
                    spec,
                    baseline_mean=base.mean,
                    baseline_sd=sd,
                    alpha=self.alpha,
                    power=self.power,
                    candidate_share=candidate_share,
                    n_primary=len(self.primary),
                )
            )
        return max(sizes) if sizes else None

    def to_dict(self) -> dict[str, Any]:
        """The section in ``rollout.yaml``'s shape (what ``parse_experiment`` reads back)."""
        baselines = dict(self.baselines)
        metrics = []
        for m in self.metrics:
            out: dict[str, Any] = {
                "name": m.name,
                "kind": m.kind,
                "role": m.role,
                "direction": m.direction,
            }
            if m.mde is not None:
                out["mde"] = m.mde
            if m.margin is not None:
                out["margin"] = m.margin
            if m.name in baselines:
                out["baseline_mean"] = baselines[m.name].mean
                if baselines[m.name].sd is not None:
                    out["baseline_sd"] = baselines[m.name].sd
            metrics.append(out)
        doc: dict[str, Any] = {"alpha": self.alpha, "power": self.power, "metrics": metrics}
        if self.units_per_arm is not None:
            doc["units_per_arm"] = self.units_per_arm
        return doc


def _fraction(raw: dict[str, Any], key: str, where: str, errs: c.Errors, default: float,
              low: float, high: float) -> float:  # fmt: skip
    value = c.number(raw.get(key, default), f"{where}.{key}", errs)
    if not low < value <= high:
        errs.append(f"{where}.{key}: must be > {low:g} and <= {high:g}")
        return default
    return value


def _metric(value: object, where: str, errs: c.Errors) -> tuple[MetricSpec, Baseline | None]:
    raw = c.mapping(value, where, _METRIC_KEYS, errs)
    name = c.required(raw, "name", where, errs)
    if not isinstance(name, str) or not METRIC_NAME.fullmatch(name):
        errs.append(f"{where}.name: lower-case letters, digits, '_', '.', '-' (1..64)")
        name = "metric"
    kind = c.choice(
        c.required(raw, "kind", where, errs), f"{where}.kind", ("binary", "ratio"), errs
    )
    role = c.choice(
        c.required(raw, "role", where, errs), f"{where}.role", ("primary", "guardrail"), errs
    )
    direction = c.choice(
        c.required(raw, "direction", where, errs),
        f"{where}.direction",
        ("increase", "decrease"),
        errs,
    )
    mde = margin = None
    if role == "primary":
        mde = c.number(c.required(raw, "mde", where, errs), f"{where}.mde", errs, positive=True)
        if "margin" in raw:
            errs.append(f"{where}.margin: only for a guardrail (a primary metric has mde)")
    else:
        margin = c.number(c.required(raw, "margin", where, errs), f"{where}.margin", errs)
        if "mde" in raw:
            errs.append(f"{where}.mde: only for a primary metric (a guardrail has margin)")
    baseline = None
    if "baseline_mean" in raw:
        mean = c.number(raw["baseline_mean"], f"{where}.baseline_mean", errs)
        if kind == "binary" and not 0 < mean < 1:
            errs.append(f"{where}.baseline_mean: a binary metric's rate is > 0 and < 1")
        sd = None
        if "baseline_sd" in raw:
            sd = c.number(raw["baseline_sd"], f"{where}.baseline_sd", errs, positive=True)
        elif kind == "ratio":
            errs.append(f"{where}: a ratio metric's baseline needs baseline_sd")
        if kind == "ratio" and mean == 0:
            errs.append(f"{where}.baseline_mean: must be > 0 (the MDE is relative to it)")
        baseline = Baseline(mean, sd)
    elif "baseline_sd" in raw:
        errs.append(f"{where}.baseline_sd: only with baseline_mean")
    primary = role == "primary"
    spec = MetricSpec(
        name=name,
        kind="binary" if kind == "binary" else "ratio",
        role="primary" if primary else "guardrail",
        direction="increase" if direction == "increase" else "decrease",
        # Stand-ins where a value was refused above (the error is listed already).
        mde=(mde or 1.0) if primary else None,
        margin=None if primary else (margin or 0.0),
    )
    return spec, baseline


def parse_experiment(value: object, where: str, errs: c.Errors, *, mode: Mode) -> ExperimentPlan:
    """The ``experiment`` section; problems are appended to ``errs``."""
    raw = c.mapping(value, where, _KEYS, errs)
    alpha = _fraction(raw, "alpha", where, errs, 0.05, 0.0, 0.5)
    power = _fraction(raw, "power", where, errs, 0.8, 0.5, 0.999)
    units = None
    if "units_per_arm" in raw:
        units = c.integer(raw["units_per_arm"], f"{where}.units_per_arm", errs, minimum=2)
    items = c.listing(c.required(raw, "metrics", where, errs) or [], f"{where}.metrics", errs)
    if "metrics" in raw and not 1 <= len(items) <= MAX_METRICS:
        errs.append(f"{where}.metrics: 1..{MAX_METRICS} metrics")
    parsed = [_metric(m, f"{where}.metrics[{i}]", errs) for i, m in enumerate(items)]
    names = [spec.name for spec, _ in parsed]
    errs.extend(
        f"{where}.metrics: {n!r} named twice" for n in sorted(set(names)) if names.count(n) > 1
    )
    baselines = tuple((spec.name, b) for spec, b in parsed if b is not None)
    known = {name for name, _ in baselines}
    primary = [spec for spec, _ in parsed if spec.role == "primary"]
    if mode == "experiment" and parsed and not primary:
        errs.append(f"{where}.metrics: an experiment needs a primary metric")
    if units is None:
        errs.extend(
            f"{where}.metrics: {spec.name!r} needs baseline_mean (or give units_per_arm)"
            for spec in primary
            if spec.name not in known
        )
    return ExperimentPlan(tuple(s for s, _ in parsed), alpha, power, units, baselines)
