"""The audit log: filtered listing, chain verification, signed checkpoints."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request, status
from starlette.concurrency import run_in_threadpool

from registry import refs
from registry.access.actor import audit_resource
from registry.access.subjects import load_actor
from registry.api.deps import ActorDep, SessionDep, StoreDep, get_principal
from registry.api.pagination import Page, decode_token, page_of
from registry.api.params import Rfc3339
from registry.api.routes._common import PageDep, authenticated_router, responses
from registry.audit import checkpoint_events
from registry.audit import service as audit
from registry.audit.checkpoints import export_checkpoint, stored, summary
from registry.audit.schemas import AuditEventRead, AuditVerifyRead, CheckpointRead
from registry.audit.verify import verify
from registry.auth.principal import AuthenticatedPrincipal
from registry.db.session import Sessions, unit_of_work
from registry.errors import (
    AuditChainBroken,
    AuditCheckpointMissing,
    AuditKeyRetired,
    BadRequest,
    DeploymentNotFound,
    InvalidPageToken,
    NothingServed,
    PolicyDenied,
)
from registry.schemas import documented
from registry.traffic.served import served_at

router = authenticated_router(prefix="/api/v1/audit", tags=["audit"])

_Text = Annotated[str | None, Query(max_length=300)]


@router.get(
    "/events",
    response_model=Page[AuditEventRead],
    responses=responses(InvalidPageToken, PolicyDenied),
)
def list_events(
    actor: ActorDep,
    session: SessionDep,
    page: PageDep,
    principal: Annotated[str | None, Query(alias="actor", max_length=128)] = None,
    action: _Text = None,
    resource: _Text = None,
    since: Rfc3339 | None = None,
    until: Rfc3339 | None = None,
) -> Page[AuditEventRead]:
    """Events in sequence order; ``action`` and ``resource`` match as prefixes."""
    actor.require("read_audit", audit_resource())
    cursor = decode_token(page.token, arity=1, types=(int,))
    rows = audit.log(
        session,
        actor=principal,
        action=action,
        resource=resource,
        since=since,
        until=until,
        after_seq=cursor[0] if cursor else None,
        limit=page.fetch,
    )
    return page_of(
        rows,
        page.limit,
        lambda r: AuditEventRead.model_validate(r, from_attributes=True),
        key=lambda e: [e.seq],
    )


@router.get(
    "/verify",
    response_model=AuditVerifyRead,
    responses=responses(PolicyDenied, AuditCheckpointMissing),
)
def verify_chain(
    actor: ActorDep,
    session: SessionDep,
    store: StoreDep,
    request: Request,
    require_checkpoint: Annotated[
        bool,
        Query(description="Answer 409 audit_checkpoint_missing when no checkpoint exists."),
    ] = False,
) -> AuditVerifyRead:
    """Recompute the hash chain and check every exported checkpoint against the key history
    (names the first bad event). 200 whatever it finds: ``ok`` says whether the history is
    intact, ``warnings`` holds ``no_checkpoints`` when nothing outside the database vouches for
    it (then 409 ``audit_checkpoint_missing`` with ``require_checkpoint``)."""
    actor.require("read_audit", audit_resource())
    result = verify(session, store, public_keys=[request.app.state.audit_key.public_key()])
    if require_checkpoint and result.ok and result.checkpoints == 0:
        raise AuditCheckpointMissing(
            "no signed checkpoint anchors the audit log: a rewritten history would go unseen",
            context={"events": result.events, "warnings": list(result.warnings)},
        )
    return AuditVerifyRead(
        ok=result.ok,
        events=result.events,
        checkpoints=result.checkpoints,
        first_bad_seq=result.first_bad_seq,
        reason=result.reason,
        checkpoint_seq=result.checkpoint_seq,
        bad_range=list(result.bad_range) if result.bad_range is not None else None,
        warnings=list(result.warnings),
        last_checkpoint_seq=result.last_checkpoint_seq,
    )


@router.post(
    "/checkpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=CheckpointRead | None,
    responses=responses(PolicyDenied, AuditChainBroken, AuditKeyRetired),
)
def checkpoint(
    actor: ActorDep, session: SessionDep, store: StoreDep, request: Request
) -> CheckpointRead | None:
    """Export a signed checkpoint of the current head to the artifact store now."""
    actor.require("read_audit", audit_resource())
    new = not stored(store, audit.head(session).seq)
    made = export_checkpoint(session, store, request.app.state.audit_key)
    if made is None:
        return None
    if new:
        checkpoint_events.record(session, summary(made), actor=actor.name)
    return CheckpointRead(seq=made.seq, hash=made.hash, at=made.at, key_id=made.key_id)


@router.get(
    "/served",
    responses=responses(DeploymentNotFound, NothingServed, BadRequest),
)
async def served(
    request: Request,
    principal: Annotated[AuthenticatedPrincipal, Depends(get_principal)],
    deployment: Annotated[
        str, Query(max_length=64, json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))
    ],
    at: Rfc3339,
    key: Annotated[str | None, Query(min_length=1, max_length=1024)] = None,
) -> dict[str, object]:
    """Which versions served ``deployment`` at ``at`` (ISO 8601 with a time zone): the revision
    effective then, stable and candidate with digests, the base and its digest, the share, the
    promotion and its approvers, and for ``key`` the arm it was routed to (recomputed from the
    revision's salt and hash spec). (One worker-thread hop for all the database work, and no
    transaction around it: auditors replay many of these; the revision and its versions come in
    one statement, and history rows do not change once written.)"""

    def work() -> dict[str, object]:
        sessions: Sessions = request.app.state.sessions
        with unit_of_work(sessions.read_statements) as session:
            active = request.app.state.policies.current(session)
            actor = load_actor(
                session, principal, active.authorizer, getattr(request.state, "request_id", None)
            )
            return served_at(session, actor=actor, deployment=deployment, at=at, key=key)

    return await run_in_threadpool(work)
