"""Registering adapter versions: validate staged files, then blob first, rows second.

One call = one transaction (the caller's). Order of work:
1. resolve namespace and base version (404s), the upload session or the S3 import;
2. validate every staged file against the base manifest (no row exists yet; on failure the
   staged bytes are discarded so a rejected push leaves nothing behind);
3. move the staged files to content-addressed keys and record blob rows;
4. lock the adapter row, bump its counter, insert the version, files, datasets, lineage, tags.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from registry.access.actor import Actor
from registry.auth.principal import AuthenticatedPrincipal
from registry.catalog import refs
from registry.catalog.base_models import ManifestCache
from registry.catalog.models import (
    AdapterVersion,
    LineageEdge,
    LineageRelation,
    VersionFile,
    VersionState,
)
from registry.catalog.namespaces import get_namespace
from registry.catalog.queries import VersionContext, resolve_version
from registry.catalog.repository import AdapterRepository, BaseModelRepository, VersionRepository
from registry.catalog.repository_provenance import DatasetRepository, LineageRepository
from registry.catalog.views import KnownParts
from registry.errors import (
    AdapterInvalid,
    BadRequest,
    BaseModelNotFound,
    InvalidRequest,
    VersionAlreadyExists,
)
from registry.storage import uploads
from registry.storage.base import ArtifactStore
from registry.storage.imports import parse_import_uri
from registry.storage.models import UploadPurpose, UploadSession
from registry.validation import ValidationReport, validate_adapter
from registry.validation.files import MAX_TEXT_BYTES, MAX_TOKENIZER_BYTES
from registry.validation.patterns import RegexLimits
from registry.validation.safetensors import MAX_HEADER_BYTES, MAX_TENSORS


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    name: str
    digest: str
    uri: str | None = None


@dataclass(frozen=True, slots=True)
class ParentSpec:
    ref: str
    relation: str
    recipe: dict[str, Any] | None = None


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


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """The new version and everything needed to describe it without another query."""

    ctx: VersionContext
    known: KnownParts


def version_digest(files: list[tuple[str, str, int]]) -> str:
    """sha256 of the canonical file manifest ``[{name, digest, size}]`` sorted by name."""
    manifest = [
        {"digest": f"sha256:{hex_}", "name": name, "size": size}
        for name, hex_, size in sorted(files)
    ]
    raw = json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()
    return "sha256:" + hashlib.sha256(raw).hexdigest()


def register_version(
    session: Session,
    *,
    store: ArtifactStore,
    manifests: ManifestCache,
    actor: Actor,
    limits: RegistrationLimits,
    namespace: str,
    adapter: str,
    base: str,
    upload_id: uuid.UUID | None,
    source_uri: str | None,
    metadata: VersionMetadata,
) -> RegisteredVersion:
    """Validate and register a new version of ``namespace/adapter`` (created on first push).

    Errors: ``invalid_name``/``invalid_reference``, ``namespace_not_found``,
    ``base_model_not_found``, ``upload_not_found``, ``upload_state_conflict``, every bad-adapter
    code, ``version_exists`` (same content already registered), ``invalid_uri`` /
    ``uri_not_allowed`` for imports. Runs in the caller's transaction; flushes.
    """
    refs.adapter_name(adapter)
    base_ref = refs.parse_base_ref(base)
    _check_metadata(metadata)
    principal = actor.principal
    ns = get_namespace(session, name=namespace, actor=actor, action="register_version")
    base_version = BaseModelRepository(session).get_version(base_ref.name, base_ref.revision)
    if base_version is None:
        raise BaseModelNotFound("no such base model revision", context={"base": str(base_ref)})
    if (upload_id is None) == (source_uri is None):
        raise InvalidRequest("give exactly one of upload_id and source_uri")
    # Cheap lookups first: a wrong parent must not cost an S3 import or a validation pass.
    parents = _resolve_parents(session, actor, metadata.parents)
    if source_uri is not None:
        upload_id = _import_from_s3(
            session, store=store, principal=principal, limits=limits, uri=source_uri
        ).id
    assert upload_id is not None
    upload, upload_files = uploads.get_upload(session, principal=principal, upload_id=upload_id)
    uploads.require_open(upload, purpose=UploadPurpose.adapter)
    staged = uploads.open_staged_files(store, upload_files)
    base_manifest = manifests.load(store, base_version.manifest_blob)
    try:
        report = validate_adapter(
            {f.name: f.source for f in staged},
            base=base_manifest,
            scan_limit_bytes=limits.scan_limit_bytes,
            max_config_bytes=limits.max_config_bytes,
            max_header_bytes=limits.max_header_bytes,
            max_tensors=limits.max_tensors,
            max_text_bytes=limits.max_text_bytes,
            max_tokenizer_bytes=limits.max_tokenizer_bytes,
            regex_limits=limits.regex_limits,
        )
    except AdapterInvalid:
        uploads.discard_upload(store, upload.id)
        raise
    digest = version_digest([(f.name, f.digest, f.size) for f in staged])
    # Validated above (size-capped, duplicate-free JSON object): safe to keep as a snapshot.
    config_src = next(f.source for f in staged if f.name == "adapter_config.json")
    config = json.loads(config_src.read_at(0, config_src.size))
    adapters = AdapterRepository(session)
    versions = VersionRepository(session)
    adapters.ensure(ns.id, adapter)
    unlocked = adapters.get(ns.id, adapter)
    assert unlocked is not None
    _refuse_duplicate(store, versions, unlocked.id, upload.id, f"{namespace}/{adapter}", digest)
    # File moves and fsyncs happen before the lock, so the critical section is only INSERTs.
    uploads.publish_staged(store, staged)
    # The row lock serialises version allocation per adapter (BEGIN IMMEDIATE on SQLite).
    adapter_row = adapters.get(ns.id, adapter, for_update=True)
    assert adapter_row is not None
    # Re-checked under the lock: a concurrent push of the same content may have won meanwhile.
    _refuse_duplicate(store, versions, adapter_row.id, upload.id, f"{namespace}/{adapter}", digest)
    uploads.record_upload(session, upload=upload, files=staged)
    adapter_row.latest_version += 1
    version = versions.add(
        _version_row(
            adapter_row.id,
            adapter_row.latest_version,
            digest,
            base_version.id,
            principal,
            report,
            config,
            metadata,
            source_uri,
        )
    )
    adapter_row.updated_at = version.created_at
    file_rows = [
        VersionFile(adapter_version_id=version.id, name=f.name, digest=f.digest, size=f.size)
        for f in sorted(staged, key=lambda f: f.name)
    ]
    versions.add_files(file_rows)
    tags = sorted(set(metadata.tags))
    versions.add_tags(version, tags)
    datasets = DatasetRepository(session)
    dataset_rows = [datasets.get_or_create(d.name, d.digest, d.uri) for d in metadata.datasets]
    datasets.link(version.id, [d.id for d in dataset_rows])
    edges = [
        LineageEdge(
            child_version_id=version.id,
            relation=LineageRelation.trained_on,
            parent_base_version_id=base_version.id,
        )
    ]
    for spec, (parent_version_id, parent_base_id) in zip(metadata.parents, parents, strict=True):
        edges.append(
            LineageEdge(
                child_version_id=version.id,
                relation=spec.relation,
                parent_version_id=parent_version_id,
                parent_base_version_id=parent_base_id,
                recipe=spec.recipe,
            )
        )
    LineageRepository(session).add(edges)
    session.flush()  # files, dataset links and edges in one round of INSERTs
    parts = KnownParts(
        tags=tags,
        files=file_rows,
        registered_by=principal.name,
        base=str(base_ref),
        datasets=sorted(dataset_rows, key=lambda d: d.name),
    )
    registered = VersionContext(ns, adapter_row, version)
    actor.audit(
        session,
        "adapter.version.register",
        f"adapter:{registered.ref}",
        after={
            "digest": digest,
            "base": str(base_ref),
            "ci": dict(principal.ci_identity) if principal.ci_identity else None,
        },
    )
    return RegisteredVersion(registered, parts)


def _refuse_duplicate(
    store: ArtifactStore,
    versions: VersionRepository,
    adapter_id: uuid.UUID,
    upload_id: uuid.UUID,
    adapter: str,
    digest: str,
) -> None:
    existing = versions.get_by_digest(adapter_id, digest)
    if existing is not None:
        uploads.discard_upload(store, upload_id)
        raise VersionAlreadyExists(
            "this content is already registered",
            context={"ref": f"{adapter}@v{existing.version}", "digest": digest},
        )


def _version_row(
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
        ci_actor=_ci_actor(principal.ci_identity),
        git_commit=metadata.git_commit,
        mlflow_run_id=metadata.mlflow_run_id,
        training_base_dtype=metadata.training_base_dtype,
        quantization=metadata.quantization,
        source_uri=source_uri,
    )


def _ci_actor(identity: Mapping[str, Any] | None) -> str | None:
    """The CI identity's human (``actor``), lower-cased, for four-eyes."""
    if not identity:
        return None
    actor = identity.get("actor")
    return str(actor).strip().lower()[:128] or None if actor else None


def _check_metadata(metadata: VersionMetadata) -> None:
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
    valid = {r.value for r in LineageRelation}
    for p in metadata.parents:
        if p.relation not in valid:
            raise BadRequest(
                "unknown lineage relation",
                context={"relation": p.relation[:50], "allowed": sorted(valid)},
            )


def _resolve_parents(
    session: Session, actor: Actor, parents: tuple[ParentSpec, ...]
) -> list[tuple[uuid.UUID | None, uuid.UUID | None]]:
    """``(parent adapter version id, parent base version id)`` per spec; 404 when missing."""
    out: list[tuple[uuid.UUID | None, uuid.UUID | None]] = []
    bases = BaseModelRepository(session)
    for p in parents:
        if p.relation == LineageRelation.trained_on:
            ref = refs.parse_base_ref(p.ref)
            found = bases.get_version(ref.name, ref.revision)
            if found is None:
                raise BaseModelNotFound("no such base model revision", context={"base": p.ref})
            out.append((None, found.id))
        else:
            out.append((resolve_version(session, ref=p.ref, actor=actor).version.id, None))
    return out


def _import_from_s3(
    session: Session,
    *,
    store: ArtifactStore,
    principal: AuthenticatedPrincipal,
    limits: RegistrationLimits,
    uri: str,
) -> UploadSession:
    """Copy the objects under an allow-listed ``s3://bucket/prefix/`` into a new upload session.

    The server reads and hashes the bytes itself; nothing the training job claims is trusted.
    """
    bucket, _prefix = parse_import_uri(uri, list(limits.import_allowlist))
    objects = store.list_import(uri)
    if not objects:
        raise BadRequest("no objects under the import location", context={"uri": uri})
    upload = uploads.create_upload(session, principal=principal, ttl_s=limits.upload_ttl_s)
    try:
        for obj in objects:
            target = uploads.prepare_file(
                session,
                principal=principal,
                upload_id=upload.id,
                name=obj.name,
                claimed_digest=None,
            )
            writer = uploads.StagedFileWriter(store, target)
            for chunk in store.open_import_stream(bucket, obj.key):
                writer.write(chunk)
            uploads.record_file(session, principal=principal, target=target, staged=writer.finish())
    except BaseException:
        uploads.discard_upload(store, upload.id)
        raise
    return upload
