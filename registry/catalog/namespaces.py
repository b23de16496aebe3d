"""Namespaces: the teams or tenants that own adapters."""

from __future__ import annotations

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, namespace_resource, registry_resource
from registry.catalog.models import Namespace
from registry.catalog.repository import NamespaceRepository
from registry.errors import NamespaceAlreadyExists, NamespaceNotFound


def create_namespace(
    session: Session, *, actor: Actor, name: str, description: str = ""
) -> Namespace:
    """Create a namespace. Errors: ``invalid_name``, ``namespace_exists``. Flushes; audited."""
    refs.namespace_name(name)
    actor.require("create_namespace", registry_resource())
    repo = NamespaceRepository(session)
    if repo.get_by_name(name) is not None:
        raise NamespaceAlreadyExists("namespace exists", context={"namespace": name})
    ns = repo.add(Namespace(name=name, description=description))
    actor.audit(session, "namespace.create", f"namespace:{name}", after={"name": name})
    return ns


def require_in_namespace(actor: Actor | None, action: str, namespace: str) -> None:
    """Authorize ``action`` in ``namespace``; a namespace the caller may not read is reported
    as ``namespace_not_found`` (404 before 403)."""
    if actor is None:
        return
    refs.namespace_name(namespace)
    actor.require(
        action,
        namespace_resource(namespace),
        hidden=NamespaceNotFound("no such namespace", context={"namespace": namespace}),
    )


def get_namespace(
    session: Session, *, name: str, actor: Actor | None = None, action: str = "read"
) -> Namespace:
    """The namespace called ``name`` or ``namespace_not_found`` (also when ``actor`` may not
    read it); with ``actor``, ``action`` is authorized in it."""
    refs.namespace_name(name)
    require_in_namespace(actor, action, name)
    found = NamespaceRepository(session).get_by_name(name)
    if found is None:
        raise NamespaceNotFound("no such namespace", context={"namespace": name})
    return found


def list_namespaces(
    session: Session, *, actor: Actor, after: str | None, limit: int
) -> list[Namespace]:
    """Namespaces the caller may read, ordered by name, after the cursor ``after``."""
    repo = NamespaceRepository(session)
    return repo.list_page(after=after, limit=limit, names=readable(session, actor))


def readable(session: Session, actor: Actor) -> set[str]:
    """Names of the namespaces ``actor`` may read."""
    return actor.readable_namespaces(NamespaceRepository(session).all_names())
