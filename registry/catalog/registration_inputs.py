"""What a registration is made of: checked metadata (parents: :mod:`registry.catalog.lineage`),
the files of an S3 import staged into an upload session of their own, and the version row built
from a report.

Split from :mod:`registry.catalog.registration` by use: these run before the slow work, or are
the slow work's own short units of work (the import), never inside the insert transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry import refs
from registry.auth.principal import AuthenticatedPrincipal
from registry.catalog.lineage import ParentSpec, check_relations
from registry.catalog.models import AdapterVersion, VersionState
from registry.db.session import Sessions, unit_of_work
from registry.errors import BadRequest
from registry.storage.base import ArtifactStore
from registry.storage.imports import parse_import_uri
from registry.uploads import service as uploads
from registry.validation import ValidationReport


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    digest: str
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class VersionMetadata:
    description: str = ""
    tags: tuple[str, ...] = ()
    datasets: tuple[DatasetSpec, ...] = ()
    parents: tuple[ParentSpec, ...] = ()
    git_commit: str | None = None
    mlflow_run_id: str | None = None
    training_base_dtype: str | None = None
    quantization: str | None = None


def check_metadata(metadata: VersionMetadata) -> None:
    """Tags, dataset names/digests/URIs and lineage relations are well formed (400s)."""
    for tag in metadata.tags:
        refs.tag_name(tag)
    seen: set[str] = set()
    for d in metadata.datasets:
        refs.dataset_name(d.name)
        refs.content_digest(d.digest)
        if d.name in seen:
            raise BadRequest("dataset named twice", context={"dataset": d.name})
        seen.add(d.name)
        if d.uri is not None and any(ord(c) < 32 for c in d.uri):
            raise BadRequest("dataset uri has control characters", context={"dataset": d.name})
    check_relations(metadata.parents)


def import_from_s3(
    sessions: Sessions,
    *,
    store: ArtifactStore,
    principal: AuthenticatedPrincipal,
    allowlist: tuple[str, ...],
    upload_ttl_s: int,
    uri: str,
) -> uuid.UUID:
    """Copy the objects under an allow-listed ``s3://bucket/prefix/`` into a new upload session
    and return its id.

    The server reads and hashes the bytes itself; nothing the training job claims is trusted.
    Runs short units of work of its own (open the session, check and record each file) and
    holds none while bytes are copied: a slow import never holds SQLite's write lock or a
    pooled connection. On failure the staged bytes are discarded.
    """
    bucket, _prefix = parse_import_uri(uri, list(allowlist))
    objects = store.list_import(uri)
    if not objects:
        raise BadRequest("no objects under the import location", context={"uri": uri})
    with unit_of_work(sessions.write) as session:
        upload_id = uploads.create_upload(session, principal=principal, ttl_s=upload_ttl_s).id
    try:
        for obj in objects:
            with unit_of_work(sessions.read) as session:
                target = uploads.prepare_file(
                    session,
                    principal=principal,
                    upload_id=upload_id,
                    name=obj.name,
                    claimed_digest=None,
                )
            writer = uploads.StagedFileWriter(store, target)
            try:
                for chunk in store.open_import_stream(bucket, obj.key):
                    writer.write(chunk)
                staged = writer.finish()
            except BaseException:
                writer.abort()
                raise
            with unit_of_work(sessions.write) as session:
                uploads.record_file(session, principal=principal, target=target, staged=staged)
    except BaseException:
        uploads.discard_upload(store, upload_id)
        raise
    return upload_id


def version_row(
    adapter_id: uuid.UUID,
    number: int,
    digest: str,
    base_version_id: uuid.UUID,
    principal: AuthenticatedPrincipal,
    report: ValidationReport,
    config: dict[str, Any],
    metadata: VersionMetadata,
    source_uri: str | None,
) -> AdapterVersion:
    return AdapterVersion(
        id=uuid.uuid4(),  # known before the flush, so dependent rows can be staged with it
        adapter_id=adapter_id,
        version=number,
        digest=digest,
        state=VersionState.validated,
        base_model_version_id=base_version_id,
        peft_type=report.peft_type,
        task_type=report.task_type,
        r=report.r,
        lora_alpha=report.lora_alpha,
        target_modules=list(report.target_modules),
        rank_pattern=dict(report.rank_pattern or {}),
        use_dora=report.use_dora,
        use_rslora=report.use_rslora,
        modules_to_save=list(report.modules_to_save) if report.modules_to_save else None,
        dtype=report.dtype,
        trainable_params=report.trainable_params,
        config=config,
        validation_report=report.to_json(),
        description=metadata.description,
        registered_by_id=principal.id,
        ci_identity=dict(principal.ci_identity) if principal.ci_identity else None,
        ci_actor=ci_actor(principal.ci_identity),
        git_commit=metadata.git_commit,
        mlflow_run_id=metadata.mlflow_run_id,
        training_base_dtype=metadata.training_base_dtype,
        quantization=metadata.quantization,
        source_uri=source_uri,
    )


def ci_actor(identity: Mapping[str, Any] | None) -> str | None:
    """The CI identity's human (``actor``), lower-cased, for four-eyes."""
    if not identity:
        return None
    actor = identity.get("actor")
    return str(actor).strip().lower()[:128] or None if actor else None
