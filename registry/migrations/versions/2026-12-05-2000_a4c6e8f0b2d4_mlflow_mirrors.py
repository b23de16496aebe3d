"""MLflow mirrors: a deployment bound to an MLflow registered model.

Why: the mirror worker keeps the model's aliases (``prod-stable`` / ``prod-candidate``) and
tags in step with the deployment's revisions; the binding holds its audit cursor, the aliases
as last set (the reference for drift) and the last drift seen.

Locking: creates a new table; nothing existing is touched.

Downgrade: drops the table (the bindings are lost; MLflow keeps its aliases as they are).

Revision ID: a4c6e8f0b2d4
Revises: f3a9c1e5b7d2
Create Date: 2026-12-05 20:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "a4c6e8f0b2d4"
down_revision = "f3a9c1e5b7d2"
branch_labels = None
depends_on = None


def _json(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(
        name,
        sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
        nullable=nullable,
    )


def upgrade() -> None:
    op.create_table(
        "mlflow_mirrors",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("tracking_server", sa.String(length=512), nullable=False),
        sa.Column("model_name", sa.String(length=300), nullable=False),
        sa.Column("stable_alias", sa.String(length=255), nullable=False),
        sa.Column("candidate_alias", sa.String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("cursor", sa.BigInteger(), nullable=False),
        _json("last_set", nullable=False),
        _json("last_drift", nullable=True),
        sa.Column("last_error", sa.String(length=512), nullable=True),
        sa.Column("last_asserted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_mlflow_mirrors_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["principals.id"],
            name=op.f("fk_mlflow_mirrors_created_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_mirrors")),
        sa.UniqueConstraint("deployment_id", name=op.f("uq_mlflow_mirrors_deployment_id")),
    )


def downgrade() -> None:
    op.drop_table("mlflow_mirrors")
