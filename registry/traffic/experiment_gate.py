"""What a rollout plan's ``experiment`` section changes in the controller's round.

* Guardrails join the analysis: each guardrail metric of the readout becomes a rule result
  (``experiment:<name>``): ``fail`` when the candidate is surely worse (one-sided always-valid
  test, reason ``surely_worse``), ``pass`` when it is surely within the margin
  (``within_margin``), ``inconclusive`` otherwise; the existing verdict logic (failure limit,
  absolute caps, dwell) then applies unchanged.
* A sample-ratio mismatch pauses: no advance, completion or inconclusive rollback while the
  split the units see is not the configured one (reason ``sample_ratio_mismatch``); a failing
  analysis (an absolute cap, a guardrail) still rolls back.
* ``mode: experiment`` never progresses by itself: a pass holds (``awaiting_decision`` once the
  duration is over, ``dwell`` before) until a person ships or drops the candidate.

The readout a decision was based on is recorded with it (``evidence.experiment``), in the shape
``registry.experiments.replay`` recomputes from.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy.orm import Session

from registry.canary.analysis import Action, Analysis, Outcome, RuleOutcome, RuleResult
from registry.canary.hashing import MAX_SHARE_BP
from registry.canary.plans import Plan
from registry.deployments import experiment
from registry.deployments.models import DeploymentRevision
from registry.experiments import MetricResult

PREFIX = "experiment:"
_GUARDRAIL: dict[str, tuple[RuleOutcome, str]] = {
    "worse": ("fail", "surely_worse"),
    "within_margin": ("pass", "within_margin"),
}


def _rule(result: MetricResult) -> RuleResult:
    outcome, reason = _GUARDRAIL.get(result.decision, ("inconclusive", result.reason))
    bound = result.relative_sequential
    limit = None if bound is None else (bound.low if result.direction == "increase" else bound.high)
    return RuleResult(
        PREFIX + result.name,
        outcome,
        result.treatment_mean,
        result.control_mean,
        limit,
        reason,
    )


def judge(
    session: Session, current: DeploymentRevision, plan: Plan, analysis: Analysis
) -> tuple[Analysis, bool]:
    """The analysis with the plan's guardrails added and the readout recorded in its
    evidence; and whether the sample-ratio check is flagged. Unchanged without experiment."""
    if plan.experiment is None or not 0 < current.candidate_share_bp < MAX_SHARE_BP:
        return analysis, False  # no experiment, or no split to compare (the 100 % step)
    made = experiment.compute(session, current, plan)
    rules = [_rule(r) for r in made.readout.metrics if r.role == "guardrail"]
    everything = [*analysis.rules, *rules]
    outcomes = {r.outcome for r in everything}
    outcome: Outcome = (
        "fail" if "fail" in outcomes else "inconclusive" if "inconclusive" in outcomes else "pass"
    )
    evidence: dict[str, Any] = {
        **analysis.evidence,
        "outcome": outcome,
        "guardrails": [r.to_dict() for r in rules],
        "experiment": made.to_dict(),
    }
    return Analysis(outcome, everything, evidence), made.readout.srm.flagged


def gate(plan: Plan, action: Action, *, srm_flagged: bool, step_index: int) -> Action:
    """``action`` as the experiment allows it (module docstring); ``step_index``: the step the
    rollout is at (where a hold stays)."""
    moving = action.kind in ("advance", "complete")
    if srm_flagged and (moving or (action.kind == "rollback" and action.reason == "inconclusive")):
        return replace(
            action, kind="hold", reason="sample_ratio_mismatch", next_step_index=step_index
        )
    if plan.mode == "experiment" and moving:
        return replace(action, kind="hold", reason="awaiting_decision", next_step_index=step_index)
    return action
