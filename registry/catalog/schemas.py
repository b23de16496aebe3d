"""Request and response bodies of the catalog API (pydantic v2, unknown fields refused)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from registry import refs
from registry.catalog.models import LineageRelation
from registry.errors import BadRequest, InvalidName, InvalidReference
from registry.schemas import FileRead, Read, Strict, documented, refused_with

# Strings the services check by pattern (refused with invalid_name / invalid_reference, 400).
_SIMPLE = documented(refs.SIMPLE_NAME_PATTERN)
_DIGEST = documented(refs.DIGEST_PATTERN, InvalidReference)
_BAD_REQUEST = refused_with(BadRequest)
Tag = Annotated[str, Field(json_schema_extra=documented(refs.TAG_PATTERN))]


# --- namespaces ------------------------------------------------------------------------------


class NamespaceCreate(Strict):
    name: str = Field(max_length=64, json_schema_extra=_SIMPLE)
    description: str = Field("", max_length=2000)


class NamespaceRead(Read):
    name: str
    description: str
    created_at: datetime


# --- base models -----------------------------------------------------------------------------


class TensorSpec(Strict):
    dtype: str = Field(max_length=16)
    shape: list[int] = Field(max_length=16)


class ParentIn(Strict):
    ref: str = Field(
        max_length=300,
        description="NS/NAME@vN or NS/NAME@sha256:... or BASE@REV",
        json_schema_extra=documented(
            refs.ADAPTER_OR_BASE_REF_PATTERN, InvalidName, InvalidReference
        ),
    )
    relation: str = Field(
        max_length=32,
        json_schema_extra={"enum": [r.value for r in LineageRelation], **_BAD_REQUEST},
    )
    recipe: dict[str, Any] | None = None
    kind: Literal["adapter_version", "base_model_version"] | None = Field(
        None,
        description="What ref names; default: a base model version for trained_on, an adapter "
        "version otherwise.",
    )


class BaseModelVersionCreate(Strict):
    name: str = Field(max_length=201, json_schema_extra=documented(refs.BASE_NAME_PATTERN))
    revision: str = Field(max_length=128, json_schema_extra=documented(refs.REVISION_PATTERN))
    config: dict[str, Any] = Field(
        default_factory=dict, description="config.json (optional with upload_id: read from it)."
    )
    tensors: dict[str, TensorSpec] = Field(
        default_factory=dict, description="Weights manifest read from safetensors headers."
    )
    upload_id: uuid.UUID | None = Field(
        None, description="Upload session holding the weights (--upload-weights)."
    )
    license: str | None = Field(None, max_length=128)
    weights_uri: str | None = Field(None, max_length=1024)
    tokenizer_digest: str | None = Field(None, max_length=71, json_schema_extra=_DIGEST)
    parents: list[ParentIn] = Field(
        default_factory=list,
        max_length=100,
        description="Lineage: what this checkpoint was made from (merged_from an adapter version "
        "and a base version, quantized_from a base version).",
    )


class BaseModelVersionRead(BaseModel):
    name: str
    revision: str
    architecture: str | None
    model_type: str | None
    manifest_digest: str
    tensor_count: int
    parameter_count: int
    license: str | None
    weights_uri: str | None
    tokenizer_digest: str | None
    created_at: datetime
    files: list[FileRead] = Field(default_factory=list)
    config: dict[str, Any] | None = None


class BaseModelRead(BaseModel):
    name: str
    created_at: datetime
    revisions: list[str]


# --- adapter versions ------------------------------------------------------------------------


class DatasetIn(Strict):
    name: str = Field(max_length=200, json_schema_extra=documented(refs.SUITE_PATTERN))
    digest: str = Field(max_length=71, json_schema_extra=_DIGEST)
    uri: str | None = Field(None, max_length=1024)


class VersionCreate(Strict):
    base: str = Field(
        max_length=330,
        description="NAME@REVISION of a registered base model.",
        json_schema_extra=documented(refs.BASE_REF_PATTERN, InvalidName, InvalidReference),
    )
    upload_id: uuid.UUID | None = None
    source_uri: str | None = Field(
        None, max_length=1024, description="s3://bucket/prefix/ inside the import allow-list."
    )
    description: str = Field("", max_length=10_000)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=100)
    parents: list[ParentIn] = Field(default_factory=list, max_length=100)
    git_commit: str | None = Field(None, max_length=64, pattern=r"^[0-9a-f]{7,64}$")
    mlflow_run_id: str | None = Field(None, max_length=64, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    training_base_dtype: str | None = Field(None, max_length=32)
    quantization: str | None = Field(None, max_length=32)


class DatasetRead(Read):
    name: str
    digest: str
    uri: str | None


class VersionRead(BaseModel):
    namespace: str
    adapter: str
    version: int
    ref: str
    digest: str
    state: str
    base: str
    peft_type: str
    method: str = Field(
        description="The method in words, the LoRA variant included (e.g. 'Weight-Decomposed "
        "Low-Rank Adaptation (DoRA)' for LORA with use_dora)."
    )
    method_family: str = Field(description="lora, vector, orthogonal, bias, sparse, prompt, ...")
    task_type: str | None
    r: int | None
    lora_alpha: float | None
    target_modules: list[str] | str | None
    rank_pattern: dict[str, Any] | None
    use_dora: bool
    use_rslora: bool
    modules_to_save: list[str] | None
    dtype: str | None
    trainable_params: int
    size: int = Field(description="Total bytes of the version's files.")
    description: str
    tags: list[str]
    registered_by: str
    ci_identity: dict[str, str | None] | None = Field(
        None,
        description="The verified CI identity that registered it (trusted publishing): "
        "issuer, repository, workflow_ref, sha, run_id, actor, ...",
    )
    git_commit: str | None
    mlflow_run_id: str | None
    training_base_dtype: str | None
    quantization: str | None
    trained_on: str | None = Field(
        None,
        description="The quantized base revision (NAME@REV) it was trained on, when it declared "
        "one (QLoRA: lineage trained_on a base quantized_from its own base); detail views only.",
    )
    source_uri: str | None
    created_at: datetime
    archived_at: datetime | None
    files: list[FileRead] = Field(default_factory=list)
    datasets: list[DatasetRead] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    verification: dict[str, Any] | None = Field(
        None,
        description="Direct uploads: the server's check of the stored bytes ({verified, and "
        "reason/file/digest/actual when quarantined}); null until checked or when not direct.",
    )
    serving_name: str


class AdapterRead(BaseModel):
    namespace: str
    name: str
    description: str
    latest_version: int
    created_at: datetime


class TagsUpdate(Strict):
    add: list[Tag] = Field(default_factory=list, max_length=50)
    remove: list[Tag] = Field(default_factory=list, max_length=50)


class ArchiveRequest(Strict):
    reason: str = Field("", max_length=2000)


class LineageEdgeRead(BaseModel):
    child: str
    child_kind: str = Field(description="adapter_version or base_model_version")
    relation: str
    parent: str
    parent_kind: str
    depth: int
    recipe: dict[str, Any] | None = None


# --- evaluations -----------------------------------------------------------------------------


class EvaluationCreate(Strict):
    suite: str = Field(max_length=128, json_schema_extra=documented(refs.SUITE_PATTERN))
    metric: str = Field(max_length=128, json_schema_extra=documented(refs.SUITE_PATTERN))
    value: float = Field(allow_inf_nan=False)
    higher_is_better: bool = True
    dataset_digest: str | None = Field(None, max_length=71, json_schema_extra=_DIGEST)
    harness_version: str | None = Field(None, max_length=64)
    source: str | None = Field(None, max_length=256)
    evaluated_on: str | None = Field(
        None, max_length=64, description="Base view the eval ran on, e.g. bf16 or nf4."
    )


class EvaluationRead(BaseModel):
    id: uuid.UUID
    ref: str
    base: str
    suite: str
    metric: str
    value: float
    higher_is_better: bool
    dataset_digest: str | None
    harness_version: str | None
    source: str | None
    evaluated_on: str | None
    recorded_by: str
    created_at: datetime


class ComparisonRow(BaseModel):
    suite: str
    metric: str
    dataset_digest: str | None
    higher_is_better: bool
    a: float | None
    b: float | None
    delta: float | None
    better: str | None = Field(description="'a', 'b', 'same' or null when one side is missing")


class ComparisonRead(BaseModel):
    a: str
    b: str
    rows: list[ComparisonRow]
