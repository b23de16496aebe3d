"""Namespaces: the teams or tenants that own adapters."""

from __future__ import annotations

from sqlalchemy.orm import Session

from registry.catalog import refs
from registry.catalog.models import Namespace
from registry.catalog.repository import NamespaceRepository
from registry.errors import NamespaceAlreadyExists, NamespaceNotFound


def create_namespace(session: Session, *, name: str, description: str = "") -> Namespace:
    """Create a namespace. Errors: ``invalid_name``, ``namespace_exists``. Flushes."""
    refs.namespace_name(name)
    repo = NamespaceRepository(session)
    if repo.get_by_name(name) is not None:
        raise NamespaceAlreadyExists("namespace exists", context={"namespace": name})
    return repo.add(Namespace(name=name, description=description))


def get_namespace(session: Session, *, name: str) -> Namespace:
    """The namespace called ``name`` or ``namespace_not_found``."""
    refs.namespace_name(name)
    found = NamespaceRepository(session).get_by_name(name)
    if found is None:
        raise NamespaceNotFound("no such namespace", context={"namespace": name})
    return found


def list_namespaces(session: Session, *, after: str | None, limit: int) -> list[Namespace]:
    """Namespaces ordered by name, after the cursor ``after``."""
    return NamespaceRepository(session).list_page(after=after, limit=limit)
