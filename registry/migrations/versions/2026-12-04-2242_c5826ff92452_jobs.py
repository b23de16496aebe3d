"""Jobs: server-side adapter maths (merge, compose, aggregate) run by a worker thread.

Why: ``POST /api/v1/jobs`` queues a job; a worker of the server claims it, runs the maths on
the inputs' stored files and registers the result through the catalog; clients follow its
progress, cancel it and read its result.

Locking: creates a new table and its indexes; nothing existing is touched.

Downgrade: drops the table (every job, queued or finished, is lost; versions they registered
stay).

Types are spelled with plain SQLAlchemy types so the revision keeps its meaning.

Revision ID: c5826ff92452
Revises: a7c2e4f6b8d1
Create Date: 2026-12-04 22:42:26.154887+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c5826ff92452"
down_revision = "a7c2e4f6b8d1"
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
        "jobs",
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        _json("params", nullable=False),
        sa.Column("target", sa.String(length=330), nullable=False),
        sa.Column("progress_done", sa.Integer(), nullable=False),
        sa.Column("progress_total", sa.Integer(), nullable=False),
        _json("result", nullable=True),
        _json("error", nullable=True),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        _json("scopes", nullable=True),
        _json("ci_identity", nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "progress_done >= 0 AND progress_total >= 0", name=op.f("ck_jobs_progress")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["principals.id"], name=op.f("fk_jobs_created_by_id_principals")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_jobs")),
    )
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.create_index("ix_jobs_created", ["created_at", "id"], unique=False)
        batch_op.create_index(
            "ix_jobs_creator_created", ["created_by_id", "created_at", "id"], unique=False
        )
        batch_op.create_index("ix_jobs_state_created", ["state", "created_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_jobs_state_created")
        batch_op.drop_index("ix_jobs_creator_created")
        batch_op.drop_index("ix_jobs_created")
    op.drop_table("jobs")
