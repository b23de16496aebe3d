"""The rollout controller: advances canary steps and rolls back failing candidates.

Runs inside the server (a daemon thread, every ``interval_s``). With several replicas one leads:
on PostgreSQL the replica holding a session-level advisory lock on a connection of its own
(``registry.db.leader_lock``) runs the rounds, and another takes over when it dies or its
connection does (a failover). Each round also holds a transaction-level advisory lock
(``pg_try_advisory_xact_lock``: a round that finds it taken skips), so two rounds never
overlap even while leadership changes hands; on SQLite the write transaction itself
(``BEGIN IMMEDIATE``) serialises rounds. Every decision that changes traffic appends a revision
and records its evidence (the report ids and computed values) in ``rollout_decisions`` and in
the audit log.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from registry.audit.service import AuditEntry, append
from registry.canary.analysis import (
    Action,
    Analysis,
    ArmStats,
    aggregate,
    analyze,
    combine,
    next_action,
    recent_slice,
)
from registry.canary.plans import Plan, plan_from_mapping
from registry.db.leader_lock import LeaderLock
from registry.db.session import Sessions, unit_of_work
from registry.deployments import reports as serving_reports
from registry.deployments import rollout_records
from registry.deployments import service as deployments
from registry.deployments.models import (
    Deployment,
    DeploymentRevision,
    Rollout,
    RolloutDecision,
    RolloutState,
    ServingReport,
)
from registry.deployments.states import RevisionReason
from registry.traffic import experiment_gate, moves

log = logging.getLogger("registry.controller")

ADVISORY_LOCK_KEY = 0x5EED_0A0A  # "the rollout controller round", any stable 64-bit value
LEADER_LOCK_KEY = 0x5EED_0A0B  # "this replica runs the controller" (held across rounds)
ACTOR = "system:controller"


class Controller:
    def __init__(
        self,
        sessions: Sessions,
        *,
        interval_s: float,
        on_decision: Callable[[str, str], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        leader: LeaderLock | None = None,
    ) -> None:
        self._sessions = sessions
        self._leader = leader
        self.interval_s = interval_s
        self._on_decision = on_decision
        self._clock = clock
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="rollout-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=max(5.0, self.interval_s * 2))

    def _run(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                if self._leader is None or self._leader.hold():
                    self.tick()
            except Exception:  # a bad round (or a database outage) must not end the loop
                log.exception("rollout controller round failed")
        if self._leader is not None:
            self._leader.release()

    def tick(self) -> list[dict[str, Any]]:
        """One round over every running rollout; returns the decisions taken."""
        decided: list[dict[str, Any]] = []
        with unit_of_work(self._sessions.write) as session:
            if session.get_bind().dialect.name == "postgresql":
                got = session.scalar(
                    text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK_KEY}
                )
                if not got:
                    return decided  # another replica is acting this round
            for rollout_id in rollout_records.running_ids(session):
                # One savepoint per rollout: a rollout that cannot be analysed (a plan edited
                # by hand into nonsense, a report that breaks a constraint) is logged and left
                # as it is; the others still advance or roll back this round.
                try:
                    with session.begin_nested():
                        made = self._step(session, rollout_id)
                except Exception:
                    log.exception("rollout %s: controller step failed; skipped", rollout_id)
                    continue
                if made is not None:
                    decided.append(made)
        for made in decided:
            if self._on_decision is not None:
                self._on_decision(made["action"], made["deployment"])
        return decided

    def _step(self, session: Session, rollout_id: uuid.UUID) -> dict[str, Any] | None:
        """Analyse one running rollout and act: advance, complete, roll back, or hold (a hold
        is recorded only when new reports say something other than "pass")."""
        locked = _lock(session, rollout_id)
        if locked is None:
            return None
        rollout, dep, current = locked
        # Stored mode: a rollout started before min_stable_requests had to reach min_requests
        # is judged with its baseline raised to it (one failed stable request must not excuse
        # a failing candidate), not skipped for a plan the current rules would refuse.
        plan = plan_from_mapping(rollout.plan_name, rollout.plan, stored=True)
        evidence = _evidence(session, current, plan)
        fresh = len(evidence.reports) > rollout.reports_seen
        now = self._clock()
        analysis = evidence.analysis
        action = next_action(
            plan,
            step_index=rollout.step_index,
            step_started_at=rollout.step_started_at,
            now=now,
            analysis=analysis,
            # Without new reports a failing window was counted already: do not count it twice.
            consecutive_failures=rollout.failures
            if fresh or analysis.outcome != "fail"
            else max(rollout.failures - 1, 0),
        )
        action = experiment_gate.gate(
            plan, action, srm_flagged=evidence.srm_flagged, step_index=rollout.step_index
        )
        rollout.reports_seen = len(evidence.reports)
        rollout.failures = action.failures
        rollout.updated_at = now
        paused = action.reason == "sample_ratio_mismatch"
        if action.kind == "hold" and (not fresh or (analysis.outcome == "pass" and not paused)):
            session.flush()
            return None  # holding with nothing new to say
        revision = _act(session, dep, current, rollout, plan, action, analysis, now)
        _record(session, dep, rollout, action, evidence, revision, now)
        return {"deployment": dep.name, "action": action.kind, "reason": action.reason}


@dataclass(frozen=True)
class _Evidence:
    """What a step is judged on: the current revision's reports, the analysis of them, and
    the revision whose stable figures the candidate was compared with."""

    reports: list[ServingReport]
    analysis: Analysis
    stable_revision: int
    srm_flagged: bool = False


def _lock(
    session: Session, rollout_id: uuid.UUID
) -> tuple[Rollout, Deployment, DeploymentRevision] | None:
    """The rollout (read again under its deployment's row lock), the deployment and its
    current revision; None when the rollout ended or its candidate was moved by hand meanwhile
    (the manual change ended or replaced it)."""
    rollout = session.get_one(Rollout, rollout_id)
    dep = deployments.lock_deployment(session, rollout.deployment_id)
    session.refresh(rollout)
    if rollout.state != RolloutState.running:
        return None
    current = deployments.current_revision(session, dep)
    if current.candidate_version_id != rollout.candidate_version_id:
        return None
    return rollout, dep, current


def _evidence(session: Session, current: DeploymentRevision, plan: Plan) -> _Evidence:
    reports = serving_reports.for_revision(session, current)
    candidate_reports = [r for r in reports if r.arm == "candidate"]
    stable_reports = [r for r in reports if r.arm == "stable"]
    stable, stable_revision = _stable_figures(session, current, plan, stable_reports)
    share = current.candidate_share_bp
    whole = analyze(plan, candidate=aggregate(candidate_reports), stable=stable, share_bp=share)
    analysis = combine(whole, _recent(plan, candidate_reports, stable_reports, stable, share))
    analysis, srm_flagged = experiment_gate.judge(session, current, plan, analysis)
    return _Evidence(reports, analysis, stable_revision, srm_flagged)


def _act(
    session: Session,
    dep: Deployment,
    current: DeploymentRevision,
    rollout: Rollout,
    plan: Plan,
    action: Action,
    analysis: Analysis,
    now: datetime,
) -> DeploymentRevision | None:
    """The traffic move ``action`` makes (None for a hold)."""
    if action.kind == "advance":
        assert action.next_step_index is not None
        revision = moves.advance(
            session, deployment=dep, current=current, plan=plan, step_index=action.next_step_index
        )
        rollout.step_index = action.next_step_index
        rollout.step_started_at = now
        rollout.failures = 0
        rollout.reports_seen = 0
        return revision
    if action.kind == "complete":
        return moves.complete(session, deployment=dep, reason=RevisionReason.step)
    if action.kind == "rollback":
        failed = ", ".join(r.metric for r in analysis.rules if r.outcome == "fail")
        return moves.automatic_rollback(
            session,
            deployment=dep,
            detail=f"automatic rollback: {action.reason} ({failed or analysis.outcome})",
        )
    return None


def _record(
    session: Session,
    dep: Deployment,
    rollout: Rollout,
    action: Action,
    evidence: _Evidence,
    revision: DeploymentRevision | None,
    now: datetime,
) -> None:
    """The decision with its evidence, in ``rollout_decisions`` and in the audit log."""
    recorded = {
        **evidence.analysis.evidence,
        "stable_revision": evidence.stable_revision,
        "action": action.kind,
        "reason": action.reason,
    }
    number = revision.revision if revision is not None else None
    session.add(
        RolloutDecision(
            rollout_id=rollout.id,
            decided_at=now,
            action=action.kind,
            reason=action.reason,
            step_index=rollout.step_index,
            revision=number,
            evidence=recorded,
        )
    )
    session.flush()
    append(
        session,
        AuditEntry(
            action="rollout.decision",
            resource=f"deployment:{dep.name}",
            actor=ACTOR,
            after={
                "rollout": str(rollout.id),
                "action": action.kind,
                "reason": action.reason,
                "revision": number,
                "report_ids": recorded.get("candidate", {}).get("report_ids", [])
                + recorded.get("stable", {}).get("report_ids", []),
            },
        ),
    )


def _stable_need(plan: Plan) -> int:
    """Stable requests the plan's ``compare: stable`` rules need (0 without such rules)."""
    return max((r.min_stable_requests for r in plan.rules if r.compare == "stable"), default=0)


def _recent(
    plan: Plan,
    candidate_reports: list[ServingReport],
    stable_reports: list[ServingReport],
    stable: ArmStats,
    share_bp: int,
) -> Analysis | None:
    """The rules judged on the step's most recent reports alone: the newest candidate reports
    holding the rules' minimum request count, against the stable reports of the same period
    (or, when those are too few, the stable figures the whole step is judged with). ``None``
    when the recent slice is the whole step."""
    need = max((r.min_requests for r in plan.rules), default=0)
    newest = sorted(candidate_reports, key=lambda r: (r.window_end, r.created_at), reverse=True)
    recent = recent_slice(newest, need)
    if not need or len(recent) == len(candidate_reports):
        return None
    since = min(r.window_start for r in recent)
    same_period = aggregate([r for r in stable_reports if r.window_end > since])
    baseline = same_period if same_period.requests >= max(_stable_need(plan), 1) else stable
    return analyze(plan, candidate=aggregate(recent), stable=baseline, share_bp=share_bp)


def _stable_figures(
    session: Session,
    current: DeploymentRevision,
    plan: Plan,
    window: list[ServingReport],
) -> tuple[ArmStats, int]:
    """The stable arm's figures to compare with, and the revision they come from.

    The current window's when it has the requests the plan's ``compare: stable`` rules need;
    otherwise (a quiet stable arm, or the 100 % step where it serves nothing) the same stable
    version's reports on the newest earlier revision that has enough, so the candidate is still
    judged against a baseline. With none anywhere the window's (too few) figures stand and the
    rules say inconclusive.
    """
    stats = aggregate(window)
    need = _stable_need(plan)
    if stats.requests >= need or current.stable_version_id is None:
        return stats, current.revision
    earlier = serving_reports.stable_baseline(session, current, need)
    if earlier is None:
        return stats, current.revision
    revision, baseline = earlier
    return aggregate(baseline), revision
