"""Base models and their versions: config snapshot + weights manifest (headers only).

The manifest (every tensor's dtype and shape) is what adapter compatibility is checked
against. It is stored as a content-addressed blob; its digest is on the version row.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, base_model_resource, registry_resource
from registry.catalog.files import version_digest
from registry.catalog.lineage import (
    BASE_MODEL_VERSION,
    ParentSpec,
    ResolvedParent,
    audit_combine,
    check_relations,
    edges_for,
    require_combine,
    resolve_parents,
)
from registry.catalog.models import BaseModel, BaseModelFile, BaseModelVersion
from registry.catalog.queries import LineageHop, walk_lineage
from registry.catalog.repository import BaseModelRepository
from registry.catalog.repository_provenance import LineageRepository
from registry.errors import (
    BaseModelNotFound,
    BaseModelVersionExists,
    InvalidBaseModel,
    VersionFileNotFound,
)
from registry.policy.types import Decision
from registry.storage.base import ArtifactStore
from registry.uploads import service as uploads
from registry.uploads.models import UploadPurpose
from registry.validation.manifest import BaseManifest, read_base_sources
from registry.validation.safetensors import (
    DTYPE_BITS,
    MAX_HEADER_BYTES,
    MAX_TENSOR_DIMS,
    MAX_TENSOR_NAME_CHARS,
    MAX_TENSORS,
)

MAX_MANIFEST_TENSORS = 200_000


@dataclass(frozen=True, slots=True)
class BaseVersionView:
    name: str
    version: BaseModelVersion
    files: list[BaseModelFile]


def register_base_version(
    session: Session,
    *,
    store: ArtifactStore,
    actor: Actor,
    name: str,
    revision: str,
    config: dict[str, Any],
    tensors: dict[str, tuple[str, list[int]]],
    upload_id: uuid.UUID | None = None,
    license: str | None = None,
    weights_uri: str | None = None,
    tokenizer_digest: str | None = None,
    parents: Sequence[ParentSpec] = (),
    max_header_bytes: int = MAX_HEADER_BYTES,
    max_tensors: int = MAX_TENSORS,
) -> BaseVersionView:
    """Register ``name@revision`` from a client-read manifest, or from uploaded weights.

    With ``upload_id`` the server reads the uploaded safetensors headers itself and the manifest
    is derived from them (the client's ``tensors`` must then agree or be empty). ``parents``:
    ``merged_from`` an adapter version and its base (authorized as ``merge_adapter``, audited
    with the digests) or ``quantized_from`` a base. Errors: ``invalid_name``,
    ``base_model_version_exists``, ``invalid_base_model``, ``corrupt_safetensors``,
    ``bad_request`` (``relation_not_for_base``), the parents' 404s. Blob first; flushes.
    """
    refs.base_model_name(name)
    refs.revision_name(revision)
    if tokenizer_digest is not None:
        refs.content_digest(tokenizer_digest)
    check_relations(parents, base_child=True)
    allowed = actor.require("register_base_model", registry_resource())
    decisions = require_combine(parents, lambda a: actor.require(a, registry_resource()))
    resolved = resolve_parents(session, actor, parents)
    repo = BaseModelRepository(session)
    if repo.get_version(name, revision) is not None:
        raise BaseModelVersionExists(
            "base model revision exists", context={"base": f"{name}@{revision}"}
        )
    manifest, manifest_hex, staged = _publish_manifest(
        session,
        store=store,
        actor=actor,
        config=config,
        tensors=tensors,
        upload_id=upload_id,
        limits=(max_header_bytes, max_tensors),
    )
    version = repo.add_version(
        BaseModelVersion(
            base_model_id=repo.get_or_create(name).id,
            revision=revision,
            architecture=manifest.architecture,
            model_type=manifest.model_type,
            config=config,
            manifest_digest=manifest.digest,
            manifest_blob=manifest_hex,
            tensor_count=len(manifest.tensors),
            parameter_count=_parameter_count(manifest),
            tokenizer_digest=tokenizer_digest,
            license=license,
            weights_uri=weights_uri,
            registered_by_id=actor.principal.id,
        )
    )
    file_rows = [
        BaseModelFile(base_model_version_id=version.id, name=f.name, digest=f.digest, size=f.size)
        for f in staged
    ]
    repo.add_files(file_rows)
    ref = f"{name}@{revision}"
    _record_lineage(session, actor, decisions, ref, version, file_rows, resolved)
    actor.audit(
        session,
        "base_model.register",
        f"base_model:{ref}",
        after={"manifest_digest": manifest.digest, "license": license},
        decision=allowed.to_audit(),
    )
    return BaseVersionView(name=name, version=version, files=file_rows)


def _publish_manifest(
    session: Session,
    *,
    store: ArtifactStore,
    actor: Actor,
    config: dict[str, Any],
    tensors: dict[str, tuple[str, list[int]]],
    upload_id: uuid.UUID | None,
    limits: tuple[int, int],
) -> tuple[BaseManifest, str, list[uploads.StagedFile]]:
    """The manifest (the client's, or read from the uploaded weights) stored as a blob, and the
    upload's files published: (manifest, its blob digest, the files)."""
    staged: list[uploads.StagedFile] = []
    upload = None
    if upload_id is not None:
        upload, files = uploads.get_upload(session, principal=actor.principal, upload_id=upload_id)
        uploads.require_open(upload, purpose=UploadPurpose.base_model)
        staged = uploads.open_staged_files(store, files)
        manifest = _manifest_from_uploaded(
            config, staged, tensors, max_header_bytes=limits[0], max_tensors=limits[1]
        )
    else:
        manifest = _manifest_from_client(config, tensors)
    manifest_bytes = json.dumps(manifest.to_json(), sort_keys=True, separators=(",", ":")).encode()
    manifest_hex = uploads.store_small_blob(session, store=store, data=manifest_bytes)
    if upload is not None:
        uploads.commit_upload(session, store=store, upload=upload, files=staged)
    return manifest, manifest_hex, staged


def _record_lineage(
    session: Session,
    actor: Actor,
    decisions: Mapping[str, Decision],
    ref: str,
    version: BaseModelVersion,
    files: list[BaseModelFile],
    parents: list[ResolvedParent],
) -> None:
    """The edges from the new base version to its parents, and the audit of a merge."""
    if not parents:
        return
    LineageRepository(session).add(edges_for(parents, child_base_version_id=version.id))
    session.flush()
    digest = version_digest([(f.name, f.digest, f.size) for f in files]) if files else None
    audit_combine(
        session,
        actor,
        decisions,
        target=f"base_model:{ref}",
        parents=parents,
        output={
            "ref": ref,
            "kind": BASE_MODEL_VERSION,
            "digest": digest,
            "manifest_digest": version.manifest_digest,
        },
    )


def _parameter_count(manifest: BaseManifest) -> int:
    total = 0
    for _dtype, shape in manifest.tensors.values():
        n = 1
        for d in shape:
            n *= d
        total += n
    return total


def _manifest_from_client(
    config: dict[str, Any], tensors: dict[str, tuple[str, list[int]]]
) -> BaseManifest:
    """A manifest the client read from headers; checked for shape, not trusted for content."""
    if not config:
        raise InvalidBaseModel("config.json is required", reason="missing_config")
    if not tensors:
        raise InvalidBaseModel("the weights manifest is empty", reason="missing_weights")
    if len(tensors) > MAX_MANIFEST_TENSORS:
        raise InvalidBaseModel("too many tensors in the manifest", reason="manifest_too_large")
    for name, (dtype, shape) in tensors.items():
        if (
            not name
            or len(name) > MAX_TENSOR_NAME_CHARS
            or any(ord(c) < 32 for c in name)
            or dtype not in DTYPE_BITS
            # Bounded before _parameter_count multiplies the dimensions out.
            or len(shape) > MAX_TENSOR_DIMS
            or any(d < 0 for d in shape)
        ):
            raise InvalidBaseModel(
                "malformed tensor entry in the manifest",
                reason="bad_manifest",
                context={"tensor": name[:200]},
            )
    return BaseManifest(
        tensors={k: (d, tuple(s)) for k, (d, s) in tensors.items()}, config=dict(config)
    )


def _manifest_from_uploaded(
    config: dict[str, Any],
    staged: list[uploads.StagedFile],
    claimed: dict[str, tuple[str, list[int]]],
    *,
    max_header_bytes: int,
    max_tensors: int,
) -> BaseManifest:
    """The manifest the server reads itself from uploaded checkpoint files (headers only).

    The uploaded ``config.json`` is authoritative; a client's config or manifest that disagrees
    with it is ``manifest_mismatch``.
    """
    manifest = read_base_sources(
        {f.name: f.source for f in staged},
        max_header_bytes=max_header_bytes,
        max_tensors=max_tensors,
    )
    if config and config != manifest.config:
        raise InvalidBaseModel(
            "the request's config does not match the uploaded config.json",
            reason="manifest_mismatch",
        )
    if claimed:
        derived = {k: (d, list(s)) for k, (d, s) in manifest.tensors.items()}
        normalised = {k: (d, list(s)) for k, (d, s) in claimed.items()}
        if derived != normalised:
            raise InvalidBaseModel(
                "the client's manifest does not match the uploaded weights",
                reason="manifest_mismatch",
            )
    return manifest


def get_base_version(
    session: Session, *, actor: Actor, name: str, revision: str
) -> BaseVersionView:
    """``name@revision`` with its files, or ``base_model_not_found``."""
    refs.base_model_name(name)
    refs.revision_name(revision)
    actor.require("read", base_model_resource(name))
    repo = BaseModelRepository(session)
    version = repo.get_version(name, revision)
    if version is None:
        raise BaseModelNotFound(
            "no such base model revision", context={"base": f"{name}@{revision}"}
        )
    return BaseVersionView(name=name, version=version, files=repo.files(version.id))


def list_base_models(
    session: Session, *, actor: Actor, after: str | None, limit: int
) -> list[tuple[BaseModel, list[str]]]:
    """Base models by name with their revisions (oldest first)."""
    actor.require("read", base_model_resource("*"))
    repo = BaseModelRepository(session)
    models = repo.list_page(after=after, limit=limit)
    revisions = repo.revisions([m.id for m in models])
    return [(m, revisions[m.id]) for m in models]


class ManifestCache:
    """Parsed manifests by blob digest. Manifests are immutable, so entries never go stale."""

    def __init__(self, capacity: int = 32) -> None:
        self._items: OrderedDict[str, BaseManifest] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def load(self, store: ArtifactStore, blob_hex: str) -> BaseManifest:
        with self._lock:
            found = self._items.get(blob_hex)
            if found is not None:
                self._items.move_to_end(blob_hex)
                return found
        source = store.open_blob(blob_hex)
        data = json.loads(source.read_at(0, source.size))
        manifest = BaseManifest.from_json(data)
        with self._lock:
            self._items[blob_hex] = manifest
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return manifest


def get_base_file(
    session: Session, *, actor: Actor, name: str, revision: str, file_name: str
) -> BaseModelFile:
    """The stored file ``file_name`` of ``name@revision`` (``--upload-weights``), or
    ``file_not_found`` (names are matched exactly)."""
    for f in get_base_version(session, actor=actor, name=name, revision=revision).files:
        if f.name == file_name:
            return f
    raise VersionFileNotFound(
        "no such file in this base model revision", context={"file": file_name[:200]}
    )


def base_lineage(
    session: Session, *, actor: Actor, name: str, revision: str, descendants: bool
) -> list[LineageHop]:
    """Ancestors (what a merged or quantized checkpoint was made from) or descendants (every
    version built on it) of a base model revision."""
    view = get_base_version(session, actor=actor, name=name, revision=revision)
    return walk_lineage(
        session, actor=actor, base_version_id=view.version.id, descendants=descendants
    )
