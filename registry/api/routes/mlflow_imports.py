"""Import an adapter version from an MLflow tracking server (``mlflow_import/service.py``)."""

from __future__ import annotations

import uuid
from dataclasses import replace

from fastapi import status
from fastapi.responses import JSONResponse

from registry.access.actor import Actor
from registry.api.deps import (
    ActorDep,
    DbSession,
    ManifestsDep,
    SessionDep,
    SettingsDep,
    SlowWriteDep,
    StoreDep,
)
from registry.api.params import AdapterPath, NamespacePath, SelectorPath
from registry.api.routes._common import (
    VERSION_NOT_FOUND,
    authenticated_router,
    responses,
    version_ref,
)
from registry.catalog import registration
from registry.catalog.queries import VersionContext, resolve_version
from registry.catalog.views import KnownParts, version_reads
from registry.errors import (
    BaseModelNotFound,
    CorruptSafetensors,
    ForbiddenFile,
    IncompatibleBase,
    InconsistentAdapter,
    InvalidAdapterConfig,
    InvalidUri,
    MissingWeights,
    MlflowNoAdapter,
    MlflowServerNotAllowed,
    MlflowSourceNotFound,
    MlflowUnavailable,
    UnhealthyTensors,
    UnknownPeftType,
    VersionAlreadyExists,
)
from registry.mlflow_import import service
from registry.mlflow_import.models import MlflowImport
from registry.mlflow_import.rest import MlflowRest
from registry.mlflow_import.schemas import MlflowImportCreate, MlflowImportRead, MlflowSourceRead
from registry.mlflow_import.source import locate_adapter, parse_source_uri, resolve

router = authenticated_router(prefix="/api/v1/adapters", tags=["adapters"])


def _read(
    session: DbSession,
    ctx: VersionContext,
    row: MlflowImport,
    *,
    created: bool,
    known: KnownParts | None = None,
) -> MlflowImportRead:
    version = version_reads(
        session, ctx.namespace.name, ctx.adapter, [ctx.version], detail=True, known=known
    )[0]
    return MlflowImportRead(created=created, version=version, source=_source(row))


def _source(row: MlflowImport) -> MlflowSourceRead:
    return MlflowSourceRead(
        tracking_server=row.tracking_server,
        source_uri=row.source_uri,
        run_id=row.run_id,
        model_id=row.model_id,
        model_version=row.model_version,
        artifact_path=row.artifact_path,
        files=row.files,
        metrics=row.metrics,
    )


@router.post(
    "/{namespace}/{name}/mlflow-imports",
    status_code=status.HTTP_201_CREATED,
    response_model=MlflowImportRead,
    responses={
        200: {"model": MlflowImportRead, "description": "Imported before: the same version."},
        **responses(
            *VERSION_NOT_FOUND,
            BaseModelNotFound,
            InvalidUri,
            MlflowServerNotAllowed,
            MlflowSourceNotFound,
            MlflowNoAdapter,
            MlflowUnavailable,
            CorruptSafetensors,
            MissingWeights,
            UnknownPeftType,
            InvalidAdapterConfig,
            InconsistentAdapter,
            IncompatibleBase,
            ForbiddenFile,
            UnhealthyTensors,
            VersionAlreadyExists,
        ),
    },
)
def import_from_mlflow(
    namespace: NamespacePath,
    name: AdapterPath,
    body: MlflowImportCreate,
    slow: SlowWriteDep,
    store: StoreDep,
    manifests: ManifestsDep,
    settings: SettingsDep,
) -> object:
    """Fetch a PEFT adapter from an allow-listed MLflow tracking server (a run's artifacts, a
    registered model version or alias, or a logged model) and register it as the next version;
    the run's metrics become evaluations (suite ``mlflow``). Importing the same source into
    the same adapter again answers its version with 200."""
    replayed = slow.replay(body)
    if replayed is not None:
        return replayed
    with slow.reading() as (session, actor):  # the namespace's 404 / 403 before anything else
        service.check_target(
            session, actor=actor, namespace=namespace, adapter=name, base=body.base
        )
    server = service.allowed_server(settings.mlflow, body.tracking_server)
    uri = parse_source_uri(body.source_uri)
    with MlflowRest(server, settings.mlflow) as rest:
        resolved = resolve(rest, uri)
        with slow.reading() as (session, actor):
            found = service.find_import(
                session,
                actor=actor,
                namespace=namespace,
                adapter=name,
                server=server,
                location=resolved.location,
            )
        if found is not None:
            ctx, row = found
            return slow.commit(
                body, actor, lambda s: _read(s, ctx, row, created=False), status_code=200
            )
        folder = locate_adapter(rest, resolved)
        upload_id = service.fetch_adapter(
            slow.sessions,
            store=store,
            principal=slow.principal,
            rest=rest,
            resolved=resolved,
            folder=folder,
            upload_ttl_s=settings.server.upload_ttl_s,
        )
    source = service.ImportSource(server, body.source_uri, resolved, folder)
    return _register(namespace, name, body, slow, store, manifests, settings, upload_id, source)


def _register(
    namespace: str,
    name: str,
    body: MlflowImportCreate,
    slow: SlowWriteDep,
    store: StoreDep,
    manifests: ManifestsDep,
    settings: SettingsDep,
    upload_id: uuid.UUID,
    source: service.ImportSource,
) -> JSONResponse:
    """Validate, publish and insert the fetched upload (registration's phases 1-3); content
    already registered in this adapter is linked to this source and answered with 200."""
    limits = registration.RegistrationLimits.from_settings(settings)
    metadata = registration.VersionMetadata(
        description=body.description,
        tags=tuple(body.tags),
        mlflow_run_id=source.resolved.run_id,
    )
    try:
        with slow.reading() as (session, actor):
            plan = registration.plan_version(
                session,
                actor=actor,
                limits=limits,
                namespace=namespace,
                adapter=name,
                base=body.base,
                upload_id=upload_id,
                source_uri=None,
                metadata=metadata,
            )
    except BaseException:  # the namespace or base went away meanwhile: leave nothing behind
        service.discard_fetched(store, upload_id)
        raise
    plan = replace(plan, source_uri=body.source_uri)
    try:
        prepared = registration.prepare_version(
            slow.sessions,
            store=store,
            manifests=manifests,
            principal=slow.principal,
            limits=limits,
            plan=plan,
        )
    except VersionAlreadyExists as exc:
        ref = str(exc.context["ref"])
        return slow.commit(body, actor, lambda s: _link(s, actor, ref, source), status_code=200)

    def produce(session: DbSession) -> MlflowImportRead:
        registered = registration.commit_version(
            session, actor=actor, store=store, prepared=prepared
        )
        row = service.record_import(session, actor=actor, ctx=registered.ctx, source=source)
        return _read(session, registered.ctx, row, created=True, known=registered.known)

    return slow.commit(body, actor, produce, status_code=201)


def _link(
    session: DbSession, actor: Actor, ref: str, source: service.ImportSource
) -> MlflowImportRead:
    ctx = resolve_version(session, ref=ref, actor=actor)
    row = service.record_import(session, actor=actor, ctx=ctx, source=source)
    return _read(session, ctx, row, created=False)


@router.get(
    "/{namespace}/{name}/versions/{selector}/mlflow-imports",
    response_model=list[MlflowSourceRead],
    responses=responses(*VERSION_NOT_FOUND),
)
def list_mlflow_sources(
    namespace: NamespacePath,
    name: AdapterPath,
    selector: SelectorPath,
    actor: ActorDep,
    session: SessionDep,
) -> list[MlflowSourceRead]:
    """The MLflow sources a version was imported from (oldest first; empty for a push): server,
    URI, run, logged model, artifact folder, files, and the provenance of each metric."""
    ctx = resolve_version(session, ref=version_ref(namespace, name, selector), actor=actor)
    return [_source(row) for row in service.imports_of(session, ctx.version.id)]
