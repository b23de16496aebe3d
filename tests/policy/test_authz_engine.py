"""CedarAuthorizer behaviour beyond the decision table: fail closed, batch, entity slice."""

from __future__ import annotations

import json

import pytest

from registry.policy import ACTIONS, CedarAuthorizer, Decision, Resource, Subject
from registry.policy.engine import entities_json

from .conftest import promotion, subject

ADAPTER = Resource("Adapter", "adapter-1", "acme")


class TestFailClosed:
    def test_promotion_without_attributes_denies_even_admin(self, authz: CedarAuthorizer) -> None:
        admin = subject("admin")
        decision = authz.authorize(admin, "approve", Resource("Promotion", "p1", "acme"))
        assert not decision.allowed
        assert decision.policies == ()
        assert decision.errors
        assert decision.policy == "evaluation-error"

    def test_approve_on_a_non_promotion_denies_admin(self, authz: CedarAuthorizer) -> None:
        decision = authz.authorize(subject("admin"), "approve", ADAPTER)
        assert not decision.allowed
        assert decision.errors

    def test_forbid_still_reported_when_another_policy_errors(self, authz: CedarAuthorizer) -> None:
        # four-eyes errors (no attributes) but no-machine-approvals decides the deny
        decision = authz.authorize(
            subject("admin", kind="service"), "approve", Resource("Promotion", "p1", "acme")
        )
        assert not decision.allowed
        assert decision.policy == "no-machine-approvals"
        assert decision.errors

    def test_unknown_action_denies(self, authz: CedarAuthorizer) -> None:
        decision = authz.authorize(subject("admin"), "delete_everything", ADAPTER)
        assert not decision.allowed
        assert decision.errors

    def test_unknown_resource_type_denies(self, authz: CedarAuthorizer) -> None:
        decision = authz.authorize(subject("admin"), "read", Resource("Secret", "s", "acme"))
        assert not decision.allowed
        assert decision.errors

    def test_odd_identifiers_do_not_break_requests(self, authz: CedarAuthorizer) -> None:
        odd = 'we"ird\n::id\\'
        who = subject("developer", namespaces=(odd,), id=odd)
        decision = authz.authorize(who, "register_version", Resource("Adapter", odd, odd))
        assert decision.allowed
        assert decision.errors == ()


class TestDecision:
    def test_to_audit(self) -> None:
        d = Decision(allowed=False, action="approve", policies=("four-eyes-never-own",))
        assert d.to_audit() == {
            "allowed": False,
            "action": "approve",
            "policies": ["four-eyes-never-own"],
        }
        assert json.dumps(d.to_audit())

    def test_default_deny_name(self) -> None:
        assert Decision(allowed=False, action="read", policies=()).policy == "default-deny"

    def test_to_audit_lists_errors_when_present(self) -> None:
        d = Decision(allowed=False, action="read", policies=(), errors=("boom",))
        assert d.to_audit()["errors"] == ["boom"]

    def test_several_determining_policies_in_policy_order(self, authz: CedarAuthorizer) -> None:
        admin = subject("admin", namespaces=("acme",))
        decision = authz.authorize(admin, "read", ADAPTER)
        assert decision.policies == ("admin-all", "members-read")

    def test_digest_is_the_bundle_digest(self, authz: CedarAuthorizer) -> None:
        assert authz.digest == authz.bundle.digest
        assert authz.digest.startswith("sha256:")


class TestNoStaleSubjects:
    def test_membership_removal_takes_effect_on_next_request(self, authz: CedarAuthorizer) -> None:
        member = subject("developer", namespaces=("acme",), id="same-id")
        assert authz.authorize(member, "register_version", ADAPTER).allowed
        removed = subject("developer", namespaces=(), id="same-id")
        assert not authz.authorize(removed, "register_version", ADAPTER).allowed

    def test_role_change_takes_effect_on_next_request(self, authz: CedarAuthorizer) -> None:
        before = subject("approver", id="same-id")
        after = subject("viewer", id="same-id")
        assert authz.authorize(before, "approve", promotion()).allowed
        assert not authz.authorize(after, "approve", promotion()).allowed


class TestEntitySlice:
    def test_principal_and_resource_only(self) -> None:
        who = subject("developer", ci=("Dev-CI",))
        resource = promotion(requested_by="r", registered_by="g", ci_actor="Bot")
        entities = json.loads(entities_json(who, resource))
        assert [e["uid"]["type"] for e in entities] == ["Principal", "Promotion"]
        assert entities[0]["attrs"]["ci_identities"] == ["dev-ci"]
        attrs = entities[1]["attrs"]
        assert attrs["requested_by"] == {"__entity": {"type": "Principal", "id": "r"}}
        assert attrs["ci_actor"] == "bot"
        assert attrs["namespace"] == "acme"

    def test_own_principal_record_is_not_duplicated(self) -> None:
        who = subject("viewer")
        entities = json.loads(entities_json(who, Resource("Principal", who.id)))
        assert len(entities) == 1

    def test_namespace_comes_from_the_typed_field_only(self) -> None:
        who = subject("viewer")
        sneaky = Resource("Adapter", "a", None, {"namespace": "acme"})
        entities = json.loads(entities_json(who, sneaky))
        assert "namespace" not in entities[1]["attrs"]


class TestAllowedNamespaces:
    NAMESPACES = ("acme", "beta", "gamma", "delta")

    def test_viewer_reads_member_namespaces(self, authz: CedarAuthorizer) -> None:
        who = subject("viewer", namespaces=("acme", "beta", "elsewhere"))
        assert authz.allowed_namespaces(who, "read", self.NAMESPACES) == {"acme", "beta"}

    def test_admin_gets_everything(self, authz: CedarAuthorizer) -> None:
        assert authz.allowed_namespaces(subject("admin"), "archive", self.NAMESPACES) == set(
            self.NAMESPACES
        )

    def test_empty_and_unknown_action(self, authz: CedarAuthorizer) -> None:
        who = subject("viewer")
        assert authz.allowed_namespaces(who, "read", []) == set()
        assert authz.allowed_namespaces(who, "nope", self.NAMESPACES) == set()

    def test_promotion_scoped_actions_fail_closed(self, authz: CedarAuthorizer) -> None:
        assert authz.allowed_namespaces(subject("approver"), "approve", self.NAMESPACES) == set()

    def test_duplicates_are_fine(self, authz: CedarAuthorizer) -> None:
        assert authz.allowed_namespaces(subject("viewer"), "read", ["acme", "acme"]) == {"acme"}

    @pytest.mark.parametrize("role", ["viewer", "developer", "approver", "operator", "auditor"])
    @pytest.mark.parametrize(
        "action", [a for a in ACTIONS if a not in ("approve", "cancel_promotion")]
    )
    def test_batch_agrees_with_single_decisions(
        self, authz: CedarAuthorizer, role: str, action: str
    ) -> None:
        who = subject(role, namespaces=("acme", "gamma"))
        expected = {
            ns
            for ns in self.NAMESPACES
            if authz.authorize(who, action, Resource("Namespace", ns, ns)).allowed
        }
        assert authz.allowed_namespaces(who, action, self.NAMESPACES) == expected


def test_subject_is_hashable() -> None:
    assert hash(Subject("i", "n", "human", "viewer", frozenset({"a"})))
