"""Authorization vocabulary: subjects, resources, actions and decisions (no Cedar here).

Services build a ``Subject`` from the authenticated principal and a ``Resource`` from the thing
they are about to touch, then ask an ``Authorizer``. The default implementation is
``registry.policy.engine.CedarAuthorizer``; anything else that honours the protocol (a test double,
another engine) can stand in for it.

Identifier contract: ``Subject.namespaces`` and ``Resource.namespace`` use the same identifier (the
namespace *name*); a ``Namespace`` resource's ``namespace`` is its own name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

ACTIONS: tuple[str, ...] = (
    "read",
    "register_version",
    "edit_metadata",
    "archive",
    "request_promotion",
    "approve",
    "cancel_promotion",
    "override_gates",
    "rollback",
    "rollout",
    "create_deployment",
    "create_namespace",
    "register_base_model",
    "upload",
    "manage_policies",
    "manage_principals",
    "manage_tokens",
    "read_audit",
    "resolve",
    "report",
    "merge_adapter",
    "compose_adapters",
    "aggregate_adapters",
    "manage_webhooks",
)
"""Every action the registry authorizes (Cedar ``Action::"<name>"``)."""

READ_ONLY_ACTIONS: frozenset[str] = frozenset({"read", "read_audit", "resolve"})
MUTATING_ACTIONS: frozenset[str] = frozenset(ACTIONS) - READ_ONLY_ACTIONS
"""Actions whose decisions go into the audit log (every action but read, read_audit, resolve)."""

RESOURCE_TYPES: tuple[str, ...] = (
    "Registry",
    "Namespace",
    "BaseModel",
    "Adapter",
    "Deployment",
    "Promotion",
    "Principal",
    "AuditLog",
    "PolicySet",
)
"""Cedar entity types a ``Resource`` may have."""

ROLES: tuple[str, ...] = ("viewer", "developer", "approver", "operator", "admin", "auditor")
PRINCIPAL_KINDS: tuple[str, ...] = ("human", "service")

DEFAULT_DENY = "default-deny"
"""``Decision.policy`` when no policy matched."""
EVALUATION_ERROR = "evaluation-error"
"""``Decision.policy`` when the decision was forced to deny by an evaluation error."""


@dataclass(frozen=True, slots=True)
class Subject:
    """Who is asking: the principal with the attributes policies look at."""

    id: str  # principal uuid as str
    name: str
    kind: str  # "human" | "service"
    role: str  # viewer | developer | approver | operator | admin | auditor
    namespaces: frozenset[str] = frozenset()  # namespace memberships
    ci_identities: frozenset[str] = frozenset()  # lower-cased CI logins owned by this human


@dataclass(frozen=True, slots=True)
class Resource:
    """What is acted on.

    ``attrs`` are string attributes policies may read. A ``Promotion`` must carry
    ``requested_by`` and ``registered_by`` (principal ids) and ``ci_actor`` (lower-cased CI login,
    or ``""``); without them an ``approve`` or ``cancel_promotion`` decision fails closed.
    """

    type: str  # one of RESOURCE_TYPES
    id: str
    namespace: str | None = None  # owning namespace (None for global resources)
    attrs: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one authorization request and the policies that determined it."""

    allowed: bool
    action: str
    policies: tuple[str, ...]  # @id annotations of the determining policies; () = default deny
    errors: tuple[str, ...] = ()

    @property
    def policy(self) -> str:
        """First determining policy id; ``default-deny`` when none matched, or
        ``evaluation-error`` when an evaluation error forced the deny."""
        if self.policies:
            return self.policies[0]
        return EVALUATION_ERROR if self.errors else DEFAULT_DENY

    def to_audit(self) -> dict[str, object]:
        """The decision as it is written into an audit event (``errors`` only when present)."""
        out: dict[str, object] = {
            "allowed": self.allowed,
            "action": self.action,
            "policies": list(self.policies),
        }
        if self.errors:
            out["errors"] = list(self.errors)
        return out


class Authorizer(Protocol):
    """Evaluates access requests; fails closed (deny) on any evaluation error."""

    digest: str  # "sha256:<hex>" of the active policy set (schema + policies + gates)

    def authorize(
        self,
        subject: Subject,
        action: str,
        resource: Resource,
        context: Mapping[str, str | bool | int] | None = None,
    ) -> Decision: ...

    def allowed_namespaces(
        self, subject: Subject, action: str, namespaces: Iterable[str]
    ) -> set[str]:
        """The subset of ``namespaces`` on which ``subject`` may perform ``action`` (batch)."""
        ...
