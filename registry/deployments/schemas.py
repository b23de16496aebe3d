"""Request and response bodies of the API for deployments, revisions, rollout steps, serving
reports and controller decisions (pydantic v2, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from registry import refs
from registry.errors import InvalidName, InvalidReference
from registry.schemas import Strict, documented

_SIMPLE = documented(refs.SIMPLE_NAME_PATTERN)
_ADAPTER_REF = documented(refs.ADAPTER_REF_PATTERN, InvalidName, InvalidReference)
_BASE_REF = documented(refs.BASE_REF_PATTERN, InvalidName, InvalidReference)


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


def _count() -> Any:
    return Field(ge=0, le=10**12)


def _sum() -> Any:
    return Field(allow_inf_nan=False, ge=-1e300, le=1e300)


class BinaryStatsIn(Strict):
    """A per-unit binary metric: of ``units`` units, ``successes`` converted (at least once)."""

    kind: Literal["binary"]
    units: int = _count()
    successes: int = _count()


class RatioStatsIn(Strict):
    """A metric measured per request, randomized per unit: over the units i, x_i = the metric
    summed over unit i's requests, m_i = unit i's request count (a per-unit mean: m_i = 1)."""

    kind: Literal["ratio"]
    units: int = _count()
    sum_x: float = _sum()
    sum_x2: float = _sum()
    sum_m: float = _sum()
    sum_m2: float = _sum()
    sum_xm: float = _sum()


MetricStatsIn = Annotated[BinaryStatsIn | RatioStatsIn, Field(discriminator="kind")]
_METRIC_NAME = "^[a-z][a-z0-9_.-]{0,63}$"


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
    source: str = Field(
        "default",
        pattern="^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$",
        description="Which reporter's running totals these are (a gateway shard). Experiment "
        "statistics are cumulative since the revision started, per source; the readout sums "
        "the latest report of each source.",
    )
    units: int | None = Field(
        None,
        ge=0,
        le=10**12,
        description="Units (routing keys: users, tenants) this arm served since the revision "
        "started, cumulative per source (the sample-ratio-mismatch check counts them).",
    )
    metrics: dict[Annotated[str, Field(pattern=_METRIC_NAME)], MetricStatsIn] = Field(
        default_factory=dict,
        max_length=32,
        description="Experiment statistics per metric, cumulative since the revision started "
        "(docs/experiments.md).",
    )


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
