"""A principal's lifecycle after creation: disable / enable, change of role, removal of namespace
memberships (all admin, all audited, all idempotent: asking for the state that already holds
changes nothing and appends no event).

Disabling keeps the principal's tokens (enabling restores them) but refuses every one of them
at once: authorization reads ``disabled_at`` fresh on every request. The per-process caches that
skip that read (token cache, resolve decisions) are dropped on every replica through the routing
epoch, which every replica's routing cache watches anyway (a NOTIFY on PostgreSQL, the poll
elsewhere): the API layer bumps it in the same transaction
(:func:`registry.deployments.service.signal_routing_change`; deployments sit above principals).
Each function returns whether it changed anything.

The registry never loses its last enabled admin: disabling it, or taking its role, is refused
(``409 last_admin``). The enabled admins are locked (``FOR UPDATE``, in id order) before they are
counted, so two admins disabling each other at the same time cannot both succeed on PostgreSQL;
SQLite serialises writers.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from registry.access.actor import Actor, registry_resource
from registry.auth.models import Principal, PrincipalNamespace, Role
from registry.catalog.namespaces import get_namespace
from registry.errors import BadRequest, LastAdmin
from registry.principals.repository import namespace_names
from registry.principals.service import PrincipalView, get_principal


def set_disabled(
    session: Session, *, actor: Actor, name: str, disabled: bool
) -> tuple[PrincipalView, bool]:
    """Disable (``disabled=True``) or enable a principal. Disabling the last enabled admin
    raises ``last_admin``; the principal's tokens are kept."""
    actor.require("manage_principals", registry_resource())
    principal = get_principal(session, name=name)
    if (principal.disabled_at is not None) == disabled:
        return _view(session, principal), False
    if disabled and principal.role == Role.admin:
        _keep_an_admin(session, principal)
    principal.disabled_at = datetime.now(UTC) if disabled else None
    session.flush()
    actor.audit(
        session,
        "principal.disable" if disabled else "principal.enable",
        f"principal:{name}",
        before={"disabled": not disabled},
        after={"disabled": disabled},
    )
    return _view(session, principal), True


def set_role(session: Session, *, actor: Actor, name: str, role: str) -> tuple[PrincipalView, bool]:
    """Give a principal another role (``bad_request`` for an unknown one). Taking the admin
    role from the last enabled admin raises ``last_admin``."""
    actor.require("manage_principals", registry_resource())
    if role not in {r.value for r in Role}:
        raise BadRequest(
            "unknown role", context={"role": role[:50], "roles": [r.value for r in Role]}
        )
    principal = get_principal(session, name=name)
    before = principal.role
    if before == role:
        return _view(session, principal), False
    if before == Role.admin and principal.disabled_at is None:
        _keep_an_admin(session, principal)
    principal.role = role
    session.flush()
    actor.audit(
        session,
        "principal.role",
        f"principal:{name}",
        before={"role": before},
        after={"role": role},
    )
    return _view(session, principal), True


def remove_memberships(
    session: Session, *, actor: Actor, name: str, namespaces: list[str]
) -> tuple[PrincipalView, bool]:
    """Remove namespace memberships (idempotent: a namespace the principal is no member of is
    skipped; an unknown namespace is ``namespace_not_found``)."""
    actor.require("manage_principals", registry_resource())
    principal = get_principal(session, name=name)
    ids = {n: get_namespace(session, name=n).id for n in namespaces}
    current = set(namespace_names(session, principal.id))
    removed = sorted(current & set(ids))
    for namespace in removed:
        row = session.get(PrincipalNamespace, (principal.id, ids[namespace]))
        if row is not None:
            session.delete(row)
    session.flush()
    if removed:
        actor.audit(
            session,
            "principal.revoke",
            f"principal:{name}",
            before={"namespaces": sorted(current)},
            after={"namespaces": sorted(current - set(removed))},
        )
    return PrincipalView(principal, sorted(current - set(removed))), bool(removed)


def _keep_an_admin(session: Session, leaving: Principal) -> None:
    """Refuse when ``leaving`` is the only enabled admin (locks the enabled admins first)."""
    stmt = (
        select(Principal.id)
        .where(Principal.role == Role.admin, Principal.disabled_at.is_(None))
        .order_by(Principal.id)
        .with_for_update()
    )
    others = [i for i in session.scalars(stmt) if i != leaving.id]
    if not others:
        raise LastAdmin(
            "the last enabled admin cannot be disabled or lose its role",
            context={"principal": leaving.name},
        )


def _view(session: Session, principal: Principal) -> PrincipalView:
    return PrincipalView(principal, namespace_names(session, principal.id))
