"""Audit log: hash-chained append-only events, the head row that serialises appends, and the
append-only enforcement (triggers; on PostgreSQL also the ``registry_app`` role's privileges).

Why: tamper-evident audit (issue 4, security.md §4). ``audit_events`` holds the chained events;
``audit_head`` (one row, id=1, created here with seq 0 and the genesis hash of 64 zeros) holds
the last seq and hash and is locked ``FOR UPDATE`` by every append. Enforcement:

- Both dialects: ``BEFORE UPDATE`` / ``BEFORE DELETE`` triggers on ``audit_events`` raise
  "audit_events is append-only"; ``audit_head`` may only move forward one seq at a time and
  cannot be deleted. On SQLite the registry's engine sets ``PRAGMA recursive_triggers=ON`` on
  every connection: without it ``INSERT OR REPLACE`` deletes the conflicting row without firing
  the delete trigger and silently overwrites an event (security.md §4.3).
- PostgreSQL: a statement-level ``BEFORE TRUNCATE`` trigger as well, and the application role
  ``registry_app`` (NOLOGIN; created here if missing) gets ``SELECT, INSERT`` on
  ``audit_events``, ``SELECT, UPDATE`` on ``audit_head`` (``FOR UPDATE`` needs UPDATE), nothing
  else on either; ``ALL`` on every other table of the schema, ``SELECT`` on
  ``alembic_version``, ``USAGE`` on the schema and its sequences, and default privileges so
  that tables and sequences later migrations create (as the same migration role) are granted
  ``ALL`` / ``USAGE, SELECT`` too. A later append-only table must therefore REVOKE explicitly.

  Production runs the server as a LOGIN role that is a member of ``registry_app`` (``CREATE
  ROLE registry_server LOGIN IN ROLE registry_app``) and never as the migration role, which owns
  the tables: privileges are the real control against the application (it cannot UPDATE,
  DELETE, TRUNCATE, upsert over, ``ALTER ... DISABLE TRIGGER`` or set
  ``session_replication_role``); the triggers guard against the owner's own mistakes.
  Nothing in the database stops the owner or a superuser: that is what the hash chain and the
  signed checkpoints exported to object storage are for (``registry.audit.verify``).

Note for later revisions: SQLite batch mode (``batch_alter_table``) re-creates a table by copy
and loses its triggers; any batch operation on ``audit_events`` or ``audit_head`` must
re-create the triggers below.

Locking: creates new tables, triggers and (PostgreSQL) grants; GRANT on existing tables takes a
brief lock on each (no rewrite).

Downgrade: drops the audit tables (the history is lost), their triggers and functions, and
revokes what was granted to ``registry_app``. The role itself is left in place: roles are
cluster-wide and other databases may use it.

Revision ID: c3a1f0e2b4d5
Revises: d9a6c19968c7
Create Date: 2026-11-25 20:00:00+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "c3a1f0e2b4d5"
down_revision = "d9a6c19968c7"
branch_labels = None
depends_on = None

APP_ROLE = "registry_app"
GENESIS_HASH = "0" * 64
APPEND_ONLY = "audit_events is append-only"
HEAD_FORWARD = "audit_head only moves forward, one event at a time"

SQLITE_TRIGGERS = {
    "audit_events_no_update": (
        f"BEFORE UPDATE ON audit_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    ),
    "audit_events_no_delete": (
        f"BEFORE DELETE ON audit_events BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY}'); END"
    ),
    "audit_head_forward_only": (
        "BEFORE UPDATE ON audit_head WHEN NEW.id <> OLD.id OR NEW.seq <> OLD.seq + 1"
        f" BEGIN SELECT RAISE(ABORT, '{HEAD_FORWARD}'); END"
    ),
    "audit_head_no_delete": (
        f"BEFORE DELETE ON audit_head BEGIN SELECT RAISE(ABORT, '{HEAD_FORWARD}'); END"
    ),
}

PG_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION audit_events_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{APPEND_ONLY} (% refused)', TG_OP;
END
$$;

CREATE OR REPLACE FUNCTION audit_head_forward_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.id = OLD.id AND NEW.seq = OLD.seq + 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '{HEAD_FORWARD} (% refused)', TG_OP;
END
$$;
"""

PG_TRIGGERS = """
CREATE TRIGGER audit_events_no_update_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_append_only();
CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_head_forward_only();
CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION audit_head_forward_only();
"""

# Tests create many databases concurrently: two CREATE ROLEs can race past the EXISTS check,
# and the loser fails with duplicate_object or (on the catalog's unique index) unique_violation.
PG_CREATE_ROLE = f"""
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        CREATE ROLE {APP_ROLE} NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;
"""

PG_GRANTS = f"""
DO $$
DECLARE
    t record;
BEGIN
    EXECUTE format('GRANT USAGE ON SCHEMA %I TO {APP_ROLE}', current_schema());
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema()
             AND tablename NOT IN ('audit_events', 'audit_head', 'alembic_version') LOOP
        EXECUTE format('GRANT ALL ON TABLE %I TO {APP_ROLE}', t.tablename);
    END LOOP;
    IF EXISTS (SELECT FROM pg_tables WHERE schemaname = current_schema()
               AND tablename = 'alembic_version') THEN
        GRANT SELECT ON alembic_version TO {APP_ROLE};
    END IF;
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA %I TO {APP_ROLE}',
                   current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT ALL ON TABLES TO {APP_ROLE}',
                   current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
                   ' GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}', current_schema());
END
$$;
REVOKE ALL ON audit_events FROM PUBLIC, {APP_ROLE};
GRANT SELECT, INSERT ON audit_events TO {APP_ROLE};
REVOKE ALL ON audit_head FROM PUBLIC, {APP_ROLE};
GRANT SELECT, UPDATE ON audit_head TO {APP_ROLE};
"""

PG_REVOKES = f"""
DO $$
DECLARE
    t record;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        RETURN;
    END IF;
    FOR t IN SELECT tablename FROM pg_tables WHERE schemaname = current_schema() LOOP
        EXECUTE format('REVOKE ALL ON TABLE %I FROM {APP_ROLE}', t.tablename);
    END LOOP;
    EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA %I FROM {APP_ROLE}', current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I REVOKE ALL ON TABLES FROM {APP_ROLE}',
                   current_schema());
    EXECUTE format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I'
                   ' REVOKE ALL ON SEQUENCES FROM {APP_ROLE}', current_schema());
    EXECUTE format('REVOKE USAGE ON SCHEMA %I FROM {APP_ROLE}', current_schema());
END
$$;
"""


def _json() -> sa.JSON:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "audit_events",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=False,
            nullable=False,
        ),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("action", sa.String(length=128), nullable=False),
        sa.Column("resource", sa.String(length=512), nullable=False),
        sa.Column("decision", _json(), nullable=True),
        sa.Column("before", _json(), nullable=True),
        sa.Column("after", _json(), nullable=True),
        sa.Column("request_id", sa.String(length=128), nullable=True),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("hash", name=op.f("uq_audit_events_hash")),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_actor_seq", "audit_events", ["actor", "seq"])
    op.create_index("ix_audit_events_resource_seq", "audit_events", ["resource", "seq"])
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_audit_head_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{GENESIS_HASH}')")

    if op.get_context().dialect.name == "postgresql":
        op.execute(PG_FUNCTIONS)
        op.execute(PG_TRIGGERS)
        op.execute(PG_CREATE_ROLE)
        op.execute(PG_GRANTS)
    else:
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    is_postgresql = op.get_context().dialect.name == "postgresql"
    if not is_postgresql:
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.drop_table("audit_head")  # PostgreSQL drops the tables' triggers and grants with them
    op.drop_index("ix_audit_events_resource_seq", table_name="audit_events")
    op.drop_index("ix_audit_events_actor_seq", table_name="audit_events")
    op.drop_index("ix_audit_events_at", table_name="audit_events")
    op.drop_table("audit_events")
    if is_postgresql:
        op.execute("DROP FUNCTION IF EXISTS audit_head_forward_only()")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
        op.execute(PG_REVOKES)
