"""Catalog tables: namespaces, base models, adapters, versions, files, datasets, lineage,
evaluations."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from registry.db.base import Base, CreatedAtMixin, IdMixin
from registry.db.types import JSONType, UTCDateTime


class VersionState(StrEnum):
    # Registered from a direct upload whose bytes the server has not hashed yet (not pullable,
    # not servable); the verification job moves it to validated or quarantined.
    verifying = "verifying"
    registered = "registered"
    validated = "validated"
    quarantined = "quarantined"
    archived = "archived"


class LineageRelation(StrEnum):
    trained_on = "trained_on"
    continued_from = "continued_from"
    merged_from = "merged_from"
    composed_from = "composed_from"
    aggregated_from = "aggregated_from"
    distilled_from = "distilled_from"
    rebased_from = "rebased_from"
    quantized_from = "quantized_from"


class Namespace(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "namespaces"

    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")


class BaseModel(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "base_models"

    name: Mapped[str] = mapped_column(String(200), unique=True)


class BaseModelVersion(IdMixin, CreatedAtMixin, Base):
    """One revision of a base model: config snapshot and weights manifest (headers only)."""

    __tablename__ = "base_model_versions"
    __table_args__ = (UniqueConstraint("base_model_id", "revision"),)

    base_model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("base_models.id"))
    revision: Mapped[str] = mapped_column(String(128))
    architecture: Mapped[str | None] = mapped_column(String(128), nullable=True)
    model_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config: Mapped[Any] = mapped_column(JSONType)
    manifest_digest: Mapped[str] = mapped_column(String(71))
    # The manifest itself (every tensor's dtype and shape) is a blob: it can be large.
    manifest_blob: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    tensor_count: Mapped[int] = mapped_column(Integer)
    parameter_count: Mapped[int] = mapped_column(BigInteger)
    tokenizer_digest: Mapped[str | None] = mapped_column(String(71), nullable=True)
    license: Mapped[str | None] = mapped_column(String(128), nullable=True)
    weights_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    registered_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))

    base_model: Mapped[BaseModel] = relationship(lazy="raise")


class StoredFileMixin:
    """The columns every stored file has besides its parent and name: the content's blob (by
    digest) and its size in bytes."""

    digest: Mapped[str] = mapped_column(ForeignKey("blobs.digest"))
    size: Mapped[int] = mapped_column(BigInteger)


class BaseModelFile(StoredFileMixin, IdMixin, Base):
    """A file stored with a base model version (config always; weights with --upload-weights)."""

    __tablename__ = "base_model_files"
    __table_args__ = (UniqueConstraint("base_model_version_id", "name"),)

    base_model_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("base_model_versions.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(255))


class Adapter(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "adapters"
    __table_args__ = (UniqueConstraint("namespace_id", "name"),)

    namespace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("namespaces.id"))
    name: Mapped[str] = mapped_column(String(128))
    description: Mapped[str] = mapped_column(Text, default="")
    # Allocation counter: the adapter row is locked, the counter bumped, the version inserted.
    latest_version: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    namespace: Mapped[Namespace] = relationship(lazy="raise")


class AdapterVersion(IdMixin, CreatedAtMixin, Base):
    """An immutable, numbered adapter version. Only ``state``, tags and description change."""

    __tablename__ = "adapter_versions"
    __table_args__ = (
        UniqueConstraint("adapter_id", "version"),
        # Natural idempotency: the same content cannot become two versions of one adapter.
        UniqueConstraint("adapter_id", "digest"),
        CheckConstraint("version >= 1", name="version_positive"),
        Index("ix_adapter_versions_adapter_state_version", "adapter_id", "state", "version"),
        Index("ix_adapter_versions_adapter_peft_version", "adapter_id", "peft_type", "version"),
        Index("ix_adapter_versions_adapter_r_version", "adapter_id", "r", "version"),
        Index("ix_adapter_versions_base_model_version_id", "base_model_version_id"),
        Index("ix_adapter_versions_digest", "digest"),
    )

    adapter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapters.id"))
    version: Mapped[int] = mapped_column(Integer)
    digest: Mapped[str] = mapped_column(String(71))
    state: Mapped[str] = mapped_column(String(16), default=VersionState.registered)
    base_model_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("base_model_versions.id"))
    peft_type: Mapped[str] = mapped_column(String(32))
    task_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    r: Mapped[int | None] = mapped_column(Integer, nullable=True)
    lora_alpha: Mapped[float | None] = mapped_column(Float, nullable=True)
    target_modules: Mapped[Any] = mapped_column(JSONType)
    rank_pattern: Mapped[Any] = mapped_column(JSONType)
    use_dora: Mapped[bool] = mapped_column(Boolean, default=False)
    use_rslora: Mapped[bool] = mapped_column(Boolean, default=False)
    modules_to_save: Mapped[Any] = mapped_column(JSONType)
    dtype: Mapped[str | None] = mapped_column(String(16), nullable=True)
    trainable_params: Mapped[int] = mapped_column(BigInteger, default=0)
    config: Mapped[Any] = mapped_column(JSONType)
    validation_report: Mapped[Any] = mapped_column(JSONType)
    description: Mapped[str] = mapped_column(Text, default="")
    registered_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
    git_commit: Mapped[str | None] = mapped_column(String(64), nullable=True)
    mlflow_run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    training_base_dtype: Mapped[str | None] = mapped_column(String(32), nullable=True)
    quantization: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ci_identity: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # The CI identity's ``actor``, lower-cased: the human who "owns" a CI registration (four-eyes).
    ci_actor: Mapped[str | None] = mapped_column(String(128), nullable=True)
    source_uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)

    adapter: Mapped[Adapter] = relationship(lazy="raise")


class VersionFile(StoredFileMixin, IdMixin, Base):
    """A file published with an adapter version."""

    __tablename__ = "version_files"
    __table_args__ = (UniqueConstraint("adapter_version_id", "name"),)

    adapter_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(128))


class VersionTag(IdMixin, CreatedAtMixin, Base):
    """A label on a version. ``adapter_id`` and ``version`` are copied from the (immutable)
    version so that "versions of A tagged T, newest first" is one backward index range scan."""

    __tablename__ = "version_tags"
    __table_args__ = (
        UniqueConstraint("adapter_version_id", "tag"),
        Index("ix_version_tags_adapter_tag_version", "adapter_id", "tag", "version"),
    )

    adapter_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="CASCADE")
    )
    adapter_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("adapters.id"))
    version: Mapped[int] = mapped_column(Integer)
    tag: Mapped[str] = mapped_column(String(64))


class Dataset(IdMixin, CreatedAtMixin, Base):
    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("name", "digest"),)

    name: Mapped[str] = mapped_column(String(200))
    digest: Mapped[str] = mapped_column(String(71))
    uri: Mapped[str | None] = mapped_column(String(1024), nullable=True)


class VersionDataset(IdMixin, Base):
    __tablename__ = "version_datasets"
    __table_args__ = (UniqueConstraint("adapter_version_id", "dataset_id"),)

    adapter_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="CASCADE")
    )
    dataset_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("datasets.id"))


class LineageEdge(IdMixin, CreatedAtMixin, Base):
    """A typed, directed edge: the child (an adapter version, or a base model version such as a
    merged checkpoint) was made from a parent adapter version or base version."""

    __tablename__ = "lineage_edges"
    __table_args__ = (
        CheckConstraint(
            "(parent_version_id IS NULL) <> (parent_base_version_id IS NULL)",
            name="one_parent",
        ),
        CheckConstraint(
            "(child_version_id IS NULL) <> (child_base_version_id IS NULL)",
            name="one_child",
        ),
        Index("ix_lineage_edges_child_version_id", "child_version_id"),
        Index("ix_lineage_edges_child_base_version_id", "child_base_version_id"),
        Index("ix_lineage_edges_parent_version_id", "parent_version_id"),
        Index("ix_lineage_edges_parent_base_version_id", "parent_base_version_id"),
    )

    child_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="CASCADE"), nullable=True
    )
    child_base_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("base_model_versions.id", ondelete="CASCADE"), nullable=True
    )
    relation: Mapped[str] = mapped_column(String(32))
    parent_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("adapter_versions.id"), nullable=True
    )
    parent_base_version_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("base_model_versions.id"), nullable=True
    )
    recipe: Mapped[Any] = mapped_column(JSONType, nullable=True)


class Evaluation(IdMixin, CreatedAtMixin, Base):
    """A score bound to the full tuple (version, base version, suite, metric, dataset digest)."""

    __tablename__ = "evaluations"
    __table_args__ = (
        Index("ix_evaluations_version_suite_metric", "adapter_version_id", "suite", "metric"),
    )

    adapter_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("adapter_versions.id", ondelete="CASCADE")
    )
    base_model_version_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("base_model_versions.id"))
    suite: Mapped[str] = mapped_column(String(128))
    metric: Mapped[str] = mapped_column(String(128))
    value: Mapped[float] = mapped_column(Float)
    higher_is_better: Mapped[bool] = mapped_column(Boolean, default=True)
    dataset_digest: Mapped[str | None] = mapped_column(String(71), nullable=True)
    harness_version: Mapped[str | None] = mapped_column(String(64), nullable=True)
    source: Mapped[str | None] = mapped_column(String(256), nullable=True)
    evaluated_on: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("principals.id"))
