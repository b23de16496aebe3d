"""Read side of the catalog: resolving references, listing, lineage walks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor
from registry.catalog.models import Adapter, AdapterVersion, LineageEdge, Namespace
from registry.catalog.namespaces import get_namespace, readable
from registry.catalog.repository import (
    AdapterRepository,
    BaseModelRepository,
    VersionFilterSpec,
    VersionRepository,
)
from registry.catalog.repository_provenance import LineageRepository
from registry.errors import AdapterNotFound, BaseModelNotFound, UnknownMethod, VersionNotFound
from registry.validation.methods import names

MAX_LINEAGE_DEPTH = 50
MAX_LINEAGE_EDGES = 10_000


@dataclass(frozen=True, slots=True)
class VersionContext:
    namespace: Namespace
    adapter: Adapter
    version: AdapterVersion

    @property
    def ref(self) -> str:
        """The canonical reference ``NS/NAME@vN``."""
        return f"{self.namespace.name}/{self.adapter.name}@v{self.version.version}"


def get_adapter(
    session: Session, *, namespace: str, name: str, actor: Actor | None, action: str = "read"
) -> tuple[Namespace, Adapter]:
    """``namespace/name`` or ``namespace_not_found`` / ``adapter_not_found``; with ``actor``,
    ``action`` is authorized in the namespace first."""
    refs.adapter_name(name)
    ns = get_namespace(session, name=namespace, actor=actor, action=action)
    adapter = AdapterRepository(session).get(ns.id, name)
    if adapter is None:
        raise AdapterNotFound("no such adapter", context={"adapter": f"{namespace}/{name}"})
    return ns, adapter


def resolve_version(
    session: Session, *, ref: str | refs.AdapterRef, actor: Actor | None, action: str = "read"
) -> VersionContext:
    """Resolve ``NS/NAME[@vN|@latest|@sha256:...]`` to a version (latest when unspecified);
    with ``actor``, ``action`` is authorized in the namespace first."""
    parsed = refs.parse_adapter_ref(ref) if isinstance(ref, str) else ref
    ns, adapter = get_adapter(
        session, namespace=parsed.namespace, name=parsed.name, actor=actor, action=action
    )
    repo = VersionRepository(session)
    if parsed.version is not None:
        version = repo.get(adapter.id, parsed.version)
    elif parsed.digest is not None:
        version = repo.get_by_digest(adapter.id, parsed.digest)
    else:
        version = repo.get_latest(adapter.id)
    if version is None:
        raise VersionNotFound("no such adapter version", context={"ref": str(parsed)})
    return VersionContext(ns, adapter, version)


def list_adapters(
    session: Session,
    *,
    actor: Actor,
    namespace: str | None,
    filters: VersionFilter | None = None,
    after: tuple[str, str] | None,
    limit: int,
    name_contains: str | None = None,
) -> list[tuple[Adapter, str]]:
    """Adapters the caller may read, ordered by (namespace, name), optionally within one
    namespace, whose name holds ``name_contains``, and only those with at least one version
    matching ``filters``."""
    ns_id = (
        get_namespace(session, name=namespace, actor=actor).id if namespace is not None else None
    )
    spec = _resolve_filter(session, filters) if filters is not None else None
    return AdapterRepository(session).list_page(
        namespace_id=ns_id,
        after=after,
        limit=limit,
        version_filter=spec,
        namespaces=None if ns_id is not None else readable(session, actor),
        name_contains=name_contains,
    )


@dataclass(frozen=True, slots=True)
class VersionFilter:
    peft_type: str | None = None
    base: str | None = None
    rank: int | None = None
    state: str | None = None
    tag: str | None = None


def _resolve_filter(session: Session, filters: VersionFilter) -> VersionFilterSpec:
    if filters.tag is not None:
        refs.tag_name(filters.tag)
    return VersionFilterSpec(
        method=_method(filters.peft_type) if filters.peft_type is not None else None,
        # An empty ?base= is a malformed name like an empty ?tag=, not "no filter".
        base_version_ids=(
            _base_version_ids(session, filters.base) if filters.base is not None else None
        ),
        rank=filters.rank,
        state=filters.state,
        tag=filters.tag,
    )


def _method(term: str) -> names.MethodSelector:
    """The methods a ``peft_type`` filter names (case-insensitive; variants such as ``dora``;
    ``family:NAME``), or ``unknown_method``."""
    selector = names.select_methods(term)
    if selector is None:
        raise UnknownMethod(
            f"no method, variant or family named {term[:64]!r}",
            context={
                "peft_type": term[:64],
                "known": names.search_names(),
                "families": sorted(names.known_families()),
            },
        )
    return selector


def list_versions(
    session: Session,
    *,
    actor: Actor,
    namespace: str,
    name: str,
    filters: VersionFilter,
    before: int | None,
    limit: int,
) -> tuple[Namespace, Adapter, list[AdapterVersion]]:
    """Versions newest first, filtered; ``before`` is the keyset cursor (a version number).

    ``base`` is ``NAME`` (any revision) or ``NAME@REV``.
    """
    ns, adapter = get_adapter(session, namespace=namespace, name=name, actor=actor)
    versions = VersionRepository(session).list_page(
        adapter.id, before=before, limit=limit, filters=_resolve_filter(session, filters)
    )
    return ns, adapter, versions


def _base_version_ids(session: Session, base: str) -> list[uuid.UUID]:
    repo = BaseModelRepository(session)
    if "@" in base:
        ref = refs.parse_base_ref(base)
        found = repo.get_version(ref.name, ref.revision)
        if found is None:
            raise BaseModelNotFound("no such base model revision", context={"base": base})
        return [found.id]
    refs.base_model_name(base)
    model = repo.get_by_name(base)
    if model is None:
        raise BaseModelNotFound("no such base model", context={"base": base})
    return repo.version_ids(model.id)


@dataclass(frozen=True, slots=True)
class LineageHop:
    edge: LineageEdge
    depth: int


def walk_lineage(
    session: Session,
    *,
    actor: Actor | None,
    version_id: uuid.UUID | None = None,
    base_version_id: uuid.UUID | None = None,
    descendants: bool,
) -> list[LineageHop]:
    """Breadth-first ancestors (or descendants) of an adapter version or a base model version,
    each edge once, through both kinds of node: the descendants of a version are every
    registered version built from it (its blast radius), those made from a base merged from it
    included. Bounded depth and size (:data:`MAX_LINEAGE_DEPTH`, :data:`MAX_LINEAGE_EDGES`).
    With ``actor``, only edges whose adapter versions it may read are returned."""
    hops = _walk(session, version_id, base_version_id, descendants)
    return hops if actor is None else _visible(session, actor, hops)


def _visible(session: Session, actor: Actor, hops: list[LineageHop]) -> list[LineageHop]:
    ids = {i for h in hops for i in (h.edge.child_version_id, h.edge.parent_version_id) if i}
    namespaces = {
        i: ref.split("/", 1)[0] for i, ref in VersionRepository(session).refs_of(list(ids)).items()
    }
    readable = actor.readable_namespaces(set(namespaces.values()))
    return [
        h
        for h in hops
        if all(
            namespaces.get(i) in readable
            for i in (h.edge.child_version_id, h.edge.parent_version_id)
            if i is not None
        )
    ]


def _walk(
    session: Session,
    version_id: uuid.UUID | None,
    base_version_id: uuid.UUID | None,
    descendants: bool,
) -> list[LineageHop]:
    repo = LineageRepository(session)
    start = ("a", version_id) if version_id is not None else ("b", base_version_id)
    seen: set[tuple[str, uuid.UUID | None]] = {start}
    seen_edges: set[uuid.UUID] = set()
    frontier = [start]
    hops: list[LineageHop] = []
    for depth in range(1, MAX_LINEAGE_DEPTH + 1):
        if not frontier or len(hops) >= MAX_LINEAGE_EDGES:
            break
        adapters = [i for k, i in frontier if k == "a" and i is not None]
        bases = [i for k, i in frontier if k == "b" and i is not None]
        edges = (
            repo.children_of(adapters, bases) if descendants else repo.parents_of(adapters, bases)
        )
        frontier = []
        for edge in edges[: MAX_LINEAGE_EDGES - len(hops)]:
            if edge.id in seen_edges:
                continue
            seen_edges.add(edge.id)
            hops.append(LineageHop(edge, depth))
            for node in _next_nodes(edge, descendants):
                if node not in seen:
                    seen.add(node)
                    frontier.append(node)
    return hops


def _next_nodes(edge: LineageEdge, descendants: bool) -> list[tuple[str, uuid.UUID | None]]:
    if descendants:
        pairs = [("a", edge.child_version_id), ("b", edge.child_base_version_id)]
    else:
        pairs = [("a", edge.parent_version_id), ("b", edge.parent_base_version_id)]
    return [(k, i) for k, i in pairs if i is not None]
