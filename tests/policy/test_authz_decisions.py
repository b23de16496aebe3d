"""The default policy set as a decision table: (subject, action, resource) -> decision + policy.

This is the golden table that must keep passing on every cedarpy upgrade and policy edit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.policy import ACTIONS, MUTATING_ACTIONS, CedarAuthorizer, Resource, Subject

from .conftest import promotion, subject

ADAPTER = Resource("Adapter", "adapter-1", "acme")
FOREIGN_ADAPTER = Resource("Adapter", "adapter-2", "other")
DEPLOYMENT = Resource("Deployment", "acme-chat", "acme", {"environment": "production"})
FOREIGN_DEPLOYMENT = Resource("Deployment", "other-chat", "other")
NAMESPACE = Resource("Namespace", "acme", "acme")
REGISTRY = Resource("Registry", "registry")
BASE = Resource("BaseModel", "llama-3-8b")
AUDIT = Resource("AuditLog", "audit")
POLICIES = Resource("PolicySet", "active")
PROMO = promotion()
FOREIGN_PROMO = promotion(namespace="other")

VIEWER = subject("viewer")
DEV = subject("developer", ci=("dev-ci",))
APPROVER = subject("approver", ci=("Approver-CI",))
OPERATOR = subject("operator")
ADMIN = subject("admin", namespaces=())
AUDITOR = subject("auditor", namespaces=())
CI_DEV = subject("developer", kind="service")


@dataclass(frozen=True)
class Case:
    id: str
    subject: Subject
    action: str
    resource: Resource
    allowed: bool
    policy: str
    context: Mapping[str, str | bool | int] | None = None


DENY = "default-deny"
FOUR_EYES = "four-eyes-never-own"

CASES: list[Case] = [
    # viewer
    Case("viewer-read-member", VIEWER, "read", ADAPTER, True, "members-read"),
    Case("viewer-resolve-member", VIEWER, "resolve", DEPLOYMENT, True, "members-read"),
    Case("viewer-read-namespace", VIEWER, "read", NAMESPACE, True, "members-read"),
    Case("viewer-read-non-member", VIEWER, "read", FOREIGN_ADAPTER, False, DENY),
    Case("viewer-resolve-non-member", VIEWER, "resolve", FOREIGN_DEPLOYMENT, False, DENY),
    Case("viewer-register", VIEWER, "register_version", ADAPTER, False, DENY),
    Case("viewer-read-base", VIEWER, "read", BASE, True, "base-models-readable"),
    Case("viewer-read-audit", VIEWER, "read_audit", AUDIT, False, DENY),
    Case("viewer-read-registry-metrics", VIEWER, "read", REGISTRY, True, "metrics-readable"),
    # serving reports: operators and service accounts of the namespace
    Case("operator-report", OPERATOR, "report", DEPLOYMENT, True, "serving-reports"),
    Case(
        "fleet-report",
        subject("viewer", kind="service"),
        "report",
        DEPLOYMENT,
        True,
        "serving-reports",
    ),
    Case("viewer-human-report", VIEWER, "report", DEPLOYMENT, False, DENY),
    Case("dev-human-report", DEV, "report", DEPLOYMENT, False, DENY),
    Case("operator-report-non-member", OPERATOR, "report", FOREIGN_DEPLOYMENT, False, DENY),
    Case(
        "fleet-approver-report",
        subject("approver", kind="service"),
        "report",
        DEPLOYMENT,
        False,
        DENY,
    ),
    # developer
    Case("dev-register", DEV, "register_version", ADAPTER, True, "developers-write"),
    Case("dev-register-in-namespace", DEV, "register_version", NAMESPACE, True, "developers-write"),
    Case("dev-edit", DEV, "edit_metadata", ADAPTER, True, "developers-write"),
    Case("dev-request", DEV, "request_promotion", ADAPTER, True, "developers-write"),
    Case("dev-read", DEV, "read", ADAPTER, True, "members-read"),
    Case("dev-register-non-member", DEV, "register_version", FOREIGN_ADAPTER, False, DENY),
    # Server-side maths registers a version: the roles that register may run it.
    Case("dev-compose", DEV, "compose_adapters", NAMESPACE, True, "developers-write"),
    Case("dev-aggregate", DEV, "aggregate_adapters", NAMESPACE, True, "developers-write"),
    Case("dev-merge", DEV, "merge_adapter", ADAPTER, True, "developers-write"),
    Case("dev-compose-non-member", DEV, "compose_adapters", FOREIGN_ADAPTER, False, DENY),
    Case("viewer-compose", VIEWER, "compose_adapters", NAMESPACE, False, DENY),
    Case("operator-aggregate", OPERATOR, "aggregate_adapters", NAMESPACE, False, DENY),
    Case("dev-webhooks", DEV, "manage_webhooks", NAMESPACE, True, "members-manage-webhooks"),
    Case("viewer-webhooks", VIEWER, "manage_webhooks", NAMESPACE, False, DENY),
    Case("dev-archive", DEV, "archive", ADAPTER, False, DENY),
    Case("dev-approve", DEV, "approve", PROMO, False, DENY),
    Case("dev-rollback", DEV, "rollback", DEPLOYMENT, False, DENY),
    Case("dev-upload", DEV, "upload", REGISTRY, True, "registry-uploads"),
    Case("dev-base-model", DEV, "register_base_model", REGISTRY, False, DENY),
    Case("dev-create-namespace", DEV, "create_namespace", REGISTRY, False, DENY),
    # merge / compose / aggregate: where the result is registered (cases above, and:)
    Case("dev-merge-in-namespace", DEV, "merge_adapter", NAMESPACE, True, "developers-write"),
    Case("dev-merge-into-a-base", DEV, "merge_adapter", REGISTRY, False, DENY),
    Case(
        "operator-merge-into-a-base",
        OPERATOR,
        "merge_adapter",
        REGISTRY,
        True,
        "operators-register-base-models",
    ),
    Case("operator-compose", OPERATOR, "compose_adapters", NAMESPACE, False, DENY),
    Case("dev-override", DEV, "override_gates", PROMO, False, DENY),
    # approver
    Case("approver-approve", APPROVER, "approve", PROMO, True, "approvers-approve"),
    Case("approver-approve-non-member", APPROVER, "approve", FOREIGN_PROMO, False, DENY),
    Case("approver-register", APPROVER, "register_version", ADAPTER, False, DENY),
    Case("approver-archive", APPROVER, "archive", ADAPTER, False, DENY),
    Case("approver-upload", APPROVER, "upload", REGISTRY, False, DENY),
    Case("approver-read", APPROVER, "read", ADAPTER, True, "members-read"),
    # four eyes
    Case(
        "approver-approve-own-request",
        APPROVER,
        "approve",
        promotion(requested_by=APPROVER.id),
        False,
        FOUR_EYES,
    ),
    Case(
        "approver-approve-own-registration",
        APPROVER,
        "approve",
        promotion(registered_by=APPROVER.id),
        False,
        FOUR_EYES,
    ),
    Case(
        "approver-approve-own-ci-identity",
        APPROVER,
        "approve",
        promotion(ci_actor="approver-ci"),
        False,
        FOUR_EYES,
    ),
    Case(
        "approver-approve-own-ci-identity-case",
        APPROVER,
        "approve",
        promotion(ci_actor="APPROVER-ci"),
        False,
        FOUR_EYES,
    ),
    Case(
        "approver-approve-other-ci-identity",
        APPROVER,
        "approve",
        promotion(ci_actor="someone-ci"),
        True,
        "approvers-approve",
    ),
    Case(
        "admin-approve-own-request",
        ADMIN,
        "approve",
        promotion(requested_by=ADMIN.id),
        False,
        FOUR_EYES,
    ),
    Case("admin-approve-other", ADMIN, "approve", PROMO, True, "admin-all"),
    # operator
    Case("operator-archive", OPERATOR, "archive", ADAPTER, True, "operators-manage"),
    Case("operator-rollback", OPERATOR, "rollback", DEPLOYMENT, True, "operators-manage"),
    Case("operator-rollout", OPERATOR, "rollout", DEPLOYMENT, True, "operators-manage"),
    Case("operator-create-dep", OPERATOR, "create_deployment", NAMESPACE, True, "operators-manage"),
    Case("operator-request", OPERATOR, "request_promotion", ADAPTER, True, "operators-manage"),
    Case("operator-rollback-non-member", OPERATOR, "rollback", FOREIGN_DEPLOYMENT, False, DENY),
    Case(
        "operator-base-model",
        OPERATOR,
        "register_base_model",
        REGISTRY,
        True,
        "operators-register-base-models",
    ),
    Case("operator-upload", OPERATOR, "upload", REGISTRY, True, "registry-uploads"),
    Case("operator-register", OPERATOR, "register_version", ADAPTER, False, DENY),
    Case("operator-edit", OPERATOR, "edit_metadata", ADAPTER, False, DENY),
    Case("operator-approve", OPERATOR, "approve", PROMO, False, DENY),
    Case("operator-override", OPERATOR, "override_gates", PROMO, False, DENY),
    Case("operator-create-namespace", OPERATOR, "create_namespace", REGISTRY, False, DENY),
    # admin
    Case("admin-create-namespace", ADMIN, "create_namespace", REGISTRY, True, "admin-all"),
    Case("admin-manage-policies", ADMIN, "manage_policies", POLICIES, True, "admin-all"),
    Case(
        "admin-manage-principals",
        ADMIN,
        "manage_principals",
        Resource("Principal", "id-other"),
        True,
        "admin-all",
    ),
    Case("admin-override", ADMIN, "override_gates", PROMO, True, "admin-all"),
    Case("admin-read-non-member", ADMIN, "read", FOREIGN_ADAPTER, True, "admin-all"),
    Case("admin-read-audit", ADMIN, "read_audit", AUDIT, True, "admin-all"),
    Case("admin-archive", ADMIN, "archive", FOREIGN_ADAPTER, True, "admin-all"),
    # auditor
    Case("auditor-read-any", AUDITOR, "read", FOREIGN_ADAPTER, True, "auditor-read-all"),
    Case("auditor-read-audit", AUDITOR, "read_audit", AUDIT, True, "auditor-read-all"),
    Case("auditor-read-policies", AUDITOR, "read", POLICIES, True, "auditor-read-all"),
    Case("auditor-register", AUDITOR, "register_version", ADAPTER, False, DENY),
    Case("auditor-resolve", AUDITOR, "resolve", FOREIGN_DEPLOYMENT, False, DENY),
    Case("auditor-manage-policies", AUDITOR, "manage_policies", POLICIES, False, DENY),
    Case("developer-read-audit", DEV, "read_audit", AUDIT, False, DENY),
    # admin-only actions refused to everyone else
    Case("approver-manage-principals", APPROVER, "manage_principals", REGISTRY, False, DENY),
    Case("operator-manage-policies", OPERATOR, "manage_policies", POLICIES, False, DENY),
    # self service
    Case(
        "self-read-principal",
        VIEWER,
        "read",
        Resource("Principal", VIEWER.id),
        True,
        "self-service-tokens",
    ),
    Case(
        "self-manage-tokens",
        DEV,
        "manage_tokens",
        Resource("Principal", DEV.id),
        True,
        "self-service-tokens",
    ),
    Case(
        "service-manage-own-tokens",
        CI_DEV,
        "manage_tokens",
        Resource("Principal", CI_DEV.id),
        True,
        "self-service-tokens",
    ),
    Case(
        "manage-other-tokens",
        DEV,
        "manage_tokens",
        Resource("Principal", VIEWER.id),
        False,
        DENY,
    ),
    Case("read-other-principal", DEV, "read", Resource("Principal", VIEWER.id), False, DENY),
    Case(
        "self-manage-principals",
        DEV,
        "manage_principals",
        Resource("Principal", DEV.id),
        False,
        DENY,
    ),
    # cancel a promotion
    Case(
        "requester-cancels",
        DEV,
        "cancel_promotion",
        promotion(requested_by=DEV.id),
        True,
        "requester-cancels",
    ),
    Case("non-requester-cancels", DEV, "cancel_promotion", PROMO, False, DENY),
    Case("approver-cancels-other", APPROVER, "cancel_promotion", PROMO, False, DENY),
    Case("admin-cancels", ADMIN, "cancel_promotion", PROMO, True, "admin-all"),
    # machines
    Case(
        "service-approver-approve",
        subject("approver", kind="service"),
        "approve",
        PROMO,
        False,
        "no-machine-approvals",
    ),
    Case(
        "service-admin-approve",
        subject("admin", kind="service"),
        "approve",
        PROMO,
        False,
        "no-machine-approvals",
    ),
    Case(
        "service-admin-override",
        subject("admin", kind="service"),
        "override_gates",
        PROMO,
        False,
        "no-machine-approvals",
    ),
    Case(
        "unknown-kind-approve",
        subject("approver", kind="robot"),
        "approve",
        PROMO,
        False,
        "no-machine-approvals",
    ),
    Case("service-register", CI_DEV, "register_version", ADAPTER, True, "developers-write"),
    Case("service-upload", CI_DEV, "upload", REGISTRY, True, "registry-uploads"),
    # unknown role, missing namespace
    Case("unknown-role-read", subject("superuser"), "read", ADAPTER, False, DENY),
    Case("unknown-role-register", subject("Developer"), "register_version", ADAPTER, False, DENY),
    Case("global-resource-not-member-read", VIEWER, "read", AUDIT, False, DENY),
    Case(
        "case-sensitive-membership",
        subject("viewer", namespaces=("Acme",)),
        "read",
        ADAPTER,
        False,
        DENY,
    ),
    # context keys are passed through and do not change the default policies' decisions
    Case(
        "context-passed-through",
        OPERATOR,
        "rollout",
        DEPLOYMENT,
        True,
        "operators-manage",
        {"environment": "production", "deployment": "acme-chat", "share_bp": 500},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_decision_table(authz: CedarAuthorizer, case: Case) -> None:
    decision = authz.authorize(case.subject, case.action, case.resource, case.context)
    assert (decision.allowed, decision.policy) == (case.allowed, case.policy)
    assert decision.errors == ()
    assert decision.action == case.action


def test_every_policy_determines_some_row(authz: CedarAuthorizer) -> None:
    assert set(authz.policy_ids) <= {c.policy for c in CASES}


def test_table_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("action", ACTIONS)
def test_admin_may_do_every_action_on_a_registry(authz: CedarAuthorizer, action: str) -> None:
    resource = PROMO if action in ("approve", "cancel_promotion") else REGISTRY
    decision = authz.authorize(ADMIN, action, resource)
    assert decision.allowed
    assert decision.policy == "admin-all"


@pytest.mark.parametrize("action", sorted(MUTATING_ACTIONS))
def test_viewer_may_do_no_mutating_action(authz: CedarAuthorizer, action: str) -> None:
    for resource in (ADAPTER, NAMESPACE, DEPLOYMENT, PROMO, REGISTRY):
        assert not authz.authorize(VIEWER, action, resource).allowed


# ----------------------------------------------------------------------------- properties


ids = st.text(alphabet="abcdef0123456789-", min_size=1, max_size=12)
names = st.sampled_from(["acme", "beta", "gamma", "Acme", "", "x y", 'q"uote'])
roles = st.one_of(
    st.sampled_from(["viewer", "developer", "approver", "operator", "admin", "auditor"]),
    st.text(max_size=10),
)


@st.composite
def promotions(draw: st.DrawFn, who: Subject | None = None) -> Resource:
    pool = [draw(ids), draw(ids)] + ([who.id] if who else [])
    return promotion(
        namespace=draw(names),
        requested_by=draw(st.sampled_from(pool)),
        registered_by=draw(st.sampled_from(pool)),
        ci_actor=draw(st.one_of(st.just(""), names, ids)),
    )


services = st.builds(
    Subject,
    id=ids,
    name=st.text(max_size=8),
    kind=st.just("service"),
    role=roles,
    namespaces=st.frozensets(names, max_size=4),
    ci_identities=st.frozensets(st.one_of(names, ids), max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(who=services, data=st.data())
def test_service_principals_never_approve(
    authz: CedarAuthorizer, who: Subject, data: st.DataObject
) -> None:
    resource = data.draw(promotions(who))
    for action in ("approve", "override_gates"):
        decision = authz.authorize(who, action, resource)
        assert not decision.allowed
        assert decision.policy == "no-machine-approvals"


humans = st.builds(
    Subject,
    id=ids,
    name=st.text(max_size=8),
    kind=st.just("human"),
    role=roles,
    namespaces=st.frozensets(names, max_size=4),
    ci_identities=st.frozensets(ids, max_size=3),
)


@settings(max_examples=200, deadline=None)
@given(who=humans, data=st.data())
def test_nobody_approves_their_own_promotion(
    authz: CedarAuthorizer, who: Subject, data: st.DataObject
) -> None:
    own = data.draw(
        st.sampled_from(
            [
                {"requested_by": who.id},
                {"registered_by": who.id},
                *({"ci_actor": c} for c in sorted(who.ci_identities)),
            ]
        )
    )
    resource = promotion(namespace=data.draw(names), **own)
    decision = authz.authorize(who, "approve", resource)
    assert not decision.allowed
    assert decision.policy == "four-eyes-never-own"
