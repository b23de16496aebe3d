"""Rollouts: canary progress per candidate, controller decisions with evidence, serving
reports, the routing epoch replicas poll, and rollout plans in policy sets.

Why: sticky canary rollouts, automatic rollback and the serving resolve path (issue 5).

Locking: creates new tables; adds a column with a constant server default to policy_sets
(PostgreSQL 11+: no rewrite; SQLite: batch copy of a small table).

Downgrade: drops the new tables and policy_sets.rollout_text (rollout history, reports and
decisions are lost; deployment revisions stay).

Types are spelled with plain SQLAlchemy types so the revision keeps its meaning.

Revision ID: e5d7c9a1b3f2
Revises: b2f4e6a8c0d1
Create Date: 2026-11-25 20:43:34.348638+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "e5d7c9a1b3f2"
down_revision = "b2f4e6a8c0d1"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "routing_epoch",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_routing_epoch")),
    )
    op.execute(sa.text("INSERT INTO routing_epoch (id, epoch) VALUES (1, 0)"))
    op.create_table(
        "serving_reports",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("requests", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("latency_p50_ms", sa.Float(), nullable=True),
        sa.Column("latency_p95_ms", sa.Float(), nullable=True),
        sa.Column(
            "scores",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("reported_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "requests >= 0 AND errors >= 0 AND errors <= requests",
            name=op.f("ck_serving_reports_counts"),
        ),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_serving_reports_adapter_version_id_adapter_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_serving_reports_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reported_by_id"],
            ["principals.id"],
            name=op.f("fk_serving_reports_reported_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_serving_reports")),
    )
    with op.batch_alter_table("serving_reports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_serving_reports_deployment_revision_arm",
            ["deployment_id", "revision", "arm"],
            unique=False,
        )

    op.create_table(
        "rollouts",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("promotion_id", sa.Uuid(), nullable=True),
        sa.Column("candidate_version_id", sa.Uuid(), nullable=False),
        sa.Column("plan_name", sa.String(length=64), nullable=False),
        sa.Column(
            "plan",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("step_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("reports_seen", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_rollouts_candidate_version_id_adapter_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_rollouts_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotion_requests.id"],
            name=op.f("fk_rollouts_promotion_id_promotion_requests"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollouts")),
    )
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollouts_deployment_created", ["deployment_id", "created_at"], unique=False
        )
        batch_op.create_index("ix_rollouts_state", ["state"], unique=False)

    op.create_table(
        "rollout_decisions",
        sa.Column("rollout_id", sa.Uuid(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=200), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column(
            "evidence",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["rollout_id"],
            ["rollouts.id"],
            name=op.f("fk_rollout_decisions_rollout_id_rollouts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_decisions")),
    )
    with op.batch_alter_table("rollout_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_rollout_decisions_rollout_decided", ["rollout_id", "decided_at"], unique=False
        )

    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("plan_name", sa.String(length=64), nullable=False, server_default="canary")
        )
        batch_op.add_column(
            sa.Column(
                "plan_spec",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )

    with op.batch_alter_table("policy_sets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rollout_text", sa.Text(), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("policy_sets", schema=None) as batch_op:
        batch_op.drop_column("rollout_text")

    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.drop_column("plan_spec")
        batch_op.drop_column("plan_name")

    with op.batch_alter_table("rollout_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_rollout_decisions_rollout_decided")

    op.drop_table("rollout_decisions")
    with op.batch_alter_table("rollouts", schema=None) as batch_op:
        batch_op.drop_index("ix_rollouts_state")
        batch_op.drop_index("ix_rollouts_deployment_created")

    op.drop_table("rollouts")
    with op.batch_alter_table("serving_reports", schema=None) as batch_op:
        batch_op.drop_index("ix_serving_reports_deployment_revision_arm")

    op.drop_table("serving_reports")
    op.drop_table("routing_epoch")
