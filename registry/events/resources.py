"""What an audit event's resource is, for the namespace filter and the owner's read check.

The read check goes through the same services and authorizer as the API: the owner is turned
into an ``Actor`` with its role and memberships read fresh, and the service that would answer
``GET`` on the resource decides (a promotion or deployment the owner may not read is "not
found" to it, exactly as over HTTP).
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor, adapter_resource, audit_resource
from registry.access.subjects import load_actor
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.service import current_attributes
from registry.catalog.models import Namespace
from registry.deployments import service as deployments
from registry.deployments.models import Deployment
from registry.errors import DeploymentNotFound, PromotionNotFound, RegistryError
from registry.policy.types import Authorizer
from registry.promotions import reads as promotions
from registry.promotions.models import PromotionRequest


def _split(resource: str) -> tuple[str, str]:
    kind, _, ident = resource.partition(":")
    return kind, ident


def _adapter(ident: str) -> tuple[str, str] | None:
    namespace, _, rest = ident.partition("/")
    name = rest.split("@", 1)[0]
    return (namespace, name) if namespace and name else None


def namespace_of(session: Session, resource: str) -> str | None:
    """The namespace an audit resource (``adapter:NS/NAME@vN``, ``deployment:NAME``,
    ``promotion:UUID``) lives in; None when unknown or gone."""
    kind, ident = _split(resource)
    if kind == "adapter":
        found = _adapter(ident)
        return found[0] if found else None
    if kind == "deployment":
        stmt = (
            select(Namespace.name)
            .join(Deployment, Deployment.namespace_id == Namespace.id)
            .where(Deployment.name == ident)
        )
        return session.scalars(stmt).first()
    if kind == "promotion":
        try:
            promotion_id = uuid.UUID(ident)
        except ValueError:
            return None
        stmt = (
            select(Namespace.name)
            .join(Deployment, Deployment.namespace_id == Namespace.id)
            .join(PromotionRequest, PromotionRequest.deployment_id == Deployment.id)
            .where(PromotionRequest.id == promotion_id)
        )
        return session.scalars(stmt).first()
    return None


def owner_actor(session: Session, owner_id: uuid.UUID, authorizer: Authorizer) -> Actor | None:
    """The owner as the policy engine sees it now; None when disabled or gone."""
    attrs = current_attributes(session, owner_id)
    if attrs is None:
        return None
    principal = AuthenticatedPrincipal(
        id=owner_id, name=attrs.name, kind=attrs.kind, role=attrs.role
    )
    try:
        return load_actor(session, principal, authorizer)
    except RegistryError:
        return None


def may_read(session: Session, actor: Actor, resource: str) -> bool:
    """Whether ``actor`` may read the audit event's resource (fail closed on anything odd)."""
    kind, ident = _split(resource)
    if kind == "adapter":
        found = _adapter(ident)
        return found is not None and actor.decide("read", adapter_resource(*found)).allowed
    if kind == "deployment":
        try:
            deployments.get_deployment(session, actor=actor, name=ident)
        except (DeploymentNotFound, RegistryError):
            return False
        return True
    if kind == "promotion":
        try:
            promotions.load(session, actor, uuid.UUID(ident), for_update=False)
        except (ValueError, PromotionNotFound, RegistryError):
            return False
        return True
    if kind == "audit-checkpoint":  # registry-wide: those who may read the audit log
        return actor.decide("read_audit", audit_resource()).allowed
    return False
