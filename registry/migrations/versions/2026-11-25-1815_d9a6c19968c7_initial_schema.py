"""Initial catalog schema: namespaces, principals/tokens, base models, adapters, versions,
files, blobs, datasets, lineage, evaluations, upload sessions, idempotency records.

Why: the first schema of the catalog (issue 3).

Locking: creates empty tables only; nothing existing is locked or rewritten.

Downgrade: drops every table (all data is lost); only meant for tests and fresh installs.

Types are spelled with plain SQLAlchemy types (not the live registry.db.types) so the revision
keeps meaning the same thing when application code changes later.

Revision ID: d9a6c19968c7
Revises:
Create Date: 2026-11-25 18:15:25.300484+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "d9a6c19968c7"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "base_models",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_models")),
        sa.UniqueConstraint("name", name=op.f("uq_base_models_name")),
    )
    op.create_table(
        "blobs",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_blobs")),
    )
    op.create_table(
        "datasets",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("uri", sa.String(length=1024), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_datasets")),
        sa.UniqueConstraint("name", "digest", name=op.f("uq_datasets_name_digest")),
    )
    op.create_table(
        "namespaces",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_namespaces")),
        sa.UniqueConstraint("name", name=op.f("uq_namespaces_name")),
    )
    op.create_table(
        "principals",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_principals")),
        sa.UniqueConstraint("name", name=op.f("uq_principals_name")),
    )
    op.create_table(
        "adapters",
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"], ["namespaces.id"], name=op.f("fk_adapters_namespace_id_namespaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapters")),
        sa.UniqueConstraint("namespace_id", "name", name=op.f("uq_adapters_namespace_id_name")),
    )
    op.create_table(
        "api_tokens",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_api_tokens_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_api_tokens_token_hash")),
    )
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_api_tokens_principal_id", ["principal_id"], unique=False)

    op.create_table(
        "base_model_versions",
        sa.Column("base_model_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.String(length=128), nullable=False),
        sa.Column("architecture", sa.String(length=128), nullable=True),
        sa.Column("model_type", sa.String(length=64), nullable=True),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("manifest_digest", sa.String(length=71), nullable=False),
        sa.Column("manifest_blob", sa.String(length=64), nullable=False),
        sa.Column("tensor_count", sa.Integer(), nullable=False),
        sa.Column("parameter_count", sa.BigInteger(), nullable=False),
        sa.Column("tokenizer_digest", sa.String(length=71), nullable=True),
        sa.Column("license", sa.String(length=128), nullable=True),
        sa.Column("weights_uri", sa.String(length=1024), nullable=True),
        sa.Column("registered_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_model_id"],
            ["base_models.id"],
            name=op.f("fk_base_model_versions_base_model_id_base_models"),
        ),
        sa.ForeignKeyConstraint(
            ["manifest_blob"],
            ["blobs.digest"],
            name=op.f("fk_base_model_versions_manifest_blob_blobs"),
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"],
            ["principals.id"],
            name=op.f("fk_base_model_versions_registered_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_model_versions")),
        sa.UniqueConstraint(
            "base_model_id", "revision", name=op.f("uq_base_model_versions_base_model_id_revision")
        ),
    )
    op.create_table(
        "idempotency_records",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=False),
        sa.Column(
            "response",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_idempotency_records_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_idempotency_records")),
        sa.UniqueConstraint(
            "principal_id", "key", name=op.f("uq_idempotency_records_principal_id_key")
        ),
    )
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.create_index("ix_idempotency_records_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "upload_sessions",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_upload_sessions_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_sessions")),
    )
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.create_index("ix_upload_sessions_expires_at", ["expires_at"], unique=False)

    op.create_table(
        "adapter_versions",
        sa.Column("adapter_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("base_model_version_id", sa.Uuid(), nullable=False),
        sa.Column("peft_type", sa.String(length=32), nullable=False),
        sa.Column("task_type", sa.String(length=32), nullable=True),
        sa.Column("r", sa.Integer(), nullable=True),
        sa.Column("lora_alpha", sa.Float(), nullable=True),
        sa.Column(
            "target_modules",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "rank_pattern",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("use_dora", sa.Boolean(), nullable=False),
        sa.Column("use_rslora", sa.Boolean(), nullable=False),
        sa.Column(
            "modules_to_save",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("dtype", sa.String(length=16), nullable=True),
        sa.Column("trainable_params", sa.BigInteger(), nullable=False),
        sa.Column(
            "config",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "validation_report",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("registered_by_id", sa.Uuid(), nullable=False),
        sa.Column("git_commit", sa.String(length=64), nullable=True),
        sa.Column("mlflow_run_id", sa.String(length=64), nullable=True),
        sa.Column("training_base_dtype", sa.String(length=32), nullable=True),
        sa.Column("quantization", sa.String(length=32), nullable=True),
        sa.Column(
            "ci_identity",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("source_uri", sa.String(length=1024), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("version >= 1", name=op.f("ck_adapter_versions_version_positive")),
        sa.ForeignKeyConstraint(
            ["adapter_id"], ["adapters.id"], name=op.f("fk_adapter_versions_adapter_id_adapters")
        ),
        sa.ForeignKeyConstraint(
            ["base_model_version_id"],
            ["base_model_versions.id"],
            name=op.f("fk_adapter_versions_base_model_version_id_base_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"],
            ["principals.id"],
            name=op.f("fk_adapter_versions_registered_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_adapter_versions")),
        sa.UniqueConstraint(
            "adapter_id", "digest", name=op.f("uq_adapter_versions_adapter_id_digest")
        ),
        sa.UniqueConstraint(
            "adapter_id", "version", name=op.f("uq_adapter_versions_adapter_id_version")
        ),
    )
    with op.batch_alter_table("adapter_versions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_adapter_versions_adapter_peft_version",
            ["adapter_id", "peft_type", "version"],
            unique=False,
        )
        batch_op.create_index(
            "ix_adapter_versions_adapter_r_version", ["adapter_id", "r", "version"], unique=False
        )
        batch_op.create_index(
            "ix_adapter_versions_adapter_state_version",
            ["adapter_id", "state", "version"],
            unique=False,
        )
        batch_op.create_index(
            "ix_adapter_versions_base_model_version_id", ["base_model_version_id"], unique=False
        )
        batch_op.create_index("ix_adapter_versions_digest", ["digest"], unique=False)

    op.create_table(
        "base_model_files",
        sa.Column("base_model_version_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["base_model_version_id"],
            ["base_model_versions.id"],
            name=op.f("fk_base_model_files_base_model_version_id_base_model_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["digest"], ["blobs.digest"], name=op.f("fk_base_model_files_digest_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_base_model_files")),
        sa.UniqueConstraint(
            "base_model_version_id",
            "name",
            name=op.f("uq_base_model_files_base_model_version_id_name"),
        ),
    )
    op.create_table(
        "upload_files",
        sa.Column("session_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("part", sa.Integer(), nullable=False),
        sa.Column("staging_key", sa.String(length=512), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["upload_sessions.id"],
            name=op.f("fk_upload_files_session_id_upload_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_upload_files")),
        sa.UniqueConstraint("session_id", "name", name=op.f("uq_upload_files_session_id_name")),
    )
    op.create_table(
        "evaluations",
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("base_model_version_id", sa.Uuid(), nullable=False),
        sa.Column("suite", sa.String(length=128), nullable=False),
        sa.Column("metric", sa.String(length=128), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("higher_is_better", sa.Boolean(), nullable=False),
        sa.Column("dataset_digest", sa.String(length=71), nullable=True),
        sa.Column("harness_version", sa.String(length=64), nullable=True),
        sa.Column("source", sa.String(length=256), nullable=True),
        sa.Column("evaluated_on", sa.String(length=64), nullable=True),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_evaluations_adapter_version_id_adapter_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["base_model_version_id"],
            ["base_model_versions.id"],
            name=op.f("fk_evaluations_base_model_version_id_base_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["principals.id"],
            name=op.f("fk_evaluations_recorded_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evaluations")),
    )
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_evaluations_version_suite_metric",
            ["adapter_version_id", "suite", "metric"],
            unique=False,
        )

    op.create_table(
        "lineage_edges",
        sa.Column("child_version_id", sa.Uuid(), nullable=False),
        sa.Column("relation", sa.String(length=32), nullable=False),
        sa.Column("parent_version_id", sa.Uuid(), nullable=True),
        sa.Column("parent_base_version_id", sa.Uuid(), nullable=True),
        sa.Column(
            "recipe",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "(parent_version_id IS NULL) <> (parent_base_version_id IS NULL)",
            name=op.f("ck_lineage_edges_one_parent"),
        ),
        sa.ForeignKeyConstraint(
            ["child_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_lineage_edges_child_version_id_adapter_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["parent_base_version_id"],
            ["base_model_versions.id"],
            name=op.f("fk_lineage_edges_parent_base_version_id_base_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["parent_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_lineage_edges_parent_version_id_adapter_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lineage_edges")),
    )
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.create_index(
            "ix_lineage_edges_child_version_id", ["child_version_id"], unique=False
        )
        batch_op.create_index(
            "ix_lineage_edges_parent_base_version_id", ["parent_base_version_id"], unique=False
        )
        batch_op.create_index(
            "ix_lineage_edges_parent_version_id", ["parent_version_id"], unique=False
        )

    op.create_table(
        "version_datasets",
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("dataset_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_version_datasets_adapter_version_id_adapter_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["dataset_id"], ["datasets.id"], name=op.f("fk_version_datasets_dataset_id_datasets")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_datasets")),
        sa.UniqueConstraint(
            "adapter_version_id",
            "dataset_id",
            name=op.f("uq_version_datasets_adapter_version_id_dataset_id"),
        ),
    )
    op.create_table(
        "version_files",
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_version_files_adapter_version_id_adapter_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["digest"], ["blobs.digest"], name=op.f("fk_version_files_digest_blobs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_files")),
        sa.UniqueConstraint(
            "adapter_version_id", "name", name=op.f("uq_version_files_adapter_version_id_name")
        ),
    )
    op.create_table(
        "version_tags",
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("adapter_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=64), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_version_tags_adapter_version_id_adapter_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["adapter_id"], ["adapters.id"], name=op.f("fk_version_tags_adapter_id_adapters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_version_tags")),
        sa.UniqueConstraint(
            "adapter_version_id", "tag", name=op.f("uq_version_tags_adapter_version_id_tag")
        ),
    )
    with op.batch_alter_table("version_tags", schema=None) as batch_op:
        batch_op.create_index(
            "ix_version_tags_adapter_tag_version", ["adapter_id", "tag", "version"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("version_tags", schema=None) as batch_op:
        batch_op.drop_index("ix_version_tags_adapter_tag_version")

    op.drop_table("version_tags")
    op.drop_table("version_files")
    op.drop_table("version_datasets")
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_edges_parent_version_id")
        batch_op.drop_index("ix_lineage_edges_parent_base_version_id")
        batch_op.drop_index("ix_lineage_edges_child_version_id")

    op.drop_table("lineage_edges")
    with op.batch_alter_table("evaluations", schema=None) as batch_op:
        batch_op.drop_index("ix_evaluations_version_suite_metric")

    op.drop_table("evaluations")
    op.drop_table("upload_files")
    op.drop_table("base_model_files")
    with op.batch_alter_table("adapter_versions", schema=None) as batch_op:
        batch_op.drop_index("ix_adapter_versions_digest")
        batch_op.drop_index("ix_adapter_versions_base_model_version_id")
        batch_op.drop_index("ix_adapter_versions_adapter_state_version")
        batch_op.drop_index("ix_adapter_versions_adapter_r_version")
        batch_op.drop_index("ix_adapter_versions_adapter_peft_version")

    op.drop_table("adapter_versions")
    with op.batch_alter_table("upload_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_upload_sessions_expires_at")

    op.drop_table("upload_sessions")
    with op.batch_alter_table("idempotency_records", schema=None) as batch_op:
        batch_op.drop_index("ix_idempotency_records_expires_at")

    op.drop_table("idempotency_records")
    op.drop_table("base_model_versions")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index("ix_api_tokens_principal_id")

    op.drop_table("api_tokens")
    op.drop_table("adapters")
    op.drop_table("principals")
    op.drop_table("namespaces")
    op.drop_table("datasets")
    op.drop_table("blobs")
    op.drop_table("base_models")
