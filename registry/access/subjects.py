"""Build the policy engine's view of a caller from the database (fresh on every request)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.auth.principal import AuthenticatedPrincipal
from registry.auth.service import current_attributes
from registry.errors import Unauthenticated
from registry.policy.types import Authorizer, Subject


def load_subject(session: Session, principal: AuthenticatedPrincipal) -> Subject:
    """Role, kind and memberships as they are now (a token cached for a few seconds must not
    keep a role or membership that was taken away). A token minted for a CI publisher acts only
    in the namespaces the publisher is bound to."""
    row = current_attributes(session, principal.id)
    if row is None:
        raise Unauthenticated("a valid API token is required")
    namespaces = frozenset(row.namespaces)
    ci = principal.ci_identity
    if ci is not None and isinstance(ci.get("namespaces"), list):
        namespaces = namespaces & frozenset(str(n) for n in ci["namespaces"])
    return Subject(
        id=str(principal.id),
        name=row.name,
        kind=row.kind,
        role=row.role,
        namespaces=namespaces,
        ci_identities=frozenset([row.ci_identity]) if row.ci_identity else frozenset(),
    )


def load_actor(
    session: Session,
    principal: AuthenticatedPrincipal,
    authorizer: Authorizer,
    request_id: str | None = None,
) -> Actor:
    """The caller as services see it: ``principal`` with its subject read fresh."""
    return Actor(
        principal=principal,
        subject=load_subject(session, principal),
        authorizer=authorizer,
        request_id=request_id,
    )
