"""Catalog queries for provenance: datasets, lineage edges, evaluations (no commits)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from registry.catalog.models import Dataset, Evaluation, LineageEdge, VersionDataset
from registry.db.upsert import insert_ignore


class DatasetRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def get_or_create(self, name: str, digest: str, uri: str | None) -> Dataset:
        insert_ignore(
            self.session,
            Dataset,
            [{"id": uuid.uuid4(), "name": name, "digest": digest, "uri": uri}],
            index_elements=["name", "digest"],
        )
        stmt = select(Dataset).where(Dataset.name == name, Dataset.digest == digest)
        return self.session.scalars(stmt).one()

    def link(self, version_id: uuid.UUID, dataset_ids: list[uuid.UUID]) -> None:
        """Stage links to datasets (flushed with the caller's next flush)."""
        self.session.add_all(
            VersionDataset(adapter_version_id=version_id, dataset_id=d) for d in set(dataset_ids)
        )

    def for_version(self, version_id: uuid.UUID) -> list[Dataset]:
        stmt = (
            select(Dataset)
            .join(VersionDataset, VersionDataset.dataset_id == Dataset.id)
            .where(VersionDataset.adapter_version_id == version_id)
            .order_by(Dataset.name)
        )
        return list(self.session.scalars(stmt))


class LineageRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, edges: list[LineageEdge]) -> None:
        """Stage edges (flushed with the caller's next flush)."""
        self.session.add_all(edges)

    def parents_of(
        self, version_ids: Sequence[uuid.UUID], base_version_ids: Sequence[uuid.UUID] = ()
    ) -> list[LineageEdge]:
        """Edges whose child is one of these adapter versions or base versions."""
        stmt = select(LineageEdge).where(
            or_(
                LineageEdge.child_version_id.in_(version_ids),
                LineageEdge.child_base_version_id.in_(base_version_ids),
            )
        )
        return list(self.session.scalars(stmt.order_by(LineageEdge.created_at, LineageEdge.id)))

    def children_of(
        self, version_ids: Sequence[uuid.UUID], base_version_ids: Sequence[uuid.UUID] = ()
    ) -> list[LineageEdge]:
        """Edges whose parent is one of these adapter versions or base versions."""
        stmt = select(LineageEdge).where(
            or_(
                LineageEdge.parent_version_id.in_(version_ids),
                LineageEdge.parent_base_version_id.in_(base_version_ids),
            )
        )
        return list(self.session.scalars(stmt.order_by(LineageEdge.created_at, LineageEdge.id)))


class EvaluationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, evaluation: Evaluation) -> Evaluation:
        self.session.add(evaluation)
        self.session.flush()
        return evaluation

    def list_page(
        self,
        version_id: uuid.UUID,
        *,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
        suite: str | None = None,
    ) -> list[Evaluation]:
        stmt = (
            select(Evaluation)
            .where(Evaluation.adapter_version_id == version_id)
            .order_by(Evaluation.created_at, Evaluation.id)
            .limit(limit)
        )
        if suite is not None:
            stmt = stmt.where(Evaluation.suite == suite)
        if after is not None:
            ts, eid = after
            stmt = stmt.where(
                (Evaluation.created_at > ts)
                | ((Evaluation.created_at == ts) & (Evaluation.id > eid))
            )
        return list(self.session.scalars(stmt))

    def on_base(self, version_id: uuid.UUID, base_version_id: uuid.UUID) -> list[Evaluation]:
        stmt = select(Evaluation).where(
            Evaluation.adapter_version_id == version_id,
            Evaluation.base_model_version_id == base_version_id,
        )
        return list(self.session.scalars(stmt))

    def all_for(self, version_id: uuid.UUID) -> list[Evaluation]:
        stmt = (
            select(Evaluation)
            .where(Evaluation.adapter_version_id == version_id)
            .order_by(Evaluation.created_at)
        )
        return list(self.session.scalars(stmt))
