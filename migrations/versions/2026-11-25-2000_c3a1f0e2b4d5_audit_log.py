"""Audit log: hash-chained append-only events (placeholder; being written).

Why: tamper-evident audit (issue 4).

Locking: creates new tables only.

Downgrade: drops the audit tables (the history is lost).

Revision ID: c3a1f0e2b4d5
Revises: d9a6c19968c7
Create Date: 2026-11-25 20:00:00+00:00
"""

from __future__ import annotations

revision = "c3a1f0e2b4d5"
down_revision = "d9a6c19968c7"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
