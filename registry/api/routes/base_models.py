"""Base models: register a revision (config + weights manifest, lineage), list, show, manifest,
stored files, lineage."""

from __future__ import annotations

import json

from fastapi import Request, Response, status
from fastapi.responses import StreamingResponse

from registry.api.deps import (
    ActorDep,
    ManifestsDep,
    PrincipalDep,
    SessionDep,
    SettingsDep,
    StoreDep,
    WriteDep,
    short_read,
)
from registry.api.pagination import Page, decode_name_token
from registry.api.params import BaseModelPath, RevisionPath, VersionFilePath
from registry.api.routes._common import (
    VERSION_NOT_FOUND,
    PageDep,
    authenticated_router,
    blob_response,
    responses,
)
from registry.catalog import base_models
from registry.catalog.lineage import ParentSpec
from registry.catalog.schemas import (
    BaseModelRead,
    BaseModelVersionCreate,
    BaseModelVersionRead,
    LineageEdgeRead,
)
from registry.catalog.views import base_version_read, lineage_reads
from registry.errors import (
    BadRequest,
    BaseModelNotFound,
    BaseModelVersionExists,
    BlobNotFound,
    CorruptSafetensors,
    ForbiddenFile,
    InvalidBaseModel,
    InvalidName,
    InvalidPageToken,
    RangeNotSatisfiable,
    UploadNotFound,
    VersionFileNotFound,
)

router = authenticated_router(prefix="/api/v1/base-models", tags=["base-models"])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=BaseModelVersionRead,
    responses=responses(
        *VERSION_NOT_FOUND,
        BadRequest,
        BaseModelNotFound,
        BaseModelVersionExists,
        InvalidBaseModel,
        CorruptSafetensors,
        ForbiddenFile,
        UploadNotFound,
    ),
)
def register_base_model(
    body: BaseModelVersionCreate, ctx: WriteDep, store: StoreDep, settings: SettingsDep
) -> object:
    """Register ``name@revision`` from a weights manifest read locally from safetensors headers
    (or from weights uploaded into ``upload_id``, whose headers the server reads itself).
    ``parents`` record what it was made from: ``merged_from`` (an adapter version and its base;
    authorized as ``merge_adapter``) or ``quantized_from``."""
    return ctx.idempotent(
        body,
        lambda: base_version_read(
            base_models.register_base_version(
                ctx.session,
                store=store,
                actor=ctx.actor,
                name=body.name,
                revision=body.revision,
                config=body.config,
                tensors={k: (t.dtype, t.shape) for k, t in body.tensors.items()},
                upload_id=body.upload_id,
                license=body.license,
                weights_uri=body.weights_uri,
                tokenizer_digest=body.tokenizer_digest,
                parents=[ParentSpec(p.ref, p.relation, p.recipe, p.kind) for p in body.parents],
                max_header_bytes=settings.validation.max_header_bytes,
                max_tensors=settings.validation.max_tensors_per_file,
            )
        ),
        status_code=201,
    )


@router.get("", response_model=Page[BaseModelRead], responses=responses(InvalidPageToken))
def list_base_models(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[BaseModelRead]:
    """Base models by name, each with its revisions."""
    rows = base_models.list_base_models(
        session, actor=actor, after=decode_name_token(page.token), limit=page.fetch
    )
    return page.of(
        rows,
        lambda row: BaseModelRead(name=row[0].name, created_at=row[0].created_at, revisions=row[1]),
        key=lambda m: [m.name],
    )


@router.get(
    "/{name:path}/revisions/{revision}/manifest",
    responses=responses(InvalidName, BaseModelNotFound),
)
def get_manifest(
    name: BaseModelPath,
    revision: RevisionPath,
    actor: ActorDep,
    session: SessionDep,
    store: StoreDep,
    manifests: ManifestsDep,
) -> Response:
    """The weights manifest (``{"config", "tensors"}``) that adapters are checked against."""
    view = base_models.get_base_version(session, actor=actor, name=name, revision=revision)
    manifest = manifests.load(store, view.version.manifest_blob)
    return Response(
        json.dumps(manifest.to_json(), sort_keys=True),
        media_type="application/json",
        headers={"X-Content-Digest": view.version.manifest_digest},
    )


@router.get(
    "/{name:path}/revisions/{revision}/files/{file_name}",
    response_class=StreamingResponse,
    responses=responses(
        InvalidName, BaseModelNotFound, VersionFileNotFound, BlobNotFound, RangeNotSatisfiable
    ),
)
def download_base_file(
    name: BaseModelPath,
    revision: RevisionPath,
    file_name: VersionFilePath,
    request: Request,
    principal: PrincipalDep,
    store: StoreDep,
) -> StreamingResponse:
    """Stream one stored file of a base revision (registered with ``--upload-weights``),
    straight from the artifact store; its digest is in ``X-Content-Digest``. One ``Range`` is
    answered ``206`` (resuming a download), a bad one ``416 range_not_satisfiable``."""
    with short_read(request, principal) as (session, actor):
        found = base_models.get_base_file(
            session, actor=actor, name=name, revision=revision, file_name=file_name
        )
    headers = request.headers
    return blob_response(
        store, found.digest, found.name, headers.get("range"), headers.get("if-range")
    )


@router.get(  # the answer's model is the return annotation
    "/{name:path}/revisions/{revision}/lineage",
    responses=responses(InvalidName, BaseModelNotFound),
)
def get_base_lineage(
    name: BaseModelPath,
    revision: RevisionPath,
    actor: ActorDep,
    session: SessionDep,
    descendants: bool = False,
) -> list[LineageEdgeRead]:
    """Ancestors (what a merged checkpoint was made from) or descendants (every version built
    on this revision, breadth first)."""
    hops = base_models.base_lineage(
        session, actor=actor, name=name, revision=revision, descendants=descendants
    )
    return lineage_reads(session, hops)


@router.get(
    "/{name:path}/revisions/{revision}",
    response_model=BaseModelVersionRead,
    responses=responses(InvalidName, BaseModelNotFound),
)
def get_base_model_version(
    name: BaseModelPath, revision: RevisionPath, actor: ActorDep, session: SessionDep
) -> BaseModelVersionRead:
    """One base model revision, with its config snapshot."""
    return base_version_read(
        base_models.get_base_version(session, actor=actor, name=name, revision=revision),
        with_config=True,
    )
