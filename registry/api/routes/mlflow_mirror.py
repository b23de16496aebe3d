"""A deployment's mirror into an MLflow registered model's aliases (``mlflow_mirror/``)."""

from __future__ import annotations

from fastapi import Response, status

from registry.api.deps import ActorDep, SessionDep, SettingsDep, WriteDep
from registry.api.params import DeploymentPath
from registry.api.routes._common import authenticated_router, responses
from registry.deployments import service as deployments
from registry.deployments.models import Deployment
from registry.errors import (
    DeploymentNotFound,
    InvalidName,
    MlflowMirrorNotFound,
    MlflowServerNotAllowed,
    PolicyDenied,
)
from registry.mlflow_import.service import allowed_server
from registry.mlflow_mirror import service
from registry.mlflow_mirror.models import MlflowMirror
from registry.mlflow_mirror.schemas import MirrorPut, MirrorRead

router = authenticated_router(prefix="/api/v1/deployments", tags=["deployments"])


def mirror_read(dep: Deployment, row: MlflowMirror) -> MirrorRead:
    return MirrorRead(
        deployment=dep.name,
        tracking_server=row.tracking_server,
        model=row.model_name,
        stable_alias=row.stable_alias,
        candidate_alias=row.candidate_alias,
        enabled=row.enabled,
        cursor=row.cursor,
        last_set=row.last_set or {},
        last_drift=row.last_drift,
        last_error=row.last_error,
        last_asserted_at=row.last_asserted_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


@router.put(
    "/{name}/mlflow-mirror",
    response_model=MirrorRead,
    responses={
        201: {"model": MirrorRead, "description": "Bound."},
        **responses(InvalidName, DeploymentNotFound, MlflowServerNotAllowed, PolicyDenied),
    },
)
def put_mirror(
    name: DeploymentPath, body: MirrorPut, ctx: WriteDep, settings: SettingsDep
) -> object:
    """Bind the deployment to a registered model of an allow-listed MLflow server: the mirror
    worker keeps its aliases (stable, candidate) and tags in step with the revisions. Needs
    the permission that moves the deployment's traffic (``rollout``)."""
    # Authorized first: a caller who may not move this deployment's traffic learns nothing of
    # the MLflow allow-list (404 / 403 before mlflow_server_not_allowed).
    deployments.get_deployment(ctx.session, actor=ctx.actor, name=name, action="rollout")
    server = allowed_server(settings.mlflow, body.tracking_server)
    spec = service.BindingSpec(
        tracking_server=server,
        model_name=body.model,
        stable_alias=body.stable_alias,
        candidate_alias=body.candidate_alias,
        enabled=body.enabled,
    )
    dep, row, created = service.put_binding(ctx.session, actor=ctx.actor, name=name, spec=spec)
    read = mirror_read(dep, row)
    return Response(
        read.model_dump_json(),
        media_type="application/json",
        status_code=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
    )


@router.get(
    "/{name}/mlflow-mirror",
    response_model=MirrorRead,
    responses=responses(InvalidName, DeploymentNotFound, MlflowMirrorNotFound),
)
def get_mirror(name: DeploymentPath, actor: ActorDep, session: SessionDep) -> MirrorRead:
    """The binding, the aliases as last set, the last drift seen and the last error."""
    dep, row = service.get_binding(session, actor=actor, name=name)
    return mirror_read(dep, row)


@router.delete(
    "/{name}/mlflow-mirror",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=responses(InvalidName, DeploymentNotFound, MlflowMirrorNotFound, PolicyDenied),
)
def delete_mirror(name: DeploymentPath, ctx: WriteDep) -> Response:
    """Stop mirroring (MLflow's aliases stay where they are)."""
    service.remove_binding(ctx.session, actor=ctx.actor, name=name)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
