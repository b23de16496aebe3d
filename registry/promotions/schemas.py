"""Request and response bodies of the API for promotion requests and their decisions (pydantic
v2, unknown fields refused), and the response body built from a request's view."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from registry import refs
from registry.canary.plans import PlansFile
from registry.errors import BadRequest, InvalidName, InvalidReference
from registry.promotions.plans import shown_plan
from registry.promotions.reads import PromotionView
from registry.schemas import Strict, documented

_SIMPLE = documented(refs.SIMPLE_NAME_PATTERN)
_ADAPTER_REF = documented(refs.ADAPTER_REF_PATTERN, InvalidName, InvalidReference)


class PromotionCreate(Strict):
    ref: str = Field(
        max_length=300,
        description="NS/NAME@vN or NS/NAME@sha256:...",
        json_schema_extra=_ADAPTER_REF,
    )
    deployment: str = Field(max_length=64, json_schema_extra=_SIMPLE)
    reason: str | None = Field(None, max_length=2000)
    override_reason: str | None = Field(
        None,
        max_length=2000,
        description="Admin only: promote despite failing gates.",
        json_schema_extra=documented(refs.NOT_BLANK_PATTERN, BadRequest),
    )
    plan: str | None = Field(
        None, max_length=64, description="Rollout plan (rollout.yaml); default: default_plan."
    )
    plan_spec: dict[str, Any] | None = Field(
        None,
        description="A rollout plan for this request only, in rollout.yaml's shape "
        "({steps, analysis, failure_limit, on_inconclusive}); named by `plan` (default "
        '"custom"). It must meet the floor of the active rollout.yaml: 422 plan_below_floor '
        "otherwise, context.failures listing each failed check.",
    )


class PromotionDecision(Strict):
    comment: str = Field("", max_length=2000)
    plan_digest: str | None = Field(
        None,
        pattern=r"^sha256:[0-9a-f]{64}$",
        description="Approve only: the digest of the rollout plan you saw (PromotionRead."
        "plan_digest); 409 plan_digest_mismatch when the request's plan is another.",
    )


class PromotionReject(Strict):
    reason: str = Field(
        min_length=1,
        max_length=2000,
        json_schema_extra=documented(refs.NOT_BLANK_PATTERN, BadRequest),
    )


class ApprovalRead(BaseModel):
    approver: str
    at: datetime
    comment: str = ""


class PromotionRead(BaseModel):
    id: uuid.UUID
    state: str
    deployment: str
    ref: str
    gates: list[dict[str, Any]]
    gates_passed: bool
    required_approvals: int
    approvals: list[ApprovalRead]
    policy_digest: str
    override_reason: str | None
    plan: str
    plan_spec: dict[str, Any] | None = Field(
        description="The whole rollout plan an approval starts (rollout.yaml's shape), frozen "
        "when the request was made; null when the active policy no longer defines the plan of "
        "a request made before plans were stored with requests."
    )
    plan_digest: str | None = Field(
        description="sha256 of the plan's name and content: what an approval binds."
    )
    reason: str | None
    decision_reason: str | None
    revision: int | None
    expires_at: datetime
    created_at: datetime
    decided_at: datetime | None

    @classmethod
    def from_view(cls, view: PromotionView, plans: PlansFile) -> PromotionRead:
        """The body of ``view``, with the plan an approver is shown (the stored one, or for an
        older request the active ``plans``' plan of its name)."""
        row = view.request
        shown = shown_plan(row, plans)
        return cls(
            id=row.id,
            state=view.state,
            deployment=view.deployment,
            ref=view.version_ref,
            gates=list(row.gates),
            gates_passed=row.gates_passed,
            required_approvals=row.required_approvals,
            approvals=[ApprovalRead(approver=a, at=t, comment=c) for a, t, c in view.approvals],
            policy_digest=row.policy_digest,
            override_reason=row.override_reason,
            plan=row.plan_name,
            plan_spec=shown.plan.to_dict() if shown else None,
            plan_digest=shown.digest if shown else None,
            reason=row.reason,
            decision_reason=row.decision_reason,
            revision=view.revision,
            expires_at=row.expires_at,
            created_at=row.created_at,
            decided_at=row.decided_at,
        )
