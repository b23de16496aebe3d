"""Experiment statistics carried by serving reports, checked on the way in and pooled on the way
out.

A report's statistics are the reporter's running totals since the revision started, for one
``source`` (a gateway, or a shard of one, that sees every request of its units): the number of
units the arm served and, per metric, the sufficient statistics of ``registry.experiments``
(``BinaryStats``: units, successes; ``RatioStats``: units, Σx, Σx², Σm, Σm², Σxm). Stored on the
report as ``{"source", "units", "metrics": {name: {"kind", ...}}}``.

Pooling (``pool``): per arm, the latest report of each source (newest ``window_end``, then
newest received) stands for that source; the sources are summed. Sources must split the units
between them (a unit's requests all reach one source), or a unit would be counted twice.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from registry.deployments import rollout_records
from registry.deployments.models import DeploymentRevision, ServingReport
from registry.errors import InvalidReport
from registry.experiments import BinaryStats, RatioStats, Stats
from registry.experiments.codec import stats_from_dict, stats_to_dict


def _from_input(raw: Mapping[str, Any]) -> Stats:
    """One metric's statistics as the API takes them (``kind``: binary or ratio)."""
    fields = {k: v for k, v in raw.items() if k != "kind"}
    return stats_from_dict({"type": raw.get("kind"), **fields})


def check_document(
    source: str, units: int | None, metrics: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any] | None:
    """The JSON to store on a report (``None`` when it carries no statistics).

    ``invalid_report`` with ``context.reason``: ``bad_statistics`` (sums inconsistent with the
    counts: the message says which), ``metric_units_exceed_units`` (a metric counted on more
    units than the arm served).
    """
    if units is None and not metrics:
        return None
    checked: dict[str, Any] = {}
    for name, raw in metrics.items():
        try:
            stats = _from_input(raw)
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidReport(
                f"metric {name}: {exc}", context={"reason": "bad_statistics", "metric": name}
            ) from exc
        if units is not None and stats.units > units:
            raise InvalidReport(
                f"metric {name} counts {stats.units} units, the arm served {units}",
                context={"reason": "metric_units_exceed_units", "metric": name},
            )
        checked[name] = stats_to_dict(stats)
    return {"source": source, "units": units, "metrics": checked}


@dataclass
class ArmTotals:
    """One arm's pooled statistics: units served, per metric statistics, the reports used."""

    units: int | None = None
    metrics: dict[str, Stats] = field(default_factory=dict)
    report_ids: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Units and the reports pooled (the statistics are in the readout's ``arms``)."""
        return {"units": self.units, "report_ids": list(self.report_ids)}


def pool(
    reports: Sequence[ServingReport], metrics: Collection[str] | None = None
) -> dict[str, ArmTotals]:
    """``{arm: ArmTotals}`` from the latest statistics of each source (module docstring), of
    the ``metrics`` named (all without). A metric reported as different kinds by two sources
    keeps the first source's statistics (reports are kind-checked against the plan's metrics
    when they arrive: ``check_kinds``)."""
    latest: dict[tuple[str, str], ServingReport] = {}
    for report in reports:
        doc = report.stats
        if not isinstance(doc, dict):
            continue
        key = (report.arm, str(doc.get("source", "default")))
        held = latest.get(key)
        if held is None or (report.window_end, report.created_at) > (
            held.window_end,
            held.created_at,
        ):
            latest[key] = report
    out: dict[str, ArmTotals] = {"stable": ArmTotals(), "candidate": ArmTotals()}
    for (arm, _source), report in sorted(latest.items()):
        totals = out.setdefault(arm, ArmTotals())
        doc = report.stats
        totals.report_ids.append(str(report.id))
        if doc.get("units") is not None:
            totals.units = (totals.units or 0) + int(doc["units"])
        for name, raw in (doc.get("metrics") or {}).items():
            if metrics is not None and name not in metrics:
                continue
            stats = stats_from_dict(raw)
            held_stats = totals.metrics.get(name)
            totals.metrics[name] = stats if held_stats is None else _add(held_stats, stats)
    return out


def check_kinds(session: Session, revision: DeploymentRevision, doc: dict[str, Any]) -> None:
    """A metric the revision's experiment names is reported as the kind the plan says
    (``invalid_report``, reason ``metric_kind_mismatch``): a binary count cannot stand in for a
    ratio metric's sums, and one mismatched source would make every readout unanswerable."""
    plan = rollout_records.plan_of(session, revision)
    if plan is None or plan.experiment is None:
        return
    kinds = {m.name: m.kind for m in plan.experiment.metrics}
    for name, stats in doc.get("metrics", {}).items():
        if name in kinds and stats["type"] != kinds[name]:
            raise InvalidReport(
                f"metric {name} is a {kinds[name]} metric in the experiment's plan",
                context={"reason": "metric_kind_mismatch", "metric": name, "kind": kinds[name]},
            )


def _add(a: Stats, b: Stats) -> Stats:
    if isinstance(a, BinaryStats) and isinstance(b, BinaryStats):
        return a + b
    if isinstance(a, RatioStats) and isinstance(b, RatioStats):
        return a + b
    return a
