"""The caller as the policy engine sees it, and the one place calls are authorized and audited.

An ``Actor`` is built per request from the authenticated principal and a fresh read of its role
and namespace memberships (so removing someone from a namespace takes effect on their next
request, whatever the token cache holds). Services call ``actor.require(action, resource)``
before they change or reveal anything, and ``actor.audit(...)`` in the same transaction as the
change; the decision that allowed the call (its policy ids) goes into the audit event.

404 before 403: ``require(..., hidden=NotFoundError(...))`` first checks that the caller may
``read`` the resource and raises the not-found error if not, so a caller cannot learn that
something it may not see exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from registry.audit.service import AuditEntry, append
from registry.auth.principal import AuthenticatedPrincipal
from registry.errors import PolicyDenied, RegistryError
from registry.policy.types import MUTATING_ACTIONS, Authorizer, Decision, Resource, Subject

ContextValue = str | bool | int
# Not a valid namespace name, so no policy can single it out.
_SENTINEL_NAMESPACE = "*every-namespace*"


@dataclass
class Actor:
    principal: AuthenticatedPrincipal
    subject: Subject
    authorizer: Authorizer
    request_id: str | None = None
    decisions: list[Decision] = field(default_factory=list)

    @property
    def id(self) -> uuid.UUID:
        return self.principal.id

    @property
    def name(self) -> str:
        return self.principal.name

    @property
    def policy_digest(self) -> str:
        return self.authorizer.digest

    def decide(
        self, action: str, resource: Resource, context: Mapping[str, ContextValue] | None = None
    ) -> Decision:
        """The decision for ``action`` on ``resource``, token scopes included; raises nothing."""
        scopes = self.principal.scopes
        if scopes is not None and action not in scopes:
            return Decision(allowed=False, action=action, policies=("token-scope",))
        return self.authorizer.authorize(self.subject, action, resource, context)

    def require(
        self,
        action: str,
        resource: Resource,
        *,
        hidden: RegistryError | None = None,
        context: Mapping[str, ContextValue] | None = None,
    ) -> Decision:
        """Allow or raise: ``hidden`` (a not-found error) when the caller may not even read the
        resource, else ``policy_denied`` naming the deciding policies."""
        if hidden is not None and action != "read" and not self.decide("read", resource).allowed:
            raise hidden
        decision = self.decide(action, resource, context)
        if not decision.allowed:
            if hidden is not None and action == "read":
                raise hidden
            raise self.denied(decision, resource)
        self.decisions.append(decision)
        return decision

    def denied(self, decision: Decision, resource: Resource) -> PolicyDenied:
        error = PolicyDenied(
            f"{self.name} may not {decision.action} {describe(resource)} "
            f"(policy {decision.policy})",
            context={
                "action": decision.action,
                "resource": describe(resource),
                "policy": decision.policy,
                "policies": list(decision.policies),
            },
        )
        if decision.action in MUTATING_ACTIONS:
            error.audit_entry = self.entry(
                "authz.denied", describe(resource), decision=decision.to_audit()
            )
        return error

    def readable_namespaces(self, names: Iterable[str]) -> set[str]:
        if self.principal.scopes is not None and "read" not in self.principal.scopes:
            return set()
        names = list(names)
        # A policy that lets the caller read a namespace it is no member of and that no policy
        # can name (the sentinel) grants reading every namespace (admins, auditors): one
        # decision instead of one per namespace.
        if self.decide("read", namespace_resource(_SENTINEL_NAMESPACE)).allowed:
            return set(names)
        return self.authorizer.allowed_namespaces(self.subject, "read", names)

    def entry(
        self,
        action: str,
        resource: str,
        *,
        decision: Mapping[str, Any] | None = None,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
    ) -> AuditEntry:
        if decision is None and self.decisions:
            # The decision that allowed the change, not a read made along the way.
            mutating = [d for d in self.decisions if d.action in MUTATING_ACTIONS]
            decision = (mutating or self.decisions)[-1].to_audit()
        return AuditEntry(
            action=action,
            resource=resource,
            actor=self.name,
            actor_id=self.id,
            decision=dict(decision) if decision is not None else None,
            before=dict(before) if before is not None else None,
            after=dict(after) if after is not None else None,
            request_id=self.request_id,
        )

    def audit(
        self,
        session: Session,
        action: str,
        resource: str,
        *,
        before: Mapping[str, Any] | None = None,
        after: Mapping[str, Any] | None = None,
        decision: Mapping[str, Any] | None = None,
    ) -> None:
        """Append the audit event for a change, in the caller's transaction."""
        append(
            session,
            self.entry(action, resource, decision=decision, before=before, after=after),
        )


def describe(resource: Resource) -> str:
    return f"{resource.type.lower()}:{resource.id}"


def registry_resource() -> Resource:
    return Resource(type="Registry", id="registry")


def namespace_resource(namespace: str) -> Resource:
    return Resource(type="Namespace", id=namespace, namespace=namespace)


def adapter_resource(namespace: str, name: str) -> Resource:
    return Resource(type="Adapter", id=f"{namespace}/{name}", namespace=namespace)


def deployment_resource(name: str, namespace: str) -> Resource:
    return Resource(type="Deployment", id=name, namespace=namespace)


def principal_resource(principal_id: uuid.UUID | str) -> Resource:
    return Resource(type="Principal", id=str(principal_id))


def base_model_resource(name: str) -> Resource:
    return Resource(type="BaseModel", id=name)


def audit_resource() -> Resource:
    return Resource(type="AuditLog", id="audit")


def policy_resource() -> Resource:
    return Resource(type="PolicySet", id="active")
