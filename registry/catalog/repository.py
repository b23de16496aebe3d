"""Catalog queries: one class per aggregate; no commits, no business rules."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from registry.auth.models import Principal
from registry.catalog.models import (
    Adapter,
    AdapterVersion,
    BaseModel,
    BaseModelFile,
    BaseModelVersion,
    Namespace,
    VersionFile,
    VersionTag,
)
from registry.db.upsert import insert_ignore
from registry.validation.methods.names import MethodSelector


def _grouped(
    session: Session,
    owner_ids: Sequence[uuid.UUID],
    owner: InstrumentedAttribute[uuid.UUID],
    value: Any,
    order_by: Any,
) -> dict[uuid.UUID, list[Any]]:
    """``{owner id: [value, ...]}`` for every id (empty lists included) in one query."""
    out: dict[uuid.UUID, list[Any]] = {i: [] for i in owner_ids}
    if owner_ids:
        stmt = select(owner, value).where(owner.in_(owner_ids)).order_by(order_by)
        for owner_id, item in session.execute(stmt):
            out[owner_id].append(item)
    return out


class NamespaceRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_name(self, name: str) -> Namespace | None:
        return self.session.scalars(select(Namespace).where(Namespace.name == name)).one_or_none()

    def add(self, namespace: Namespace) -> Namespace:
        self.session.add(namespace)
        self.session.flush()
        return namespace

    def list_page(
        self, *, after: str | None, limit: int, names: set[str] | None = None
    ) -> list[Namespace]:
        stmt = select(Namespace).order_by(Namespace.name).limit(limit)
        if after is not None:
            stmt = stmt.where(Namespace.name > after)
        if names is not None:
            stmt = stmt.where(Namespace.name.in_(sorted(names)))
        return list(self.session.scalars(stmt))

    def all_names(self) -> list[str]:
        return list(self.session.scalars(select(Namespace.name)))


class BaseModelRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_by_name(self, name: str) -> BaseModel | None:
        return self.session.scalars(select(BaseModel).where(BaseModel.name == name)).one_or_none()

    def get_or_create(self, name: str) -> BaseModel:
        insert_ignore(
            self.session,
            BaseModel,
            [{"id": uuid.uuid4(), "name": name}],
            index_elements=["name"],
        )
        found = self.get_by_name(name)
        assert found is not None
        return found

    def get_version(self, name: str, revision: str) -> BaseModelVersion | None:
        stmt = (
            select(BaseModelVersion)
            .join(BaseModel, BaseModel.id == BaseModelVersion.base_model_id)
            .where(BaseModel.name == name, BaseModelVersion.revision == revision)
        )
        return self.session.scalars(stmt).one_or_none()

    def version_ids(self, base_model_id: uuid.UUID) -> list[uuid.UUID]:
        stmt = select(BaseModelVersion.id).where(BaseModelVersion.base_model_id == base_model_id)
        return list(self.session.scalars(stmt))

    def get_version_by_id(self, version_id: uuid.UUID) -> BaseModelVersion | None:
        return self.session.get(BaseModelVersion, version_id)

    def names_of(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """``{base_model_version_id: "NAME@REV"}`` for display."""
        if not version_ids:
            return {}
        stmt = (
            select(BaseModelVersion.id, BaseModel.name, BaseModelVersion.revision)
            .join(BaseModel, BaseModel.id == BaseModelVersion.base_model_id)
            .where(BaseModelVersion.id.in_(set(version_ids)))
        )
        return {row[0]: f"{row[1]}@{row[2]}" for row in self.session.execute(stmt)}

    def add_version(self, version: BaseModelVersion) -> BaseModelVersion:
        self.session.add(version)
        self.session.flush()
        return version

    def add_files(self, files: list[BaseModelFile]) -> None:
        self.session.add_all(files)
        self.session.flush()

    def files(self, version_id: uuid.UUID) -> list[BaseModelFile]:
        stmt = (
            select(BaseModelFile)
            .where(BaseModelFile.base_model_version_id == version_id)
            .order_by(BaseModelFile.name)
        )
        return list(self.session.scalars(stmt))

    def list_page(self, *, after: str | None, limit: int) -> list[BaseModel]:
        stmt = select(BaseModel).order_by(BaseModel.name).limit(limit)
        if after is not None:
            stmt = stmt.where(BaseModel.name > after)
        return list(self.session.scalars(stmt))

    def revisions(self, base_model_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        return _grouped(
            self.session,
            base_model_ids,
            BaseModelVersion.base_model_id,
            BaseModelVersion.revision,
            BaseModelVersion.created_at,
        )


class AdapterRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get(
        self, namespace_id: uuid.UUID, name: str, *, for_update: bool = False
    ) -> Adapter | None:
        stmt = select(Adapter).where(Adapter.namespace_id == namespace_id, Adapter.name == name)
        if for_update:
            # populate_existing: the row may already sit in the identity map from an earlier,
            # unlocked read; the locked read must refresh it (latest_version!).
            stmt = stmt.with_for_update().execution_options(populate_existing=True)
        return self.session.scalars(stmt).one_or_none()

    def ensure(self, namespace_id: uuid.UUID, name: str) -> None:
        """Create the adapter row unless it exists (safe under concurrent first pushes)."""
        insert_ignore(
            self.session,
            Adapter,
            [
                {
                    "id": uuid.uuid4(),
                    "namespace_id": namespace_id,
                    "name": name,
                    "description": "",
                    "latest_version": 0,
                }
            ],
            index_elements=["namespace_id", "name"],
        )

    def list_page(
        self,
        *,
        namespace_id: uuid.UUID | None,
        after: tuple[str, str] | None,
        limit: int,
        version_filter: VersionFilterSpec | None = None,
        namespaces: set[str] | None = None,
        name_contains: str | None = None,
    ) -> list[tuple[Adapter, str]]:
        """Adapters by (namespace, name); with a filter, those having a matching version;
        ``namespaces`` limits the listing to those namespace names; ``name_contains`` to names
        holding that text (a literal: ``%`` and ``_`` match themselves)."""
        stmt = (
            select(Adapter, Namespace.name)
            .join(Namespace, Namespace.id == Adapter.namespace_id)
            .order_by(Namespace.name, Adapter.name)
            .limit(limit)
        )
        if namespace_id is not None:
            stmt = stmt.where(Adapter.namespace_id == namespace_id)
        if namespaces is not None:
            stmt = stmt.where(Namespace.name.in_(sorted(namespaces)))
        if after is not None:
            stmt = stmt.where(
                (Namespace.name > after[0])
                | ((Namespace.name == after[0]) & (Adapter.name > after[1]))
            )
        if version_filter is not None and not version_filter.empty:
            matching = _filtered(select(AdapterVersion.id), version_filter).where(
                AdapterVersion.adapter_id == Adapter.id
            )
            stmt = stmt.where(matching.exists())
        if name_contains:
            stmt = stmt.where(Adapter.name.contains(name_contains, autoescape=True))
        return [(row[0], row[1]) for row in self.session.execute(stmt)]


@dataclass(frozen=True, slots=True)
class VersionFilterSpec:
    """Resolved version filters (base already turned into base version ids)."""

    method: MethodSelector | None = None
    base_version_ids: list[uuid.UUID] | None = None
    rank: int | None = None
    state: str | None = None
    tag: str | None = None

    @property
    def empty(self) -> bool:
        return all(
            v is None for v in (self.method, self.base_version_ids, self.rank, self.state, self.tag)
        )


def _method_clause(method: MethodSelector) -> ColumnElement[bool]:
    """``peft_type`` among the selector's (an IN on the indexed column, so a family is one
    index range per type), or by prefix; a variant adds its boolean flag column."""
    clauses: list[ColumnElement[bool]] = [AdapterVersion.peft_type.in_(method.peft_types)]
    clauses += [AdapterVersion.peft_type.startswith(p, autoescape=True) for p in method.prefixes]
    clause = or_(*clauses)
    if method.flag is not None:
        clause = and_(clause, getattr(AdapterVersion, method.flag).is_(True))
    return clause


def _filtered(stmt: Select[Any], f: VersionFilterSpec) -> Select[Any]:
    if f.method is not None:
        stmt = stmt.where(_method_clause(f.method))
    if f.base_version_ids is not None:
        stmt = stmt.where(AdapterVersion.base_model_version_id.in_(f.base_version_ids))
    if f.rank is not None:
        stmt = stmt.where(AdapterVersion.r == f.rank)
    if f.state is not None:
        stmt = stmt.where(AdapterVersion.state == f.state)
    if f.tag is not None:
        stmt = stmt.join(
            VersionTag,
            (VersionTag.adapter_version_id == AdapterVersion.id) & (VersionTag.tag == f.tag),
        )
    return stmt


class VersionRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, version: AdapterVersion) -> AdapterVersion:
        self.session.add(version)
        self.session.flush()
        return version

    def get(self, adapter_id: uuid.UUID, number: int) -> AdapterVersion | None:
        stmt = select(AdapterVersion).where(
            AdapterVersion.adapter_id == adapter_id, AdapterVersion.version == number
        )
        return self.session.scalars(stmt).one_or_none()

    def get_by_digest(self, adapter_id: uuid.UUID, digest: str) -> AdapterVersion | None:
        stmt = select(AdapterVersion).where(
            AdapterVersion.adapter_id == adapter_id, AdapterVersion.digest == digest
        )
        return self.session.scalars(stmt).one_or_none()

    def get_latest(self, adapter_id: uuid.UUID) -> AdapterVersion | None:
        stmt = (
            select(AdapterVersion)
            .where(AdapterVersion.adapter_id == adapter_id)
            .order_by(AdapterVersion.version.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def get_by_id(self, version_id: uuid.UUID) -> AdapterVersion | None:
        return self.session.get(AdapterVersion, version_id)

    def list_page(
        self, adapter_id: uuid.UUID, *, before: int | None, limit: int, filters: VersionFilterSpec
    ) -> list[AdapterVersion]:
        """Newest first; keyset on ``version`` (index ``(adapter_id, <filter>, version)``)."""
        # With a tag filter, order by the tag row's copy of the version: the same values, but
        # PostgreSQL can then walk ix_version_tags_adapter_tag_version instead of sorting.
        order = VersionTag.version if filters.tag is not None else AdapterVersion.version
        stmt: Select[Any] = (
            select(AdapterVersion)
            .where(AdapterVersion.adapter_id == adapter_id)
            .order_by(order.desc())
            .limit(limit)
        )
        if before is not None:
            stmt = stmt.where(order < before)
        if filters.tag is not None:
            # Constrain the tag side by adapter too, so the planner walks
            # ix_version_tags_adapter_tag_version backwards and stops after `limit` rows.
            stmt = stmt.where(VersionTag.adapter_id == adapter_id)
        return list(self.session.scalars(_filtered(stmt, filters)))

    def add_files(self, files: list[VersionFile]) -> None:
        """Stage file rows (flushed with the caller's next flush)."""
        self.session.add_all(files)

    def files(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[VersionFile]]:
        return _grouped(
            self.session, version_ids, VersionFile.adapter_version_id, VersionFile, VersionFile.name
        )

    def sizes(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
        """``{version id: total bytes of its files}`` in one grouped query."""
        if not version_ids:
            return {}
        stmt = (
            select(VersionFile.adapter_version_id, func.sum(VersionFile.size))
            .where(VersionFile.adapter_version_id.in_(set(version_ids)))
            .group_by(VersionFile.adapter_version_id)
        )
        return {row[0]: int(row[1] or 0) for row in self.session.execute(stmt)}

    def tags(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, list[str]]:
        return _grouped(
            self.session, version_ids, VersionTag.adapter_version_id, VersionTag.tag, VersionTag.tag
        )

    def add_tags(self, version: AdapterVersion, tags: list[str]) -> None:
        insert_ignore(
            self.session,
            VersionTag,
            [
                {
                    "id": uuid.uuid4(),
                    "adapter_version_id": version.id,
                    "adapter_id": version.adapter_id,
                    "version": version.version,
                    "tag": t,
                }
                for t in tags
            ],
            index_elements=["adapter_version_id", "tag"],
        )

    def remove_tags(self, version_id: uuid.UUID, tags: list[str]) -> None:
        if not tags:
            return
        for row in self.session.scalars(
            select(VersionTag).where(
                VersionTag.adapter_version_id == version_id, VersionTag.tag.in_(tags)
            )
        ):
            self.session.delete(row)
        self.session.flush()

    def principal_names(self, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        if not ids:
            return {}
        stmt = select(Principal.id, Principal.name).where(Principal.id.in_(set(ids)))
        return {row[0]: row[1] for row in self.session.execute(stmt)}

    def refs_of(self, version_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
        """``{adapter_version_id: "NS/NAME@vN"}`` for display."""
        if not version_ids:
            return {}
        stmt = (
            select(AdapterVersion.id, Namespace.name, Adapter.name, AdapterVersion.version)
            .join(Adapter, Adapter.id == AdapterVersion.adapter_id)
            .join(Namespace, Namespace.id == Adapter.namespace_id)
            .where(AdapterVersion.id.in_(set(version_ids)))
        )
        return {row[0]: f"{row[1]}/{row[2]}@v{row[3]}" for row in self.session.execute(stmt)}
