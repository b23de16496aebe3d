"""Console sessions: the web console's signed-in browsers.

Why: the web console exchanges an API token for a server-side session (an HttpOnly cookie whose
key's sha256 is stored), so sign-out and token revocation end it at once.

Locking: creates a new table and its indexes; nothing existing is touched.

Downgrade: drops the table (every console session ends; API tokens are untouched).

Revision ID: f3a9c1e5b7d2
Revises: e7b1c3d5f9a2
Create Date: 2026-12-05 19:30:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "f3a9c1e5b7d2"
down_revision = "e7b1c3d5f9a2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_sessions",
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("token_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_console_sessions_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["token_id"],
            ["api_tokens.id"],
            name=op.f("fk_console_sessions_token_id_api_tokens"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("key_hash", name=op.f("uq_console_sessions_key_hash")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_console_sessions_principal", ["principal_id", "created_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_console_sessions_principal")
    op.drop_table("console_sessions")
