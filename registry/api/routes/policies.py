"""The active policy set (Cedar policies, schema, promotion gates) and applying a new one."""

from __future__ import annotations

from fastapi import Request, status

from registry.access import policy_sets
from registry.access.actor import policy_resource
from registry.access.policy_sets import ActivePolicies
from registry.access.schemas import PolicyApply, PolicyRead
from registry.api.deps import ActorDep, PoliciesDep, WriteDep
from registry.api.routes._common import authenticated_router, responses
from registry.errors import Conflict, InvalidPolicy, PolicyDenied
from registry.policy.loader import from_texts

router = authenticated_router(prefix="/api/v1/policies", tags=["policies"])


def _read(active: ActivePolicies) -> PolicyRead:
    return PolicyRead(
        version=active.version,
        digest=active.bundle.digest,
        source=active.source,
        applied_at=active.applied_at,
        schema_text=active.bundle.schema_text,
        policies_text=active.bundle.policies_text,
        gates_text=active.bundle.gates_text,
        rollout_text=active.bundle.rollout_text,
    )


@router.get("", response_model=PolicyRead, responses=responses(PolicyDenied))
def show(actor: ActorDep, active: PoliciesDep) -> PolicyRead:
    """The active policy set (version 0 = the defaults shipped in ``registry/policies/``)."""
    actor.require("read", policy_resource())
    return _read(active)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PolicyRead,
    responses=responses(InvalidPolicy, PolicyDenied, Conflict),
)
def apply(body: PolicyApply, ctx: WriteDep, request: Request) -> object:
    """Validate a policy set against its schema and make it the active one (admin; audited)."""
    bundle = from_texts(body.schema_text, body.policies_text, body.gates_text, body.rollout_text)
    return ctx.idempotent(
        body,
        lambda: _read(
            policy_sets.apply(
                ctx.session,
                ctx.actor,
                request.app.state.policies,
                bundle=bundle,
                source=body.source,
            )
        ),
        status_code=201,
    )
