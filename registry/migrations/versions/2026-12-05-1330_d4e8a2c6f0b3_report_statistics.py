"""Serving reports may carry experiment statistics (``serving_reports.stats``, JSON).

Why: A/B experiments between adapter versions need, per arm and metric, sufficient statistics
(units, sums, sums of squares and cross products for the delta method; counts for binary
metrics) and the units seen per arm for the sample-ratio-mismatch check. They are cumulative
since the revision started, per reporting source, and kept as one JSON document per report:
``{"source", "units", "metrics": {name: {...}}}`` (``registry.experiments.reports``).

Locking: on PostgreSQL one ADD COLUMN (nullable, no default: no table rewrite) under a brief
ACCESS EXCLUSIVE lock on ``serving_reports``; on SQLite a plain ADD COLUMN.

Downgrade: drops the column (the statistics of reports already sent are lost; their counts,
latencies and scores stay).

Revision ID: d4e8a2c6f0b3
Revises: c5826ff92452
Create Date: 2026-12-05 13:30:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "d4e8a2c6f0b3"
down_revision = "c5826ff92452"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("serving_reports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "stats",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("serving_reports", schema=None) as batch_op:
        batch_op.drop_column("stats")
