"""Registering adapter versions: the slow work first, then a short transaction of inserts.

Validating an adapter reads its headers (and, for small ones, every tensor), an S3 import copies
objects, publishing re-hashes every file: seconds of work that must not run inside the write
transaction (on SQLite it would hold the database-wide write lock, blocking every other write
for its duration). A registration therefore runs in three phases:

1. :func:`plan_version` — a read transaction: names, metadata, namespace (authorized), base
   version, parents, the upload session and its files, whether their content is registered
   already (404s and 400s before any slow work);
2. :func:`prepare_version` — no transaction held: the S3 import (its own short units of work),
   validation against the base manifest (on failure the staged bytes are discarded, so a
   rejected push leaves nothing behind), the version digest, then publishing the staged files
   to their content addresses (blob first, row second);
3. :func:`commit_version` — the write transaction, only INSERTs: lock the adapter row, refuse a
   duplicate, re-check under the upload's lock that it still holds exactly the validated files,
   bump the counter, insert the version, files, datasets, lineage, tags and the audit event.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, namespace_resource
from registry.auth.principal import AuthenticatedPrincipal
from registry.catalog.base_models import ManifestCache
from registry.catalog.files import version_digest
from registry.catalog.lineage import (
    ParentSpec,
    ResolvedParent,
    audit_combine,
    check_trained_on,
    edges_for,
    require_combine,
    resolve_parents,
)
from registry.catalog.models import (
    Adapter,
    AdapterVersion,
    LineageEdge,
    LineageRelation,
    Namespace,
    VersionFile,
    VersionState,
)
from registry.catalog.namespaces import get_namespace
from registry.catalog.queries import VersionContext
from registry.catalog.registration_inputs import (
    DatasetSpec,
    RegistrationLimits,
    VersionMetadata,
    check_metadata,
    import_from_s3,
    refuse_duplicate,
    refuse_registered,
    registered_files_as,
    version_row,
)
from registry.catalog.repository import AdapterRepository, BaseModelRepository, VersionRepository
from registry.catalog.repository_provenance import DatasetRepository, LineageRepository
from registry.catalog.views import KnownParts
from registry.db.base import utcnow
from registry.db.session import Sessions, unit_of_work
from registry.errors import AdapterInvalid, BaseModelNotFound, InvalidRequest
from registry.policy.types import Decision
from registry.storage.base import ArtifactStore
from registry.storage.imports import parse_import_uri
from registry.storage.keys import is_direct_staging_key
from registry.uploads import service as uploads
from registry.uploads.models import UploadFile, UploadPurpose
from registry.validation import ValidationReport, validate_adapter

__all__ = [
    "DatasetSpec",
    "ParentSpec",
    "PreparedVersion",
    "RegisteredVersion",
    "RegistrationLimits",
    "RegistrationPlan",
    "VersionMetadata",
    "commit_version",
    "plan_version",
    "prepare_version",
    "version_digest",
]


@dataclass(frozen=True, slots=True)
class RegisteredVersion:
    """The new version and everything needed to describe it without another query."""

    ctx: VersionContext
    known: KnownParts


@dataclass(frozen=True, slots=True)
class RegistrationPlan:
    """What phase 1 resolved: plain values, usable after its transaction ended."""

    namespace: str
    adapter: str
    base: str  # NAME@REV
    base_version_id: uuid.UUID
    manifest_blob: str
    parents: list[ResolvedParent]
    upload_id: uuid.UUID | None
    source_uri: str | None
    metadata: VersionMetadata
    # An upload's files as phase 1 read them, and the version already holding their content
    # (``NS/NAME@vN``; refused once validated, as a duplicate found later would be). An import's
    # files exist only after phase 2 fetched them: both unset then.
    files: tuple[UploadFile, ...] | None = None
    registered_as: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedVersion:
    """What phase 2 produced: validated files, already published under their digests."""

    plan: RegistrationPlan
    upload_id: uuid.UUID
    staged: list[uploads.StagedFile]
    report: ValidationReport
    digest: str
    config: dict[str, Any]

    @property
    def unverified(self) -> list[uploads.StagedFile]:
        """Files uploaded straight to the store (not hashed by the server yet, not published):
        the version is registered ``verifying`` and a verification job hashes them."""
        return [f for f in self.staged if is_direct_staging_key(f.staged.key)]


def plan_version(
    session: Session,
    *,
    actor: Actor,
    limits: RegistrationLimits,
    namespace: str,
    adapter: str,
    base: str,
    upload_id: uuid.UUID | None,
    source_uri: str | None,
    metadata: VersionMetadata,
) -> RegistrationPlan:
    """Check and resolve everything a registration names (phase 1; reads only).

    Errors: ``invalid_name``/``invalid_reference``, ``namespace_not_found`` (or a policy
    refusal of ``register_version``), ``base_model_not_found``, ``invalid_request`` (not
    exactly one of upload and import), ``invalid_uri``/``uri_not_allowed``,
    ``upload_not_found``, ``upload_state_conflict``.
    """
    refs.adapter_name(adapter)
    base_ref = refs.parse_base_ref(base)
    check_metadata(metadata)
    ns = get_namespace(session, name=namespace, actor=actor, action="register_version")
    _require_combine(actor, namespace, metadata.parents)
    base_version = BaseModelRepository(session).get_version(base_ref.name, base_ref.revision)
    if base_version is None:
        raise BaseModelNotFound("no such base model revision", context={"base": str(base_ref)})
    if (upload_id is None) == (source_uri is None):
        raise InvalidRequest("give exactly one of upload_id and source_uri")
    # Cheap lookups first: a wrong parent must not cost an S3 import or a validation pass.
    parents = resolve_parents(session, actor, metadata.parents)
    check_trained_on(session, base_version.id, parents)
    files: tuple[UploadFile, ...] | None = None
    if source_uri is not None:
        parse_import_uri(source_uri, list(limits.import_allowlist))
    else:
        assert upload_id is not None
        upload, found = uploads.get_upload(session, principal=actor.principal, upload_id=upload_id)
        uploads.require_open(upload, purpose=UploadPurpose.adapter)
        files = tuple(found)
    return RegistrationPlan(
        namespace=namespace,
        adapter=adapter,
        base=str(base_ref),
        base_version_id=base_version.id,
        manifest_blob=base_version.manifest_blob,
        parents=parents,
        upload_id=upload_id,
        source_uri=source_uri,
        metadata=metadata,
        files=files,
        registered_as=None if files is None else registered_files_as(session, ns, adapter, files),
    )


def prepare_version(
    sessions: Sessions,
    *,
    store: ArtifactStore,
    manifests: ManifestCache,
    principal: AuthenticatedPrincipal,
    limits: RegistrationLimits,
    plan: RegistrationPlan,
) -> PreparedVersion:
    """Import (if asked), validate and publish the files (phase 2; holds no transaction while
    it reads or writes bytes: its database reads and the import's records are short units of
    work of their own).

    Errors: every bad-adapter code (the staged bytes are then discarded),
    ``upload_state_conflict``, ``version_exists`` (already registered: nothing published),
    ``integrity_failure``, ``storage_unavailable``.
    """
    upload_id, files, duplicate = plan.upload_id, plan.files, plan.registered_as
    if upload_id is None or files is None:
        assert plan.source_uri is not None
        upload_id = import_from_s3(
            sessions,
            store=store,
            principal=principal,
            allowlist=limits.import_allowlist,
            upload_ttl_s=limits.upload_ttl_s,
            uri=plan.source_uri,
        )
        with unit_of_work(sessions.read) as session:
            upload, found = uploads.get_upload(session, principal=principal, upload_id=upload_id)
            uploads.require_open(upload, purpose=UploadPurpose.adapter)
            files = tuple(found)
            ns = get_namespace(session, name=plan.namespace)
            duplicate = registered_files_as(session, ns, plan.adapter, files)
    staged = uploads.open_staged_files(store, list(files))
    direct = any(is_direct_staging_key(f.staged.key) for f in staged)
    base_manifest = manifests.load(store, plan.manifest_blob)
    try:
        report = validate_adapter(
            {f.name: f.source for f in staged},
            base=base_manifest,
            # Direct uploads: headers only (ranged GETs); the server never reads the bytes on
            # the request path, the verification job hashes them afterwards.
            scan_limit_bytes=0 if direct else limits.scan_limit_bytes,
            max_config_bytes=limits.max_config_bytes,
            max_header_bytes=limits.max_header_bytes,
            max_tensors=limits.max_tensors,
            max_text_bytes=limits.max_text_bytes,
            max_tokenizer_bytes=limits.max_tokenizer_bytes,
            regex_limits=limits.regex_limits,
        )
    except AdapterInvalid:
        uploads.discard_upload(store, upload_id)
        raise
    digest = version_digest([(f.name, f.digest, f.size) for f in staged])
    # Validated above (size-capped, duplicate-free JSON object): safe to keep as a snapshot.
    config_src = next(f.source for f in staged if f.name == "adapter_config.json")
    config = json.loads(config_src.read_at(0, config_src.size))
    refuse_registered(store, upload_id, duplicate, digest)  # a re-push costs no publish
    # Direct files are published by the verification job once their bytes hash right.
    uploads.publish_staged(store, [f for f in staged if not is_direct_staging_key(f.staged.key)])
    return PreparedVersion(plan, upload_id, staged, report, digest, config)


def _lock_adapter(
    session: Session, *, actor: Actor, store: ArtifactStore, prepared: PreparedVersion
) -> tuple[Namespace, Adapter]:
    """The namespace and the adapter row, locked; the content not yet registered; the upload
    still open and holding exactly the validated files."""
    plan = prepared.plan
    ns = get_namespace(session, name=plan.namespace, actor=actor, action="register_version")
    adapters = AdapterRepository(session)
    # The row lock serialises version allocation per adapter (BEGIN IMMEDIATE on SQLite). Locked
    # first: only an adapter's first version pays for the insert (safe under concurrent firsts).
    adapter_row = adapters.get(ns.id, plan.adapter, for_update=True)
    if adapter_row is None:
        adapters.ensure(ns.id, plan.adapter)
        adapter_row = adapters.get(ns.id, plan.adapter, for_update=True)
    assert adapter_row is not None
    # Re-checked under the lock: a concurrent push of the same content may have won meanwhile.
    refuse_duplicate(
        store,
        VersionRepository(session),
        adapter_row.id,
        prepared.upload_id,
        f"{ns.name}/{plan.adapter}",
        prepared.digest,
    )
    # Under the upload's row lock: the caller's, still open, still exactly the files that were
    # validated (one read of the session and its files).
    uploads.record_upload(
        session, upload=prepared.upload_id, files=prepared.staged, owner=actor.principal
    )
    return ns, adapter_row


def _lineage_edges(version_id: uuid.UUID, plan: RegistrationPlan) -> list[LineageEdge]:
    """``trained_on`` the base, then one edge per declared parent."""
    trained_on = LineageEdge(
        child_version_id=version_id,
        relation=LineageRelation.trained_on,
        parent_base_version_id=plan.base_version_id,
    )
    return [trained_on, *edges_for(plan.parents, child_version_id=version_id)]


def _insert_version(
    session: Session, *, actor: Actor, adapter_row: Adapter, prepared: PreparedVersion
) -> tuple[AdapterVersion, KnownParts]:
    """Bump the counter and insert the version with its files, tags, datasets and lineage."""
    plan = prepared.plan
    metadata = plan.metadata
    versions = VersionRepository(session)
    now = utcnow()
    # Counter and timestamp together: one UPDATE of the adapter row.
    adapter_row.latest_version += 1
    adapter_row.updated_at = now
    row = version_row(
        adapter_row.id,
        adapter_row.latest_version,
        prepared.digest,
        plan.base_version_id,
        actor.principal,
        prepared.report,
        prepared.config,
        metadata,
        plan.source_uri,
    )
    if prepared.unverified:
        row.state = VersionState.verifying
    row.created_at = now
    version = versions.add(row)
    file_rows = [
        VersionFile(adapter_version_id=version.id, name=f.name, digest=f.digest, size=f.size)
        for f in sorted(prepared.staged, key=lambda f: f.name)
    ]
    versions.add_files(file_rows)
    tags = sorted(set(metadata.tags))
    versions.add_tags(version, tags)
    datasets = DatasetRepository(session)
    dataset_rows = [datasets.get_or_create(d.name, d.digest, d.uri) for d in metadata.datasets]
    datasets.link(version.id, [d.id for d in dataset_rows])
    LineageRepository(session).add(_lineage_edges(version.id, plan))
    session.flush()  # files, dataset links and edges in one round of INSERTs
    parts = KnownParts(
        tags=tags,
        files=file_rows,
        registered_by=actor.principal.name,
        base=plan.base,
        datasets=sorted(dataset_rows, key=lambda d: d.name),
        trained_on=next(
            (p.ref for p in plan.parents if p.spec.relation == LineageRelation.trained_on), None
        ),
    )
    return version, parts


def commit_version(
    session: Session, *, actor: Actor, store: ArtifactStore, prepared: PreparedVersion
) -> RegisteredVersion:
    """Insert the new version of a prepared registration (phase 3; the write transaction, only
    INSERTs and the row locks that order them). Runs in the caller's transaction; flushes.

    Errors: ``namespace_not_found`` (deleted meanwhile), ``version_exists`` (a concurrent push
    of the same content won), ``upload_state_conflict`` (the upload changed after validation).
    """
    ns, adapter_row = _lock_adapter(session, actor=actor, store=store, prepared=prepared)
    version, parts = _insert_version(
        session, actor=actor, adapter_row=adapter_row, prepared=prepared
    )
    registered = VersionContext(ns, adapter_row, version)
    principal = actor.principal
    actor.audit(
        session,
        "adapter.version.register",
        f"adapter:{registered.ref}",
        after={
            "digest": prepared.digest,
            "base": prepared.plan.base,
            "ci": dict(principal.ci_identity) if principal.ci_identity else None,
            # Only for imports: webhooks tell version.imported from version.registered by it.
            **({"imported_from": prepared.plan.source_uri} if prepared.plan.source_uri else {}),
        },
    )
    audit_combine(
        session,
        actor,
        _require_combine(actor, ns.name, prepared.plan.metadata.parents),
        target=f"adapter:{registered.ref}",
        parents=prepared.plan.parents,
        output={"ref": registered.ref, "kind": "adapter_version", "digest": prepared.digest},
    )
    return RegisteredVersion(registered, parts)


def _require_combine(
    actor: Actor, namespace: str, parents: tuple[ParentSpec, ...]
) -> dict[str, Decision]:
    """A merge / compose / aggregate registered into ``namespace`` is authorized there."""
    return require_combine(parents, lambda a: actor.require(a, namespace_resource(namespace)))
