"""Governance: namespace memberships, scoped/CI tokens, trusted CI publishers, policy sets,
deployments with immutable revisions, promotion requests and four-eyes approvals.

Why: authorization by policy, OIDC trusted publishing and promotions (issue 4). Four-eyes is
also a database rule: an approval row copies the request's requester and registrant through a
composite foreign key, and CHECK constraints refuse an approver who is either (or who owns the
CI identity that registered the version).

Locking: creates new tables; adds nullable columns to adapter_versions, api_tokens and
principals (PostgreSQL: ADD COLUMN without default, a brief ACCESS EXCLUSIVE lock, no rewrite;
SQLite: batch copy of those three tables).

Downgrade: drops the new tables and columns; memberships, publishers, policy sets,
deployments and promotions are lost.

Types are spelled with plain SQLAlchemy types so the revision keeps its meaning.

Revision ID: b2f4e6a8c0d1
Revises: c3a1f0e2b4d5
Create Date: 2026-11-25 19:55:52.346309+00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "b2f4e6a8c0d1"
down_revision = "c3a1f0e2b4d5"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "used_oidc_tokens",
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("jti", sa.String(length=256), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_used_oidc_tokens")),
        sa.UniqueConstraint("issuer", "jti", name=op.f("uq_used_oidc_tokens_issuer_jti")),
    )
    op.create_table(
        "policy_sets",
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("schema_text", sa.Text(), nullable=False),
        sa.Column("policies_text", sa.Text(), nullable=False),
        sa.Column("gates_text", sa.Text(), nullable=False),
        sa.Column("source", sa.String(length=1024), nullable=False),
        sa.Column("applied_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["applied_by_id"],
            ["principals.id"],
            name=op.f("fk_policy_sets_applied_by_id_principals"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_policy_sets")),
        sa.UniqueConstraint("version", name=op.f("uq_policy_sets_version")),
    )
    op.create_table(
        "principal_namespaces",
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["namespace_id"],
            ["namespaces.id"],
            name=op.f("fk_principal_namespaces_namespace_id_namespaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_principal_namespaces_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "principal_id", "namespace_id", name=op.f("pk_principal_namespaces")
        ),
    )
    op.create_table(
        "trusted_publishers",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("issuer", sa.String(length=512), nullable=False),
        sa.Column("audience", sa.String(length=256), nullable=False),
        sa.Column("repository", sa.String(length=256), nullable=False),
        sa.Column("repository_owner_id", sa.String(length=64), nullable=False),
        sa.Column("workflow_ref", sa.String(length=512), nullable=False),
        sa.Column("ref", sa.String(length=256), nullable=True),
        sa.Column("environment", sa.String(length=128), nullable=True),
        sa.Column("require_protected_ref", sa.Boolean(), nullable=False),
        sa.Column("principal_id", sa.Uuid(), nullable=False),
        sa.Column(
            "namespaces",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["principals.id"],
            name=op.f("fk_trusted_publishers_created_by_id_principals"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["principal_id"],
            ["principals.id"],
            name=op.f("fk_trusted_publishers_principal_id_principals"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trusted_publishers")),
        sa.UniqueConstraint("name", name=op.f("uq_trusted_publishers_name")),
    )
    with op.batch_alter_table("trusted_publishers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_trusted_publishers_issuer"), ["issuer"], unique=False)

    op.create_table(
        "deployments",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("namespace_id", sa.Uuid(), nullable=False),
        sa.Column("adapter_id", sa.Uuid(), nullable=False),
        sa.Column("base_model_version_id", sa.Uuid(), nullable=False),
        sa.Column("current_revision", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_id"], ["adapters.id"], name=op.f("fk_deployments_adapter_id_adapters")
        ),
        sa.ForeignKeyConstraint(
            ["base_model_version_id"],
            ["base_model_versions.id"],
            name=op.f("fk_deployments_base_model_version_id_base_model_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["principals.id"],
            name=op.f("fk_deployments_created_by_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["namespace_id"], ["namespaces.id"], name=op.f("fk_deployments_namespace_id_namespaces")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployments")),
        sa.UniqueConstraint("name", name=op.f("uq_deployments_name")),
    )
    op.create_table(
        "promotion_requests",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("adapter_version_id", sa.Uuid(), nullable=False),
        sa.Column("requested_by_id", sa.Uuid(), nullable=False),
        sa.Column("registered_by_id", sa.Uuid(), nullable=False),
        sa.Column("ci_actor", sa.String(length=128), nullable=True),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "gates",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("gates_passed", sa.Boolean(), nullable=False),
        sa.Column("policy_digest", sa.String(length=71), nullable=False),
        sa.Column("required_approvals", sa.Integer(), nullable=False),
        sa.Column("stable_version_id", sa.Uuid(), nullable=True),
        sa.Column("override_reason", sa.Text(), nullable=True),
        sa.Column("overridden_by_id", sa.Uuid(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["adapter_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_promotion_requests_adapter_version_id_adapter_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_promotion_requests_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["overridden_by_id"],
            ["principals.id"],
            name=op.f("fk_promotion_requests_overridden_by_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["registered_by_id"],
            ["principals.id"],
            name=op.f("fk_promotion_requests_registered_by_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["principals.id"],
            name=op.f("fk_promotion_requests_requested_by_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["stable_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_promotion_requests_stable_version_id_adapter_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_requests")),
        sa.UniqueConstraint("id", "requested_by_id", "registered_by_id", name="four_eyes_key"),
    )
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.create_index(
            "ix_promotion_requests_deployment_created",
            ["deployment_id", "created_at"],
            unique=False,
        )
        batch_op.create_index("ix_promotion_requests_state", ["state"], unique=False)

    op.create_table(
        "deployment_revisions",
        sa.Column("deployment_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("stable_version_id", sa.Uuid(), nullable=True),
        sa.Column("candidate_version_id", sa.Uuid(), nullable=True),
        sa.Column("candidate_share_bp", sa.Integer(), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("hash_spec", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.String(length=1000), nullable=False),
        sa.Column("actor_id", sa.Uuid(), nullable=True),
        sa.Column("promotion_id", sa.Uuid(), nullable=True),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.CheckConstraint(
            "candidate_share_bp >= 0 AND candidate_share_bp <= 10000",
            name=op.f("ck_deployment_revisions_share_range"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_id"],
            ["principals.id"],
            name=op.f("fk_deployment_revisions_actor_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["candidate_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_deployment_revisions_candidate_version_id_adapter_versions"),
        ),
        sa.ForeignKeyConstraint(
            ["deployment_id"],
            ["deployments.id"],
            name=op.f("fk_deployment_revisions_deployment_id_deployments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["promotion_id"],
            ["promotion_requests.id"],
            name=op.f("fk_deployment_revisions_promotion_id_promotion_requests"),
        ),
        sa.ForeignKeyConstraint(
            ["stable_version_id"],
            ["adapter_versions.id"],
            name=op.f("fk_deployment_revisions_stable_version_id_adapter_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deployment_revisions")),
        sa.UniqueConstraint(
            "deployment_id", "revision", name=op.f("uq_deployment_revisions_deployment_id_revision")
        ),
    )
    with op.batch_alter_table("deployment_revisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_deployment_revisions_deployment_effective",
            ["deployment_id", "effective_at"],
            unique=False,
        )

    op.create_table(
        "promotion_approvals",
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("approver_id", sa.Uuid(), nullable=False),
        sa.Column("requester_id", sa.Uuid(), nullable=False),
        sa.Column("registrant_id", sa.Uuid(), nullable=False),
        sa.Column("approver_ci_identity", sa.String(length=128), nullable=True),
        sa.Column("registrant_ci_actor", sa.String(length=128), nullable=True),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "approver_ci_identity IS NULL OR registrant_ci_actor IS NULL OR approver_ci_identity <> registrant_ci_actor",
            name=op.f("ck_promotion_approvals_not_ci_identity_owner"),
        ),
        sa.CheckConstraint(
            "approver_id <> requester_id AND approver_id <> registrant_id",
            name=op.f("ck_promotion_approvals_not_requester_nor_registrant"),
        ),
        sa.ForeignKeyConstraint(
            ["approver_id"],
            ["principals.id"],
            name=op.f("fk_promotion_approvals_approver_id_principals"),
        ),
        sa.ForeignKeyConstraint(
            ["request_id", "requester_id", "registrant_id"],
            [
                "promotion_requests.id",
                "promotion_requests.requested_by_id",
                "promotion_requests.registered_by_id",
            ],
            name="fk_promotion_approvals_request_four_eyes",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promotion_approvals")),
        sa.UniqueConstraint(
            "request_id", "approver_id", name=op.f("uq_promotion_approvals_request_id_approver_id")
        ),
    )
    with op.batch_alter_table("adapter_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ci_actor", sa.String(length=128), nullable=True))

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "scopes",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(
            sa.Column(
                "ci_identity",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=True,
            )
        )
        batch_op.add_column(sa.Column("created_by_id", sa.Uuid(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_created_by_id_principals"),
            "principals",
            ["created_by_id"],
            ["id"],
            ondelete="SET NULL",
        )

    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.add_column(sa.Column("ci_identity", sa.String(length=128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("principals", schema=None) as batch_op:
        batch_op.drop_column("ci_identity")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_api_tokens_created_by_id_principals"), type_="foreignkey"
        )
        batch_op.drop_column("created_by_id")
        batch_op.drop_column("ci_identity")
        batch_op.drop_column("scopes")

    with op.batch_alter_table("adapter_versions", schema=None) as batch_op:
        batch_op.drop_column("ci_actor")

    op.drop_table("promotion_approvals")
    with op.batch_alter_table("deployment_revisions", schema=None) as batch_op:
        batch_op.drop_index("ix_deployment_revisions_deployment_effective")

    op.drop_table("deployment_revisions")
    with op.batch_alter_table("promotion_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_promotion_requests_state")
        batch_op.drop_index("ix_promotion_requests_deployment_created")

    op.drop_table("promotion_requests")
    op.drop_table("deployments")
    with op.batch_alter_table("trusted_publishers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_trusted_publishers_issuer"))

    op.drop_table("trusted_publishers")
    op.drop_table("principal_namespaces")
    op.drop_table("policy_sets")
    op.drop_table("used_oidc_tokens")
