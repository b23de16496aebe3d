"""The data of a deployment's timeline page: revisions as a chart of the candidate's share over
time (rollbacks marked), per-arm serving figures, the controller's decisions with their
evidence, the experiment readout where one exists, and whether the caller may roll back.

The chart is plain SVG computed here (coordinates only; the template draws it): no charting
library, no script.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from registry.access.actor import deployment_resource
from registry.deployments import reports, rollout_records
from registry.deployments import service as deployments
from registry.deployments.experiment import readout
from registry.deployments.models import DeploymentRevision
from registry.deployments.states import RevisionReason
from registry.errors import NoExperiment

if TYPE_CHECKING:
    from registry.console.web import Page

HISTORY_LIMIT = 200
DECISIONS_LIMIT = 25
WIDTH, HEIGHT, PAD = 720.0, 160.0, 28.0
ROLLBACKS = frozenset({RevisionReason.manual_rollback, RevisionReason.automatic_rollback})


@dataclass(frozen=True, slots=True)
class Point:
    x: float
    y: float
    revision: int
    share: float
    at: datetime
    reason: str


@dataclass
class Chart:
    """A step line of the candidate share (0 to 100 %) against time, one point per revision."""

    points: list[Point] = field(default_factory=list)
    line: str = ""
    width: float = WIDTH
    height: float = HEIGHT
    pad: float = PAD

    @property
    def rollbacks(self) -> list[Point]:
        return [p for p in self.points if p.reason in ROLLBACKS]

    def y_of(self, share: float) -> float:
        return self.height - self.pad - (self.height - 2 * self.pad) * share / 100


def chart(revisions: list[DeploymentRevision], now: datetime) -> Chart:
    """Revisions oldest first → the chart's points and its step polyline."""
    out = Chart()
    if not revisions:
        return out
    start = revisions[0].effective_at
    span = max((now - start).total_seconds(), 1.0)
    usable = WIDTH - 2 * PAD
    steps: list[str] = []
    for row in revisions:
        share = row.candidate_share_bp / 100 if row.candidate_version_id is not None else 0.0
        x = PAD + usable * (row.effective_at - start).total_seconds() / span
        y = out.y_of(share)
        if steps:
            steps.append(f"{x:.1f},{steps[-1].split(',')[1]}")
        steps.append(f"{x:.1f},{y:.1f}")
        out.points.append(Point(x, y, row.revision, share, row.effective_at, row.reason))
    steps.append(f"{WIDTH - PAD:.1f},{steps[-1].split(',')[1]}")
    out.line = " ".join(steps)
    return out


@dataclass(frozen=True, slots=True)
class ArmFigures:
    arm: str
    version: int
    requests: int
    errors: int
    p95_ms: float | None

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.requests if self.requests else None


def arm_figures(page: Page, revision: DeploymentRevision) -> list[ArmFigures]:
    """Requests, errors and the request-weighted p95 latency per arm of one revision."""
    sums: dict[str, list[Any]] = {}
    for r in reports.for_revision(page.session, revision):
        acc = sums.setdefault(r.arm, [r.adapter_version_id, 0, 0, 0.0, 0])
        acc[1] += r.requests
        acc[2] += r.errors
        if r.latency_p95_ms is not None:
            acc[3] += r.latency_p95_ms * r.requests
            acc[4] += r.requests
    return [
        ArmFigures(
            arm=arm,
            version=reports.version_number(page.session, acc[0]),
            requests=acc[1],
            errors=acc[2],
            p95_ms=acc[3] / acc[4] if acc[4] else None,
        )
        for arm, acc in sorted(sums.items())
    ]


def timeline(page: Page, name: str) -> dict[str, Any]:
    view = deployments.status(page.session, actor=page.actor, name=name)
    rows = deployments.history(
        page.session, actor=page.actor, name=name, before=None, limit=HISTORY_LIMIT
    )
    rows.reverse()
    numbers = deployments.version_numbers(page.session, rows)
    try:
        experiment: dict[str, Any] | None = readout(page.session, actor=page.actor, deployment=name)
    except NoExperiment:
        experiment = None
    rollback = page.actor.decide("rollback", deployment_resource(name, view.namespace))
    return {
        "view": view,
        "revisions": list(reversed(rows)),
        "numbers": numbers,
        "chart": chart(rows, datetime.now(UTC)),
        "arms": arm_figures(page, view.revision),
        "decisions": rollout_records.decisions(
            page.session, actor=page.actor, name=name, after=None, limit=DECISIONS_LIMIT
        ),
        "experiment": experiment,
        "may_roll_back": rollback.allowed and view.stable is not None,
    }
