"""API token listings are paginated: index a principal's tokens by (created_at, id).

Why: ``GET /api/v1/tokens`` returns keyset pages, newest first; a CI principal mints a token per
job, so its list grows without bound (the unpaginated list stopped at 1,000 rows).

Locking: replaces ``ix_api_tokens_principal_id`` with ``ix_api_tokens_principal_created``
(``principal_id, created_at, id``); a plain CREATE INDEX locks writes to ``api_tokens`` while it
builds (a small table: one row per token).

Downgrade: restores the single-column index.

Revision ID: f1a3c5e7d9b2
Revises: e5d7c9a1b3f2
Create Date: 2026-11-26 02:00:00.000000+00:00
"""

from __future__ import annotations

from alembic import op

revision = "f1a3c5e7d9b2"
down_revision = "e5d7c9a1b3f2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index(
            "ix_api_tokens_principal_created", ["principal_id", "created_at", "id"], unique=False
        )
        batch_op.drop_index("ix_api_tokens_principal_id")


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.create_index("ix_api_tokens_principal_id", ["principal_id"], unique=False)
        batch_op.drop_index("ix_api_tokens_principal_created")
