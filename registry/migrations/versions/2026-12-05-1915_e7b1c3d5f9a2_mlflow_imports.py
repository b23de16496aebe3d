"""MLflow imports: where an imported adapter version came from (``mlflow_imports``).

Why: ``adapters import --from-mlflow`` registers an adapter fetched from an MLflow tracking
server. The version must record its source (server, URI, run id, logged model, resolved artifact
path, the files fetched) and the provenance of the run metrics recorded as evaluations (key,
step, timestamp); the (adapter, server, resolved location) key makes a re-import answer the
version it made the first time.

Locking: a new table; no lock on existing tables beyond the foreign key checks of its inserts.

Downgrade: drops the table (the versions and their evaluations stay; only the record of their
MLflow source is lost).

Revision ID: e7b1c3d5f9a2
Revises: e7b1d3f5a9c2
Create Date: 2026-12-05 19:15:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "e7b1c3d5f9a2"
down_revision = "e7b1d3f5a9c2"
branch_labels = None
depends_on = None


def _json(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=False,
    )


def upgrade() -> None:
    op.create_table(
        "mlflow_imports",
        sa.Column("adapter_id", sa.Uuid(), nullable=False),
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("tracking_server", sa.String(length=512), nullable=False),
        sa.Column("source_uri", sa.String(length=1024), nullable=False),
        sa.Column("location", sa.String(length=1024), nullable=False),
        sa.Column("run_id", sa.String(length=64), nullable=True),
        sa.Column("model_id", sa.String(length=64), nullable=True),
        sa.Column("model_version", sa.String(length=300), nullable=True),
        sa.Column("artifact_path", sa.String(length=1024), nullable=False),
        _json("files"),
        _json("metrics"),
        sa.Column("imported_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_id"], ["adapters.id"], name=op.f("fk_mlflow_imports_adapter_id_adapters")
        ),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_mlflow_imports_adapter_version_id_adapter_versions"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["imported_by_id"],
            ["principals.id"],
            name=op.f("fk_mlflow_imports_imported_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_imports")),
        sa.UniqueConstraint(
            "adapter_id",
            "tracking_server",
            "location",
            name=op.f("uq_mlflow_imports_adapter_id_tracking_server_location"),
        ),
    )
    with op.batch_alter_table("mlflow_imports", schema=None) as batch_op:
        batch_op.create_index("ix_mlflow_imports_version", ["adapter_version_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("mlflow_imports", schema=None) as batch_op:
        batch_op.drop_index("ix_mlflow_imports_version")
    op.drop_table("mlflow_imports")
