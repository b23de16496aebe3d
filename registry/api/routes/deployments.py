"""Deployments: named serving targets; their state is the newest immutable revision."""

from __future__ import annotations

from fastapi import Response, status

from registry.api.deps import ActorDep, SessionDep, WriteDep
from registry.api.pagination import Page, decode_name_token, decode_token
from registry.api.params import DeploymentPath, Rfc3339
from registry.api.routes._common import ADAPTER_NOT_FOUND, PageDep, authenticated_router, responses
from registry.deployments import service as deployments
from registry.deployments.models import DeploymentRevision
from registry.deployments.schemas import (
    DeploymentCreate,
    DeploymentRead,
    RevisionRead,
    VersionSummaryRead,
)
from registry.errors import (
    BaseModelNotFound,
    DeploymentExists,
    DeploymentNotFound,
    InvalidName,
    InvalidPageToken,
    PolicyDenied,
)

router = authenticated_router(prefix="/api/v1/deployments", tags=["deployments"])


def deployment_read(view: deployments.DeploymentView) -> DeploymentRead:
    def summary(s: deployments.VersionSummary | None) -> VersionSummaryRead | None:
        return None if s is None else VersionSummaryRead(**s.__dict__)

    return DeploymentRead(
        name=view.deployment.name,
        namespace=view.namespace,
        adapter=view.adapter,
        base=view.base,
        revision=view.revision.revision,
        stable=summary(view.stable),
        candidate=summary(view.candidate),
        share_bp=view.revision.candidate_share_bp,
        created_at=view.deployment.created_at,
    )


def revision_read(row: DeploymentRevision, versions: dict[object, int]) -> RevisionRead:
    return RevisionRead(
        revision=row.revision,
        stable_version=versions.get(row.stable_version_id),
        candidate_version=versions.get(row.candidate_version_id),
        share_bp=row.candidate_share_bp,
        salt=row.salt,
        hash_spec=row.hash_spec,
        reason=row.reason,
        detail=row.detail,
        promotion_id=row.promotion_id,
        effective_at=row.effective_at,
    )


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DeploymentRead,
    responses=responses(*ADAPTER_NOT_FOUND, BaseModelNotFound, DeploymentExists, PolicyDenied),
)
def create_deployment(body: DeploymentCreate, ctx: WriteDep) -> object:
    """Create a deployment bound to a base model revision and an adapter."""
    return ctx.idempotent(
        body,
        lambda: deployment_read(
            deployments.create_deployment(
                ctx.session, actor=ctx.actor, name=body.name, base=body.base, adapter=body.adapter
            )
        ),
        status_code=201,
    )


@router.get("", response_model=Page[DeploymentRead], responses=responses(InvalidPageToken))
def list_deployments(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[DeploymentRead]:
    """Deployments the caller may read, by name."""
    rows = deployments.list_deployments(
        session, actor=actor, after=decode_name_token(page.token), limit=page.fetch
    )
    return page.of(rows, deployment_read, key=lambda d: [d.name])


@router.get(
    "/{name}",
    response_model=DeploymentRead,
    responses=responses(InvalidName, DeploymentNotFound),
)
def get_deployment(name: DeploymentPath, actor: ActorDep, session: SessionDep) -> Response:
    """Current state: the newest revision's stable and candidate versions and share. The ETag
    is the revision: send it back as ``If-Match`` to move traffic."""
    read = deployment_read(deployments.status(session, actor=actor, name=name))
    return Response(
        read.model_dump_json(),
        media_type="application/json",
        headers={"ETag": f'"{read.revision}"'},
    )


@router.get(
    "/{name}/history",
    response_model=Page[RevisionRead],
    responses=responses(InvalidName, DeploymentNotFound, InvalidPageToken),
)
def history(
    name: DeploymentPath,
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
) -> Page[RevisionRead]:
    """Revisions newest first; ``since`` (inclusive) / ``until`` (exclusive) bound their
    ``effective_at``."""
    cursor = decode_token(page.token, arity=1, types=(int,))
    rows = deployments.history(
        session,
        actor=actor,
        name=name,
        before=cursor[0] if cursor else None,
        limit=page.fetch,
        since=since,
        until=until,
    )
    versions = deployments.version_numbers(session, rows[: page.limit])
    return page.of(rows, lambda r: revision_read(r, versions), key=lambda r: [r.revision])
