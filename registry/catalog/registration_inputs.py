"""What a registration is made of: checked metadata (parents: :mod:`registry.catalog.lineage`),
the files of an S3 import staged into an upload session of their own, and the version row built
from a report.

Split from :mod:`registry.catalog.registration` by use: these run before the slow work, or are
the slow work's own short units of work (the import), never inside the insert transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.auth.principal import AuthenticatedPrincipal
from registry.catalog.files import version_digest
from registry.catalog.lineage import ParentSpec, check_relations
from registry.catalog.models import AdapterVersion, Namespace, VersionState
from registry.catalog.repository import AdapterRepository, VersionRepository
from registry.db.session import Sessions, unit_of_work
from registry.errors import BadRequest, VersionAlreadyExists
from registry.settings import Settings
from registry.storage.base import ArtifactStore
from registry.storage.imports import parse_import_uri
from registry.uploads import service as uploads
from registry.uploads.models import UploadFile
from registry.validation import ValidationReport
from registry.validation.files import MAX_TEXT_BYTES, MAX_TOKENIZER_BYTES
from registry.validation.patterns import RegexLimits
from registry.validation.safetensors import MAX_HEADER_BYTES, MAX_TENSORS


@dataclass(frozen=True, slots=True)
class RegistrationLimits:
    upload_ttl_s: int
    import_allowlist: tuple[str, ...]
    scan_limit_bytes: int
    max_config_bytes: int
    max_header_bytes: int = MAX_HEADER_BYTES
    max_tensors: int = MAX_TENSORS
    max_text_bytes: int = MAX_TEXT_BYTES
    max_tokenizer_bytes: int = MAX_TOKENIZER_BYTES
    regex_limits: RegexLimits = field(default_factory=RegexLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistrationLimits:
        """The limits a registration runs under, as this server is configured."""
        v = settings.validation
        return cls(
            upload_ttl_s=settings.server.upload_ttl_s,
            import_allowlist=tuple(settings.storage.import_allowlist),
            scan_limit_bytes=v.scan_limit_bytes,
            max_config_bytes=v.max_config_bytes,
            max_header_bytes=v.max_header_bytes,
            max_tensors=v.max_tensors_per_file,
            max_text_bytes=v.max_text_bytes,
            max_tokenizer_bytes=v.max_tokenizer_bytes,
            regex_limits=v.regex_limits(),
        )


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
    stage_files(
        sessions,
        store=store,
        principal=principal,
        upload_id=upload_id,
        files=((obj.name, store.open_import_stream(bucket, obj.key)) for obj in objects),
    )
    return upload_id


def stage_files(
    sessions: Sessions,
    *,
    store: ArtifactStore,
    principal: AuthenticatedPrincipal,
    upload_id: uuid.UUID,
    files: Iterable[tuple[str, Iterator[bytes]]],
) -> None:
    """Stream ``(name, chunks)`` into the open upload session ``upload_id`` of ``principal``,
    each file hashed and sniffed like a PUT of it (an S3 import, a server-side job's result).

    Short units of work of its own per file (check, then record); none is held while bytes
    are copied. On failure every staged byte of the session is discarded.
    """
    try:
        for name, chunks in files:
            with unit_of_work(sessions.read) as session:
                target = uploads.prepare_file(
                    session,
                    principal=principal,
                    upload_id=upload_id,
                    name=name,
                    claimed_digest=None,
                )
            writer = uploads.StagedFileWriter(store, target)
            try:
                for chunk in chunks:
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


def registered_as(
    versions: VersionRepository, adapter_id: uuid.UUID, adapter: str, digest: str
) -> str | None:
    """The reference of ``adapter``'s version holding exactly this content, if there is one."""
    existing = versions.get_by_digest(adapter_id, digest)
    return None if existing is None else f"{adapter}@v{existing.version}"


def registered_files_as(
    session: Session, ns: Namespace, adapter: str, files: Sequence[UploadFile]
) -> str | None:
    """The version of ``adapter`` holding exactly ``files`` (a re-push), if there is one."""
    existing = AdapterRepository(session).get(ns.id, adapter)
    if existing is None:
        return None
    digest = version_digest([(f.name, f.digest, f.size) for f in files])
    return registered_as(VersionRepository(session), existing.id, f"{ns.name}/{adapter}", digest)


def refuse_registered(
    store: ArtifactStore, upload_id: uuid.UUID, ref: str | None, digest: str
) -> None:
    """``version_exists`` (its upload discarded) when ``ref`` names a version of this content."""
    if ref is not None:
        uploads.discard_upload(store, upload_id)
        raise VersionAlreadyExists(
            "this content is already registered", context={"ref": ref, "digest": digest}
        )


def refuse_duplicate(
    store: ArtifactStore,
    versions: VersionRepository,
    adapter_id: uuid.UUID,
    upload_id: uuid.UUID,
    adapter: str,
    digest: str,
) -> None:
    """``version_exists`` (its upload discarded) when the adapter has this content already."""
    ref = registered_as(versions, adapter_id, adapter, digest)
    refuse_registered(store, upload_id, ref, digest)
