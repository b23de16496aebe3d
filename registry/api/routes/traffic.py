"""A deployment's traffic: moving it by hand (compare-and-set), serving reports, and the
rollout controller's decisions."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Query, Response, status

from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_time_token, page_of, time_key
from registry.api.params import IF_MATCH_PATTERN, DeploymentPath, IfMatch
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.api.routes.deployments import deployment_read
from registry.deployments import experiment, reports, rollout_records
from registry.deployments.schemas import (
    DecisionRead,
    DeploymentRead,
    ReportCreate,
    ReportRead,
    RollbackRequest,
    RolloutStep,
)
from registry.errors import (
    BadRequest,
    DeploymentNotFound,
    InvalidPageToken,
    InvalidReport,
    InvalidTransition,
    NoExperiment,
    PolicyDenied,
    PreconditionFailed,
    PreconditionRequired,
    RevisionNotFound,
)
from registry.traffic import moves

_IF_MATCH = re.compile(IF_MATCH_PATTERN)

router = authenticated_router(prefix="/api/v1/deployments", tags=["deployments"])

_MOVES = responses(
    DeploymentNotFound, PolicyDenied, PreconditionFailed, PreconditionRequired, InvalidTransition
)


def expected_revision(if_match: str | None, body_value: int | None) -> int | None:
    """The expected revision from ``If-Match`` (``"7"``, ``7``) or the body."""
    if if_match is None:
        return body_value
    # ASCII digits only: str.isdigit() also takes "²", which int() then refuses (a 500).
    match = _IF_MATCH.fullmatch(if_match)
    if match is None:
        raise BadRequest('If-Match must be the deployment revision, e.g. "7"')
    value = int(match.group(1))
    if body_value is not None and body_value != value:
        raise BadRequest("If-Match and expected_revision disagree")
    return value


def _with_etag(read: DeploymentRead) -> Response:
    return Response(
        read.model_dump_json(),
        media_type="application/json",
        headers={"ETag": f'"{read.revision}"'},
    )


@router.post("/{name}/rollout", response_model=DeploymentRead, responses=_MOVES)
def rollout(
    name: DeploymentPath, body: RolloutStep, ctx: WriteDep, if_match: IfMatch = None
) -> Response:
    """Set the candidate's share (manual step; 10000 completes the rollout). Needs the
    revision you expect (``If-Match`` or ``expected_revision``): stale → 412, missing → 428."""
    expected = expected_revision(if_match, body.expected_revision)
    view = moves.rollout_to_share(
        ctx.session, actor=ctx.actor, name=name, share_bp=body.share_bp, expected=expected
    )
    return _with_etag(deployment_read(view))


@router.post("/{name}/rollback", response_model=DeploymentRead, responses=_MOVES)
def rollback(
    name: DeploymentPath,
    ctx: WriteDep,
    body: RollbackRequest | None = None,
    if_match: IfMatch = None,
) -> Response:
    """One command, one new revision: drop the candidate, or return to the previous stable
    version, or restore ``to_revision``'s split (refused when a version there is archived or
    quarantined). Compare-and-set like ``rollout``."""
    body = body or RollbackRequest()
    expected = expected_revision(if_match, body.expected_revision)
    view = moves.rollback(
        ctx.session, actor=ctx.actor, name=name, expected=expected, to_revision=body.to_revision
    )
    ctx.request.app.state.metrics.rollbacks.labels(kind="manual").inc()
    return _with_etag(deployment_read(view))


@router.post(
    "/{name}/reports",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportRead,
    responses=responses(DeploymentNotFound, PolicyDenied, InvalidReport),
)
def report(name: DeploymentPath, body: ReportCreate, ctx: WriteDep) -> object:
    """Traffic, errors and latency one serving replica saw for an arm of a revision over a
    window (what the rollout controller analyses)."""

    def produce() -> ReportRead:
        row = reports.record_report(
            ctx.session,
            actor=ctx.actor,
            deployment=name,
            data=reports.ReportInput(**body.model_dump()),
        )
        ctx.request.app.state.metrics.reports.labels(arm=row.arm).inc()
        return ReportRead(
            id=row.id,
            deployment=name,
            revision=row.revision,
            arm=row.arm,
            version=reports.version_number(ctx.session, row.adapter_version_id),
            window_start=row.window_start,
            window_end=row.window_end,
            requests=row.requests,
            errors=row.errors,
        )

    return ctx.idempotent(body, produce, status_code=201)


@router.get(
    "/{name}/decisions",
    response_model=Page[DecisionRead],
    responses=responses(DeploymentNotFound, InvalidPageToken),
)
def decisions(
    name: DeploymentPath,
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
) -> Page[DecisionRead]:
    """The rollout controller's decisions on this deployment, newest first, each with its
    evidence (report ids, computed values per rule)."""
    rows = rollout_records.decisions(
        session, actor=actor, name=name, after=decode_time_token(page.token), limit=page.fetch
    )
    return page_of(
        rows,
        page.limit,
        lambda d: DecisionRead.model_validate(d, from_attributes=True),
        key=lambda d: time_key(d.decided_at, d.id),
    )


@router.get(
    "/{name}/experiment",
    responses=responses(DeploymentNotFound, RevisionNotFound, NoExperiment),
)
def experiment_readout(
    name: DeploymentPath,
    actor: ActorDep,
    session: SessionDep,
    revision: Annotated[int | None, Query(ge=1, le=2**31 - 1)] = None,
) -> dict[str, Any]:
    """The A/B readout of a revision (default: the current one) under the experiment of the
    rollout plan its candidate runs under: per metric the arm means, the absolute and relative
    difference, fixed-horizon and always-valid (mSPRT) confidence intervals and p-values and a
    decision (``better``, ``worse``, ``within_margin``, ``inconclusive``); the sample-ratio
    mismatch check; the sample size per arm the plan needs; the overall decision
    (docs/experiments.md)."""
    return experiment.readout(session, actor=actor, deployment=name, revision=revision)
