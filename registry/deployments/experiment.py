"""The A/B readout of a deployment revision: the experiment its rollout plan defines, judged on
the statistics its serving reports carry (``registry.deployments.report_stats``) with the pure
maths of ``registry.experiments``.

Used by ``GET /api/v1/deployments/{name}/experiment`` (and the CLI's ``deployments experiment``)
and by the rollout controller, which records the readout a decision was based on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.canary.experiment_plan import ExperimentPlan
from registry.canary.hashing import MAX_SHARE_BP
from registry.canary.plans import Plan
from registry.deployments import reports as serving_reports
from registry.deployments import rollout_records
from registry.deployments import service as deployments
from registry.deployments.models import Deployment, DeploymentRevision
from registry.deployments.report_stats import ArmTotals, pool
from registry.errors import NoExperiment, RevisionNotFound
from registry.experiments import BinaryStats, ExperimentDesign, RatioStats, Readout, Stats, analyze

ARMS = ("stable", "candidate")


@dataclass(frozen=True)
class ExperimentReadout:
    """A readout with what it was computed from."""

    revision: DeploymentRevision
    plan: Plan
    totals: dict[str, ArmTotals]
    planned_units_per_arm: int | None
    readout: Readout

    def to_dict(self, deployment: str | None = None) -> dict[str, Any]:
        """The readout's own dict (``registry.experiments.replay`` recomputes from it) with
        the revision, the plan and, per arm, the units counted and the reports pooled."""
        head = {} if deployment is None else {"deployment": deployment}
        return {
            **head,
            "revision": self.revision.revision,
            "share_bp": self.revision.candidate_share_bp,
            "plan": self.plan.name,
            "mode": self.plan.mode,
            **self.readout.to_dict(),
            "reports": {arm: t.to_dict() for arm, t in sorted(self.totals.items())},
        }


def _with_every_metric(plan: ExperimentPlan, reported: dict[str, Stats]) -> dict[str, Stats]:
    """The plan's metrics, each with its reported statistics or none yet (zero units)."""
    empty: dict[str, Stats] = {
        "binary": BinaryStats(0, 0),
        "ratio": RatioStats(0, 0.0, 0.0, 0.0, 0.0, 0.0),
    }
    return {m.name: reported.get(m.name, empty[m.kind]) for m in plan.metrics}


def compute(session: Session, revision: DeploymentRevision, plan: Plan) -> ExperimentReadout:
    """The readout of ``revision`` under ``plan`` (which has an experiment section)."""
    experiment = plan.experiment
    assert experiment is not None
    share = revision.candidate_share_bp / MAX_SHARE_BP
    planned = experiment.planned_units_per_arm(share if 0 < share < 1 else 0.5)
    names = {m.name for m in experiment.metrics}
    totals = pool(serving_reports.for_revision(session, revision), names)
    design = ExperimentDesign(
        metrics=experiment.metrics,
        alpha=experiment.alpha,
        power=experiment.power,
        candidate_share=share,
        planned_units_per_arm=planned,
    )
    arms = {arm: _with_every_metric(experiment, totals[arm].metrics) for arm in ARMS}
    units = {arm: totals[arm].units for arm in ARMS}
    counted = {arm: n for arm, n in units.items() if n is not None}
    readout = analyze(design, arms, units=counted if len(counted) == len(ARMS) else None)
    return ExperimentReadout(revision, plan, totals, planned, readout)


def readout(
    session: Session, *, actor: Actor, deployment: str, revision: int | None = None
) -> dict[str, Any]:
    """The readout of revision ``revision`` (default: the current one) of ``deployment``.

    Errors: ``deployment_not_found``, ``revision_not_found``, ``no_experiment`` (the revision's
    candidate was not rolled out under a plan with an experiment section).
    """
    dep: Deployment = deployments.get_deployment(session, actor=actor, name=deployment)
    if revision is None:
        current = deployments.current_revision(session, dep)
    else:
        found = deployments.revision(session, dep, revision)
        if found is None:
            raise RevisionNotFound(
                "no such revision of this deployment",
                context={"deployment": deployment, "revision": revision},
            )
        current = found
    if not 0 < current.candidate_share_bp < MAX_SHARE_BP:
        raise NoExperiment(
            "this revision does not split traffic between two versions",
            context={"deployment": deployment, "revision": current.revision, "reason": "no_split"},
        )
    plan = rollout_records.plan_of(session, current)
    if plan is None or plan.experiment is None:
        raise NoExperiment(
            "this revision's candidate runs under no experiment",
            context={
                "deployment": deployment,
                "revision": current.revision,
                "reason": "no_rollout" if plan is None else "plan_without_experiment",
            },
        )
    return compute(session, current, plan).to_dict(dep.name)
