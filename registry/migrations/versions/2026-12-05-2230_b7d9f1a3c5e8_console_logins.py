"""Console logins: OpenID Connect identities linked to principals for the console's sign-in.

Why: people sign in to the web console through the organisation's OpenID Connect issuer; an
admin links each (issuer, subject) to the principal it acts as, so a sign-in never creates
access by itself.

Locking: creates a new table and its indexes; nothing existing is touched.

Downgrade: drops the table (OIDC sign-in stops finding principals; API tokens are untouched).

Revision ID: b7d9f1a3c5e8
Revises: a4c6e8f0b2d4
Create Date: 2026-12-05 22:30:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "b7d9f1a3c5e8"
down_revision = "a4c6e8f0b2d4"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_logins",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("subject", sa.String(length=256), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_console_logins_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_logins")),
        sa.UniqueConstraint("issuer", "subject", name="uq_console_logins_issuer_subject"),
    )
    with op.batch_alter_table("console_logins", schema=None) as batch_op:
        batch_op.create_index("ix_console_logins_principal", ["principal_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("console_logins", schema=None) as batch_op:
        batch_op.drop_index("ix_console_logins_principal")
    op.drop_table("console_logins")
