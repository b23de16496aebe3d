"""Lineage edges may have a base model version as their child (a merged checkpoint).

Why: merging an adapter into its base gives a new base checkpoint, registered as a base model
version with ``merged_from`` edges to the adapter version and the base version it came from (and
``quantized_from`` for a quantized base). ``lineage_edges.child_version_id`` becomes nullable, a
nullable ``child_base_version_id`` (cascading with its base version) is added, and the check
constraint ``one_child`` keeps exactly one of the two set.

Locking: on PostgreSQL, ADD COLUMN (nullable, no default: no rewrite), DROP NOT NULL, ADD
CONSTRAINT (foreign key and check, validated by a scan of ``lineage_edges``) and CREATE INDEX,
each under an ACCESS EXCLUSIVE (or SHARE for the index) lock on ``lineage_edges`` for the scan's
duration: writes of lineage (registrations) wait, the table is small. On SQLite the table is
copied (batch mode).

Downgrade: deletes the edges whose child is a base model version (the lineage of merged bases is
lost; the base versions themselves stay), then restores NOT NULL on ``child_version_id``.

Revision ID: a7c2e4f6b8d1
Revises: f1a3c5e7d9b2
Create Date: 2026-11-27 09:00:00.000000+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "a7c2e4f6b8d1"
down_revision = "f1a3c5e7d9b2"
branch_labels = None
depends_on = None

_edges = sa.table("lineage_edges", sa.column("child_base_version_id", sa.Uuid()))


def upgrade() -> None:
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.add_column(sa.Column("child_base_version_id", sa.Uuid(), nullable=True))
        batch_op.alter_column("child_version_id", existing_type=sa.Uuid(), nullable=True)
        batch_op.create_foreign_key(
            batch_op.f("fk_lineage_edges_child_base_version_id_base_model_versions"),
            "base_model_versions",
            ["child_base_version_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_check_constraint(
            batch_op.f("ck_lineage_edges_one_child"),
            "(child_version_id IS NULL) <> (child_base_version_id IS NULL)",
        )
        batch_op.create_index(
            "ix_lineage_edges_child_base_version_id", ["child_base_version_id"], unique=False
        )


def downgrade() -> None:
    op.execute(_edges.delete().where(_edges.c.child_base_version_id.is_not(None)))
    with op.batch_alter_table("lineage_edges", schema=None) as batch_op:
        batch_op.drop_index("ix_lineage_edges_child_base_version_id")
        batch_op.drop_constraint(batch_op.f("ck_lineage_edges_one_child"), type_="check")
        batch_op.drop_constraint(
            batch_op.f("fk_lineage_edges_child_base_version_id_base_model_versions"),
            type_="foreignkey",
        )
        batch_op.drop_column("child_base_version_id")
        batch_op.alter_column("child_version_id", existing_type=sa.Uuid(), nullable=False)
