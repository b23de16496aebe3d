"""MLflow imports, phase by phase (the route runs them around the registration phases of
:mod:`registry.catalog.registration`, holding no transaction while MLflow is asked or bytes
flow):

1. :func:`allowed_server` and :func:`check_target`: the server is allow-listed, the namespace
   authorizes ``register_version``, the base exists (403/404 before MLflow is called);
2. :func:`~registry.mlflow_import.source.resolve` the URI, then :func:`find_import`: a source
   imported into this adapter before answers its version again (200);
3. :func:`~registry.mlflow_import.source.locate_adapter` and :func:`fetch_adapter`: only the
   adapter's files, streamed into an upload session of their own;
4. registration's own validation and publishing, then :func:`record_import` in the insert
   transaction: the import record and one evaluation (suite ``mlflow``) per run metric.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor
from registry.auth.principal import AuthenticatedPrincipal
from registry.catalog import evaluations
from registry.catalog.base_models import get_base_version
from registry.catalog.namespaces import get_namespace
from registry.catalog.queries import VersionContext, get_adapter, resolve_version
from registry.catalog.registration_inputs import stage_files
from registry.db.session import Sessions, unit_of_work
from registry.errors import AdapterNotFound, InvalidName, MlflowServerNotAllowed
from registry.mlflow_import.models import MlflowImport
from registry.mlflow_import.repository import MlflowImportRepository
from registry.mlflow_import.rest import MlflowRest
from registry.mlflow_import.source import AdapterFolder, Metric, Resolved
from registry.mlflow_settings import MlflowSettings, normalise_server
from registry.storage.base import ArtifactStore
from registry.uploads import service as uploads

SUITE = "mlflow"
_LOWER_IS_BETTER = re.compile(r"loss|error|perplexity|ppl|wer|cer|mse|mae|rmse|latency", re.I)


def allowed_server(settings: MlflowSettings, requested: str | None) -> str:
    """The normalised server URL, if allow-listed (``mlflow_server_not_allowed`` otherwise)."""
    server = requested if requested else settings.default_server
    if not server:
        raise MlflowServerNotAllowed(
            "no MLflow tracking server named and none configured", context={"server": None}
        )
    url = normalise_server(server)
    if url not in settings.allowed_servers:
        raise MlflowServerNotAllowed(
            "MLflow tracking server is not in mlflow.allowed_servers",
            context={"server": url[:300]},
        )
    return url


def check_target(
    session: Session, *, actor: Actor, namespace: str, adapter: str, base: str
) -> None:
    """The name is valid, the namespace authorizes ``register_version``, the base exists."""
    refs.adapter_name(adapter)
    base_ref = refs.parse_base_ref(base)
    get_namespace(session, name=namespace, actor=actor, action="register_version")
    get_base_version(session, actor=actor, name=base_ref.name, revision=base_ref.revision)


def find_import(
    session: Session, *, actor: Actor, namespace: str, adapter: str, server: str, location: str
) -> tuple[VersionContext, MlflowImport] | None:
    """The version an earlier import of this resolved source made in this adapter, if any."""
    try:
        ns, row = get_adapter(session, namespace=namespace, name=adapter, actor=actor)
    except AdapterNotFound:
        return None
    repo = MlflowImportRepository(session)
    found = repo.find(row.id, server, location)
    number = repo.version_number(found.adapter_version_id) if found is not None else None
    if found is None or number is None:
        return None
    ctx = resolve_version(session, ref=f"{ns.name}/{adapter}@v{number}", actor=actor)
    return ctx, found


def fetch_adapter(
    sessions: Sessions,
    *,
    store: ArtifactStore,
    principal: AuthenticatedPrincipal,
    rest: MlflowRest,
    resolved: Resolved,
    folder: AdapterFolder,
    upload_ttl_s: int,
) -> uuid.UUID:
    """Stream the adapter's files from MLflow into a new upload session; its id.

    Each file is hashed and sniffed like a PUT of it; on failure the staged bytes are discarded.
    """
    with unit_of_work(sessions.write) as session:
        upload_id = uploads.create_upload(session, principal=principal, ttl_s=upload_ttl_s).id
    files = (
        (
            entry.path.rstrip("/").rsplit("/", 1)[-1],
            rest.download(
                run_id=None if resolved.model_id else resolved.run_id,
                model_id=resolved.model_id,
                path=entry.path,
                size=entry.size,
            ),
        )
        for entry in folder.files
    )
    stage_files(sessions, store=store, principal=principal, upload_id=upload_id, files=files)
    return upload_id


@dataclass(frozen=True, slots=True)
class ImportSource:
    server: str
    source_uri: str
    resolved: Resolved
    folder: AdapterFolder


def record_import(
    session: Session, *, actor: Actor, ctx: VersionContext, source: ImportSource
) -> MlflowImport:
    """Record where ``ctx`` came from and its run's metrics as evaluations (suite ``mlflow``).

    Metrics whose key is not a valid metric name are kept in the record (``recorded: false``)
    but not as evaluations. A source already recorded for this adapter (a concurrent import
    of it won) answers that record. Runs in the caller's transaction; flushes.
    """
    resolved = source.resolved
    repo = MlflowImportRepository(session)
    # A concurrent import of the same source won (same content: its version is ours too).
    if (earlier := repo.find(ctx.adapter.id, source.server, resolved.location)) is not None:
        return earlier
    provenance: list[dict[str, Any]] = []
    for metric in resolved.metrics:
        provenance.append(_record_metric(session, actor, ctx, resolved.run_id, metric))
    row = repo.add(
        MlflowImport(
            adapter_id=ctx.adapter.id,
            adapter_version_id=ctx.version.id,
            tracking_server=source.server,
            source_uri=source.source_uri,
            location=resolved.location,
            run_id=resolved.run_id,
            model_id=resolved.model_id,
            model_version=resolved.model_version,
            artifact_path=source.folder.path,
            files=[
                {"name": f.path.rstrip("/").rsplit("/", 1)[-1], "path": f.path, "size": f.size}
                for f in source.folder.files
            ],
            metrics=provenance,
            imported_by_id=actor.id,
        )
    )
    actor.audit(
        session,
        "adapter.version.mlflow_import",
        f"adapter:{ctx.ref}",
        after={
            "server": source.server,
            "source_uri": source.source_uri,
            "location": resolved.location,
            "run_id": resolved.run_id,
        },
    )
    return row


def _record_metric(
    session: Session, actor: Actor, ctx: VersionContext, run_id: str | None, metric: Metric
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "key": metric.key,
        "value": metric.value,
        "step": metric.step,
        "timestamp": metric.timestamp,
        "run_id": run_id,
        "recorded": False,
    }
    try:
        refs.suite_name(metric.key, "metric")
    except InvalidName:
        return entry
    if metric.value != metric.value or metric.value in (float("inf"), float("-inf")):
        return entry
    _ctx, evaluation = evaluations.record_evaluation(
        session,
        actor=actor,
        ref=ctx.ref,
        data=evaluations.EvaluationInput(
            suite=SUITE,
            metric=metric.key,
            value=metric.value,
            higher_is_better=_LOWER_IS_BETTER.search(metric.key) is None,
            harness_version="mlflow",
            source=f"mlflow:runs/{run_id}/metrics/{metric.key}@{metric.step}"[:256],
        ),
    )
    entry.update(recorded=True, evaluation_id=str(evaluation.id))
    return entry


def discard_fetched(store: ArtifactStore, upload_id: uuid.UUID) -> None:
    """Drop the staged bytes of an import that will not be registered."""
    uploads.discard_upload(store, upload_id)


def imports_of(session: Session, version_id: uuid.UUID) -> list[MlflowImport]:
    """Every MLflow source recorded for a version, oldest first."""
    return MlflowImportRepository(session).of_version(version_id)
