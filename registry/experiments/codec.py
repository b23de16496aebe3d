"""A readout as a JSON-safe dict (recorded as evidence) and back.

Shape (``version`` 1; every float finite or ``null``): ``design`` (the ``ExperimentDesign``
fields, ``metrics`` a list of ``MetricSpec`` dicts), ``arms`` (arm -> metric -> stats dict with
``type`` ``binary`` or ``ratio`` and the dataclass fields), ``metrics`` (one ``MetricResult``
dict each; an interval is ``{low, high, p_value}``, ``null`` bounds unbounded), ``srm``
(``chi2, df, p_value, flagged``), ``srm_units``, ``srm_threshold``, ``primary_alpha``,
``multiplicity``, ``planned_units_per_arm``, ``planned_from``, ``decision``, ``reason``.
Floats are written as Python's ``repr`` writes them, so ``json.loads(json.dumps(d))`` reads back
the same numbers and ``readout_from_dict(readout_to_dict(r)) == r``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from registry.experiments.compare import MetricResult
from registry.experiments.design import ExperimentDesign, MetricSpec
from registry.experiments.readout import MULTIPLICITY, Readout
from registry.experiments.sequential import Interval
from registry.experiments.srm import SrmResult
from registry.experiments.stats import BinaryStats, RatioStats, Stats

VERSION = 1


def _num(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _interval(value: Interval | None) -> dict[str, Any] | None:
    if value is None:
        return None
    return {"low": _num(value.low), "high": _num(value.high), "p_value": value.p_value}


def _interval_back(data: Mapping[str, Any] | None) -> Interval | None:
    if data is None:
        return None
    low, high = data["low"], data["high"]
    return Interval(
        -math.inf if low is None else float(low),
        math.inf if high is None else float(high),
        float(data["p_value"]),
    )


def stats_to_dict(stats: Stats) -> dict[str, Any]:
    if isinstance(stats, BinaryStats):
        return {"type": "binary", "units": stats.units, "successes": stats.successes}
    return {
        "type": "ratio",
        "units": stats.units,
        "sum_x": stats.sum_x,
        "sum_x2": stats.sum_x2,
        "sum_m": stats.sum_m,
        "sum_m2": stats.sum_m2,
        "sum_xm": stats.sum_xm,
    }


def stats_from_dict(data: Mapping[str, Any]) -> Stats:
    fields = {k: v for k, v in data.items() if k != "type"}
    if data.get("type") == "binary":
        return BinaryStats(**fields)
    if data.get("type") == "ratio":
        return RatioStats(**fields)
    raise ValueError(f"stats type must be 'binary' or 'ratio', got {data.get('type')!r}")


def design_to_dict(design: ExperimentDesign) -> dict[str, Any]:
    return {
        "metrics": [
            {
                "name": m.name,
                "kind": m.kind,
                "role": m.role,
                "direction": m.direction,
                "mde": m.mde,
                "margin": m.margin,
            }
            for m in design.metrics
        ],
        "alpha": design.alpha,
        "power": design.power,
        "candidate_share": design.candidate_share,
        "planned_units_per_arm": design.planned_units_per_arm,
    }


def design_from_dict(data: Mapping[str, Any]) -> ExperimentDesign:
    fields = dict(data)
    fields["metrics"] = tuple(MetricSpec(**m) for m in data["metrics"])
    return ExperimentDesign(**fields)


def _result_to_dict(r: MetricResult) -> dict[str, Any]:
    return {
        "name": r.name,
        "role": r.role,
        "kind": r.kind,
        "direction": r.direction,
        "control_mean": r.control_mean,
        "treatment_mean": r.treatment_mean,
        "abs_diff": r.abs_diff,
        "rel_diff": r.rel_diff,
        "units": dict(r.units),
        "requests": dict(r.requests),
        "fixed": _interval(r.fixed),
        "sequential": _interval(r.sequential),
        "relative_fixed": _interval(r.relative_fixed),
        "relative_sequential": _interval(r.relative_sequential),
        "alpha": r.alpha,
        "information": r.information,
        "decision": r.decision,
        "reason": r.reason,
    }


def _result_from_dict(data: Mapping[str, Any]) -> MetricResult:
    fields = dict(data)
    for key in ("fixed", "sequential", "relative_fixed", "relative_sequential"):
        fields[key] = _interval_back(data[key])
    fields["units"] = {k: int(v) for k, v in data["units"].items()}
    fields["requests"] = {k: float(v) for k, v in data["requests"].items()}
    return MetricResult(**fields)


def readout_to_dict(readout: Readout) -> dict[str, Any]:
    return {
        "version": VERSION,
        "design": design_to_dict(readout.design),
        "arms": {
            arm: {name: stats_to_dict(s) for name, s in metrics.items()}
            for arm, metrics in readout.arms.items()
        },
        "metrics": [_result_to_dict(r) for r in readout.metrics],
        "srm": {
            "chi2": readout.srm.chi2,
            "df": readout.srm.df,
            "p_value": readout.srm.p_value,
            "flagged": readout.srm.flagged,
        },
        "srm_units": dict(readout.srm_units),
        "srm_threshold": readout.srm_threshold,
        "primary_alpha": readout.primary_alpha,
        "multiplicity": MULTIPLICITY,
        "planned_units_per_arm": readout.planned_units_per_arm,
        "planned_from": readout.planned_from,
        "decision": readout.decision,
        "reason": readout.reason,
    }


def readout_from_dict(data: Mapping[str, Any]) -> Readout:
    if data.get("version") != VERSION:
        raise ValueError(f"readout version must be {VERSION}, got {data.get('version')!r}")
    return Readout(
        design=design_from_dict(data["design"]),
        arms={
            arm: {name: stats_from_dict(s) for name, s in metrics.items()}
            for arm, metrics in data["arms"].items()
        },
        metrics=tuple(_result_from_dict(r) for r in data["metrics"]),
        srm=SrmResult(**data["srm"]),
        srm_units={k: int(v) for k, v in data["srm_units"].items()},
        srm_threshold=float(data["srm_threshold"]),
        primary_alpha=float(data["primary_alpha"]),
        planned_units_per_arm=int(data["planned_units_per_arm"]),
        planned_from=data["planned_from"],
        decision=data["decision"],
        reason=data["reason"],
    )
