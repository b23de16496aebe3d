"""Read models assembled from rows in a few batched queries (no lazy loads, no N+1)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from registry.catalog.base_models import BaseVersionView
from registry.catalog.evaluations import ComparisonRow
from registry.catalog.models import (
    Adapter,
    AdapterVersion,
    BaseModelFile,
    Dataset,
    Evaluation,
    LineageEdge,
    LineageRelation,
    VersionFile,
)
from registry.catalog.queries import LineageHop
from registry.catalog.repository import BaseModelRepository, VersionRepository
from registry.catalog.repository_provenance import DatasetRepository, LineageRepository
from registry.catalog.schemas import (
    AdapterRead,
    BaseModelVersionRead,
    ComparisonRead,
    DatasetRead,
    EvaluationRead,
    LineageEdgeRead,
    VersionRead,
)
from registry.catalog.schemas import ComparisonRow as ComparisonRowRead
from registry.schemas import FileRead
from registry.validation.methods.names import method_family, method_title


def serving_name(namespace: str, adapter: str, version: int, digest: str) -> str:
    """Unique per digest, so a server never reloads different weights under an old name."""
    return f"{namespace}--{adapter}--v{version}--{digest.removeprefix('sha256:')[:12]}"


_Body = TypeVar("_Body", bound=BaseModel)


def _read(schema: type[_Body], row: object, **computed: Any) -> _Body:
    """``schema`` filled from ``row``: each field is the row's attribute of the same name unless
    ``computed`` gives it. The schema's fields are the whitelist of what reaches the API (a
    column added to a table stays out until the schema names it); only they are read."""
    fields = schema.model_fields
    if unknown := computed.keys() - fields.keys():
        raise TypeError(f"{schema.__name__} has no field {sorted(unknown)}")
    return schema.model_validate(
        {name: computed[name] if name in computed else getattr(row, name) for name in fields}
    )


def _file_read(f: VersionFile | BaseModelFile) -> FileRead:
    return _read(FileRead, f, digest=f"sha256:{f.digest}")


@dataclass(frozen=True, slots=True)
class KnownParts:
    """What the caller already holds for one version (registration just wrote it), so that
    building the response needs no query."""

    tags: list[str]
    files: list[VersionFile]
    registered_by: str
    base: str
    datasets: list[Dataset]
    trained_on: str | None = None


def version_reads(
    session: Session,
    namespace: str,
    adapter: Adapter,
    versions: Sequence[AdapterVersion],
    *,
    detail: bool = False,
    known: KnownParts | None = None,
) -> list[VersionRead]:
    """Read models for versions of one adapter, in a fixed number of batched queries (none when
    ``known`` describes the single version)."""
    ids = [v.id for v in versions]
    if known is not None:
        assert len(versions) == 1
        vid = versions[0].id
        tags, files = {vid: known.tags}, {vid: known.files}
        principals = {versions[0].registered_by_id: known.registered_by}
        bases = {versions[0].base_model_version_id: known.base}
        datasets = {vid: known.datasets}
        sizes = {vid: sum(f.size for f in known.files)}
        quantized = {vid: known.trained_on} if known.trained_on else {}
    else:
        repo = VersionRepository(session)
        tags = repo.tags(ids)
        sizes = repo.sizes(ids)
        files = repo.files(ids) if detail else {}
        principals = repo.principal_names([v.registered_by_id for v in versions])
        bases = BaseModelRepository(session).names_of([v.base_model_version_id for v in versions])
        provenance = DatasetRepository(session)
        datasets = {v.id: provenance.for_version(v.id) for v in versions} if detail else {}
        quantized = _trained_on_quantized(session, versions) if detail else {}
    out = []
    for v in versions:
        report = v.validation_report or {}
        out.append(
            _read(
                VersionRead,
                v,
                namespace=namespace,
                adapter=adapter.name,
                ref=f"{namespace}/{adapter.name}@v{v.version}",
                method=method_title(v.peft_type, v.config if isinstance(v.config, dict) else None),
                method_family=method_family(v.peft_type),
                size=sizes.get(v.id, 0),
                base=bases.get(v.base_model_version_id, "?"),
                tags=tags.get(v.id, []),
                registered_by=principals.get(v.registered_by_id, "?"),
                ci_identity=public_ci_identity(v.ci_identity),
                files=[_file_read(f) for f in files.get(v.id, [])],
                datasets=[DatasetRead.model_validate(d) for d in datasets.get(v.id, [])],
                trained_on=quantized.get(v.id),
                warnings=list(report.get("warnings", [])) if detail else [],
                verification=report.get("verification"),
                serving_name=serving_name(namespace, adapter.name, v.version, v.digest),
            )
        )
    return out


def _trained_on_quantized(
    session: Session, versions: Sequence[AdapterVersion]
) -> dict[uuid.UUID, str]:
    """``{version id: "NAME@REV"}`` of the quantized base each version declares it was trained
    on (``--trained-on``), where it is not the version's own base."""
    own = {v.id: v.base_model_version_id for v in versions}
    pairs: list[tuple[uuid.UUID, uuid.UUID]] = []
    for e in LineageRepository(session).parents_of(list(own)):
        child, parent = e.child_version_id, e.parent_base_version_id
        if e.relation != LineageRelation.trained_on or child is None or parent is None:
            continue
        if parent != own[child]:
            pairs.append((child, parent))
    names = BaseModelRepository(session).names_of([parent for _, parent in pairs])
    return {child: names.get(parent, "?") for child, parent in pairs}


def adapter_read(adapter: Adapter, namespace: str) -> AdapterRead:
    return _read(AdapterRead, adapter, namespace=namespace)


def base_version_read(view: BaseVersionView, *, with_config: bool = False) -> BaseModelVersionRead:
    v = view.version
    return _read(
        BaseModelVersionRead,
        v,
        name=view.name,
        files=[_file_read(f) for f in view.files],
        config=v.config if with_config else None,
    )


def evaluation_reads(
    session: Session, ref: str, rows: Sequence[Evaluation]
) -> list[EvaluationRead]:
    principals = VersionRepository(session).principal_names([e.recorded_by_id for e in rows])
    bases = BaseModelRepository(session).names_of([e.base_model_version_id for e in rows])
    return [
        _read(
            EvaluationRead,
            e,
            ref=ref,
            base=bases.get(e.base_model_version_id, "?"),
            recorded_by=principals.get(e.recorded_by_id, "?"),
        )
        for e in rows
    ]


def comparison_read(ref_a: str, ref_b: str, rows: Sequence[ComparisonRow]) -> ComparisonRead:
    return ComparisonRead(a=ref_a, b=ref_b, rows=[_read(ComparisonRowRead, r) for r in rows])


def lineage_reads(session: Session, hops: Sequence[LineageHop]) -> list[LineageEdgeRead]:
    """Edges for display: each end by its reference and kind (adapter or base version)."""
    edges: list[LineageEdge] = [h.edge for h in hops]
    adapter_ids = [e.child_version_id for e in edges] + [e.parent_version_id for e in edges]
    base_ids = [e.child_base_version_id for e in edges] + [e.parent_base_version_id for e in edges]
    names = VersionRepository(session).refs_of([i for i in adapter_ids if i is not None])
    bases = BaseModelRepository(session).names_of([i for i in base_ids if i is not None])

    def end(adapter_id: uuid.UUID | None, base_id: uuid.UUID | None) -> tuple[str, str]:
        if adapter_id is not None:
            return names.get(adapter_id, "?"), "adapter_version"
        assert base_id is not None
        return bases.get(base_id, "?"), "base_model_version"

    out = []
    for hop in hops:
        e = hop.edge
        child, child_kind = end(e.child_version_id, e.child_base_version_id)
        parent, parent_kind = end(e.parent_version_id, e.parent_base_version_id)
        out.append(
            _read(
                LineageEdgeRead,
                e,
                child=child,
                child_kind=child_kind,
                parent=parent,
                parent_kind=parent_kind,
                depth=hop.depth,
            )
        )
    return out


_CI_FIELDS = (
    "issuer",
    "publisher",
    "repository",
    "repository_owner_id",
    "workflow_ref",
    "ref",
    "sha",
    "run_id",
    "run_attempt",
    "actor",
    "actor_id",
    "environment",
    "event_name",
)


def public_ci_identity(identity: Any) -> dict[str, str | None] | None:
    """The provenance part of a stored CI identity (not the token's jti or expiry)."""
    if not isinstance(identity, dict):
        return None
    return {k: None if identity.get(k) is None else str(identity[k]) for k in _CI_FIELDS}
