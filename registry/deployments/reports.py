"""Serving reports: what the fleet saw per deployment revision and arm over a time window.

Validated before they are stored (they drive automatic rollbacks): counts are non-negative and
``errors <= requests``, the window is well-formed and not in the future, the revision exists for
the deployment and the arm served in it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.deployments import service as deployments
from registry.deployments.models import DeploymentRevision, ServingReport
from registry.deployments.report_stats import check_document, check_kinds
from registry.deployments.repository import ReportRepository
from registry.errors import InvalidReport

CLOCK_SKEW = timedelta(seconds=30)
MAX_WINDOW = timedelta(days=1)
MAX_SCORES = 32


@dataclass(frozen=True)
class ReportInput:
    revision: int
    arm: str
    window_start: datetime
    window_end: datetime
    requests: int
    errors: int
    latency_p50_ms: float | None = None
    latency_p95_ms: float | None = None
    scores: dict[str, float] = field(default_factory=dict)
    source: str = "default"
    units: int | None = None
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)


def record_report(
    session: Session, *, actor: Actor, deployment: str, data: ReportInput
) -> ServingReport:
    dep = deployments.get_deployment(session, actor=actor, name=deployment, action="report")
    _check_figures(data)
    stats = check_document(data.source, data.units, data.metrics)
    revision = deployments.revision(session, dep, data.revision)
    if revision is None:
        raise InvalidReport(
            "no such revision of this deployment",
            context={"reason": "unknown_revision", "revision": data.revision},
        )
    version_id = (
        revision.candidate_version_id if data.arm == "candidate" else revision.stable_version_id
    )
    if version_id is None:
        raise InvalidReport(
            f"revision {data.revision} has no {data.arm} version",
            context={"reason": "unknown_arm", "arm": data.arm, "revision": data.revision},
        )
    if stats is not None:
        check_kinds(session, revision, stats)
    row = ServingReport(
        deployment_id=dep.id,
        revision=data.revision,
        arm=data.arm,
        adapter_version_id=version_id,
        window_start=data.window_start,
        window_end=data.window_end,
        requests=data.requests,
        errors=data.errors,
        latency_p50_ms=data.latency_p50_ms,
        latency_p95_ms=data.latency_p95_ms,
        scores=dict(data.scores) or None,
        stats=stats,
        reported_by_id=actor.id,
    )
    session.add(row)
    session.flush()
    actor.audit(
        session,
        "deployment.report",
        f"deployment:{dep.name}",
        after={
            "report": str(row.id),
            "revision": data.revision,
            "arm": data.arm,
            "requests": data.requests,
            "errors": data.errors,
        },
    )
    return row


def _check_figures(data: ReportInput) -> None:
    def bad(reason: str, detail: str, **context: object) -> InvalidReport:
        return InvalidReport(detail, context={"reason": reason, **context})

    if data.arm not in ("stable", "candidate"):
        raise bad("unknown_arm", "arm must be stable or candidate", arm=data.arm[:20])
    if data.requests < 0 or data.errors < 0:
        raise bad("negative_count", "counts cannot be negative")
    if data.errors > data.requests:
        raise bad("errors_exceed_requests", "errors cannot exceed requests")
    for name, value in (
        ("latency_p50_ms", data.latency_p50_ms),
        ("latency_p95_ms", data.latency_p95_ms),
    ):
        if value is not None and (not math.isfinite(value) or value < 0):
            raise bad("bad_latency", f"{name} must be a finite, non-negative number")
    if len(data.scores) > MAX_SCORES or any(not math.isfinite(v) for v in data.scores.values()):
        raise bad("bad_scores", f"at most {MAX_SCORES} finite scores")
    for moment in (data.window_start, data.window_end):
        if moment.tzinfo is None:
            raise bad("naive_time", "window times need a time zone")
    if data.window_end <= data.window_start:
        raise bad("empty_window", "window_end must be after window_start")
    if data.window_end > datetime.now(UTC) + CLOCK_SKEW:
        raise bad("future_window", "window_end is in the future")
    if data.window_end - data.window_start > MAX_WINDOW:
        raise bad("window_too_long", "a report covers at most one day")


def for_revision(session: Session, revision: DeploymentRevision) -> list[ServingReport]:
    """The reports of one revision (both arms), oldest first."""
    return ReportRepository(session).for_revision(revision.deployment_id, revision.revision)


def stable_baseline(
    session: Session, current: DeploymentRevision, need: int
) -> tuple[int, list[ServingReport]] | None:
    """The newest revision before ``current`` whose stable arm, serving ``current``'s stable
    version, holds at least ``need`` requests, and its stable reports (None: no such one)."""
    return ReportRepository(session).stable_baseline(current, need)


def version_number(session: Session, version_id: object) -> int:
    from registry.catalog.models import AdapterVersion

    return session.get_one(AdapterVersion, version_id).version
