"""Request and response bodies of the governance API: principals, tokens, publishers, policies,
deployments, promotions, audit (pydantic v2, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from registry.catalog import refs
from registry.catalog.refs import documented, refused_with
from registry.catalog.schemas import Strict
from registry.errors import BadRequest, InvalidName, InvalidReference
from registry.policy.types import ACTIONS

RoleName = Literal["viewer", "developer", "approver", "operator", "admin", "auditor"]

# Strings the services check by pattern (refused with invalid_name / invalid_reference, 400).
NamespaceName = Annotated[str, Field(json_schema_extra=documented(refs.SIMPLE_NAME_PATTERN))]
_SIMPLE = documented(refs.SIMPLE_NAME_PATTERN)
_PRINCIPAL = documented(refs.PRINCIPAL_PATTERN)
_ADAPTER_REF = documented(refs.ADAPTER_REF_PATTERN, InvalidName, InvalidReference)
_BASE_REF = documented(refs.BASE_REF_PATTERN, InvalidName, InvalidReference)


class PrincipalCreate(Strict):
    name: str = Field(max_length=128, json_schema_extra=_PRINCIPAL)
    role: RoleName
    kind: Literal["human", "service"] = "human"
    namespaces: list[NamespaceName] = Field(default_factory=list, max_length=100)
    ci_identity: str | None = Field(
        None,
        max_length=128,
        description="The CI login (e.g. GitHub actor) of this human.",
        json_schema_extra=documented(refs.CI_IDENTITY_PATTERN, BadRequest),
    )


class MembershipAdd(Strict):
    namespaces: list[NamespaceName] = Field(min_length=1, max_length=100)


class PrincipalRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    role: str
    namespaces: list[str]
    ci_identity: str | None
    created_at: datetime
    disabled: bool


class TokenCreate(Strict):
    principal: str | None = Field(
        None, max_length=128, description="Default: the caller.", json_schema_extra=_PRINCIPAL
    )
    name: str = Field("", max_length=128)
    ttl_days: int | None = Field(
        90,
        ge=1,
        le=366,
        description="Lifetime in days; null: never expires. Omitted: 90, or less so that the "
        "token does not outlive the calling token. An explicit value (or null) that would "
        "outlive the calling token is refused (403 token_exceeds_parent).",
    )
    scopes: list[str] | None = Field(
        None,
        max_length=32,
        description="Actions the token may use; null: every action. Omitted: the calling "
        "token's scopes. Scopes the calling token does not hold are refused (403 "
        "token_exceeds_parent).",
        json_schema_extra={
            "minItems": 1,
            "items": {"enum": list(ACTIONS)},
            **refused_with(BadRequest),
        },
    )


class TokenRead(BaseModel):
    id: uuid.UUID
    principal: str
    name: str
    scopes: list[str] | None
    expires_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class TokenIssued(TokenRead):
    token: str = Field(description="Shown once; only its sha256 is stored.")


class PublisherCreate(Strict):
    name: str = Field(max_length=64, json_schema_extra=_SIMPLE)
    kind: Literal["github", "gitlab"] = "github"
    issuer: str = Field(max_length=512)
    audience: str = Field(max_length=256)
    repository: str = Field(max_length=256)
    repository_owner_id: str = Field(max_length=64)
    workflow_ref: str = Field(
        max_length=512, description="OWNER/REPO/.github/workflows/FILE.yml (without @ref)."
    )
    ref: str | None = Field(None, max_length=256)
    environment: str | None = Field(None, max_length=128)
    require_protected_ref: bool = True
    principal: str = Field(max_length=128, json_schema_extra=_PRINCIPAL)
    namespaces: list[NamespaceName] = Field(min_length=1, max_length=50)


class PublisherRead(BaseModel):
    id: uuid.UUID
    name: str
    kind: str
    issuer: str
    audience: str
    repository: str
    repository_owner_id: str
    workflow_ref: str
    ref: str | None
    environment: str | None
    require_protected_ref: bool
    principal: str
    namespaces: list[str]
    created_at: datetime


class OidcTokenRead(BaseModel):
    token: str
    expires_at: datetime
    principal: str
    identity: dict[str, Any]


class PolicyApply(Strict):
    schema_text: str = Field(max_length=256 * 1024)
    policies_text: str = Field(max_length=1024 * 1024)
    gates_text: str = Field(max_length=256 * 1024)
    rollout_text: str = Field("", max_length=256 * 1024, description="rollout.yaml; '' = defaults")
    source: str = Field("", max_length=1024)


class PolicyRead(BaseModel):
    version: int
    digest: str
    source: str
    applied_at: datetime | None
    schema_text: str
    policies_text: str
    gates_text: str
    rollout_text: str


class DeploymentCreate(Strict):
    name: str = Field(max_length=64, json_schema_extra=_SIMPLE)
    base: str = Field(max_length=300, description="NAME@REVISION", json_schema_extra=_BASE_REF)
    adapter: str = Field(max_length=200, description="NS/NAME", json_schema_extra=_ADAPTER_REF)


class VersionSummaryRead(BaseModel):
    version: int
    digest: str
    ref: str
    state: str


class DeploymentRead(BaseModel):
    name: str
    namespace: str
    adapter: str
    base: str
    revision: int
    stable: VersionSummaryRead | None
    candidate: VersionSummaryRead | None
    share_bp: int
    created_at: datetime


class RevisionRead(BaseModel):
    revision: int
    stable_version: int | None
    candidate_version: int | None
    share_bp: int
    salt: str
    hash_spec: str
    reason: str
    detail: str
    promotion_id: uuid.UUID | None
    effective_at: datetime


class RolloutStep(Strict):
    share_bp: int = Field(ge=0, le=10000, description="Candidate share in basis points.")
    expected_revision: int | None = Field(None, ge=1, description="Or the If-Match header.")


class RollbackRequest(Strict):
    to_revision: int | None = Field(None, ge=1, description="Restore this revision's split.")
    expected_revision: int | None = Field(None, ge=1, description="Or the If-Match header.")


class ReportCreate(Strict):
    revision: int = Field(ge=1)
    arm: Literal["stable", "candidate"]
    window_start: datetime
    window_end: datetime
    requests: int = Field(ge=0, le=10**12)
    errors: int = Field(ge=0, le=10**12)
    latency_p50_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    latency_p95_ms: float | None = Field(None, ge=0, allow_inf_nan=False)
    scores: dict[str, float] = Field(default_factory=dict, max_length=32)


class ReportRead(BaseModel):
    id: uuid.UUID
    deployment: str
    revision: int
    arm: str
    version: int
    window_start: datetime
    window_end: datetime
    requests: int
    errors: int


class DecisionRead(BaseModel):
    id: uuid.UUID
    decided_at: datetime
    action: str
    reason: str
    step_index: int
    revision: int | None
    evidence: dict[str, Any]


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


class AuditEventRead(BaseModel):
    seq: int
    at: datetime
    actor: str | None
    action: str
    resource: str
    decision: dict[str, Any] | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    request_id: str | None
    prev_hash: str
    hash: str


class AuditVerifyRead(BaseModel):
    ok: bool
    events: int
    checkpoints: int
    first_bad_seq: int | None = None
    reason: str | None = None
    checkpoint_seq: int | None = Field(None, description="The checkpoint that failed, if one did.")
    bad_range: list[int] | None = Field(
        None,
        description="checkpoint_mismatch: [first, last] seq of the events holding the first edit "
        "(first == last when the edited event was located).",
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="no_checkpoints: nothing outside the database vouches for the log.",
    )
    last_checkpoint_seq: int | None = Field(
        None,
        description="The newest verified checkpoint's seq (events after it are anchored "
        "by nothing but the chain).",
    )


class CheckpointRead(BaseModel):
    seq: int
    hash: str
    at: datetime
    key_id: str
