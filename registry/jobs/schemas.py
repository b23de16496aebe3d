"""Request and response bodies of the jobs API: one strict body per kind of job (``kind`` picks
it), bounded lists and numbers, and the read model of a job."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, RootModel

from registry import refs
from registry.errors import InvalidName, InvalidReference
from registry.schemas import Strict, documented

MAX_INPUTS = 64  # adapters one compose or aggregate job combines
MAX_RANK = 65_536
_METHOD = Field(pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32)
_ADAPTER_REF = documented(refs.ADAPTER_REF_PATTERN, InvalidName, InvalidReference)
TARGET_PATTERN = rf"^{refs.SIMPLE_NAME_PATTERN[1:-1]}/{refs.SIMPLE_NAME_PATTERN[1:-1]}$"
Target = Annotated[
    str,
    Field(
        max_length=130,
        description="NS/NAME of the adapter the result becomes the next version of (created on "
        "its first version).",
        json_schema_extra=documented(TARGET_PATTERN, InvalidName),
    ),
]
InputRef = Annotated[
    str,
    Field(
        max_length=300,
        description="NS/NAME@vN, NS/NAME@sha256:... or NS/NAME (latest, resolved when the job is "
        "created).",
        json_schema_extra=_ADAPTER_REF,
    ),
]


class JobInput(Strict):
    ref: InputRef
    weight: float


class WeightedInput(JobInput):
    weight: float = Field(
        1.0, ge=-1e6, le=1e6, allow_inf_nan=False, description="The input's coefficient."
    )


class SiteInput(JobInput):
    weight: float = Field(
        1.0, gt=0, le=1e12, allow_inf_nan=False, description="The site's sample count."
    )


class ComposeJob(Strict):
    """Combine adapters of one base into one (peft's ``add_weighted_adapter`` methods)."""

    kind: Literal["compose"]
    target: Target
    inputs: list[WeightedInput] = Field(min_length=1, max_length=MAX_INPUTS)
    method: str = _METHOD
    rank: int | None = Field(None, ge=1, le=MAX_RANK, description="Rank of SVD methods.")
    density: float | None = Field(None, gt=0, le=1, description="Kept share (ties, dare, ...).")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Seed of random methods.")
    majority_sign_method: Literal["total", "frequency"] = "total"


class AggregateJob(Strict):
    """Combine federated sites' adapters (exact stacking, FedAvg, robust rules)."""

    kind: Literal["aggregate"]
    target: Target
    inputs: list[SiteInput] = Field(min_length=1, max_length=MAX_INPUTS)
    method: str = Field("stack", pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32)
    robust: str = Field("none", pattern=r"^[a-z][a-z0-9_]{0,31}$", max_length=32)
    max_rank: int | None = Field(None, ge=1, le=MAX_RANK)


class MergeJob(Strict):
    """Fold one adapter into its base's stored weights: a new base model version."""

    kind: Literal["merge"]
    inputs: list[WeightedInput] = Field(min_length=1, max_length=1)
    register_as: str = Field(
        max_length=201,
        description="Name of the base model the merged checkpoint is registered as.",
        json_schema_extra=documented(refs.BASE_NAME_PATTERN),
    )
    revision: str = Field(
        "main", max_length=128, json_schema_extra=documented(refs.REVISION_PATTERN)
    )
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"


class JobCreate(
    RootModel[Annotated[ComposeJob | AggregateJob | MergeJob, Field(discriminator="kind")]]
):
    """The body of ``POST /api/v1/jobs``: ``kind`` says which of the three it is."""


class JobError(BaseModel):
    """Why a job failed: the stable code of the error, as the API would have answered it."""

    code: str
    detail: str
    context: dict[str, Any] = Field(default_factory=dict)


class JobRead(BaseModel):
    id: uuid.UUID
    kind: str
    state: str = Field(description="queued, running, succeeded, failed or cancelled.")
    target: str
    params: dict[str, Any] = Field(description="The request as accepted, inputs resolved.")
    progress_done: int
    progress_total: int
    cancel_requested: bool
    result: dict[str, Any] | None = Field(
        None, description="Succeeded: the registered version's ref and digest, and the recipe."
    )
    error: JobError | None = None
    created_by: str
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
