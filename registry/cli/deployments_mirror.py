"""``deployments mirror set|show|remove``: keep an MLflow registered model's aliases and tags in
step with a deployment's revisions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from registry.cli._common import DeploymentArg, command_group, reply
from registry.cli._output import OutputOpt, get_state, note

if TYPE_CHECKING:
    from registry.client import RegistryClient

app = command_group(
    "Mirror a deployment into an MLflow registered model's aliases (prod-stable, "
    "prod-candidate) and tags."
)


@app.command("set")
def set_(
    ctx: typer.Context,
    name: DeploymentArg,
    model: Annotated[str, typer.Option("--model", metavar="NAME", help="MLflow registered model.")],
    mlflow_server: Annotated[
        str | None,
        typer.Option(
            "--mlflow-server",
            metavar="URL",
            help="An allow-listed tracking server (default: the server's default).",
        ),
    ] = None,
    stable_alias: Annotated[
        str | None,
        typer.Option("--stable-alias", metavar="ALIAS", help="Default: prod-stable."),
    ] = None,
    candidate_alias: Annotated[
        str | None,
        typer.Option("--candidate-alias", metavar="ALIAS", help="Default: prod-candidate."),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Bind the deployment to an MLflow registered model (needs the rollout permission).

    JSON: {"deployment", "tracking_server", "model", "stable_alias", "candidate_alias",
    "enabled", "cursor", "last_set", "last_drift", "last_error", "last_asserted_at", ...}.
    Exit 3 (mlflow_server_not_allowed), 4 (deployment_not_found).
    """
    reply(
        ctx,
        lambda api: api.set_mlflow_mirror(
            name,
            model=model,
            tracking_server=mlflow_server,
            stable_alias=stable_alias,
            candidate_alias=candidate_alias,
        ),
    )


@app.command("show")
def show(ctx: typer.Context, name: DeploymentArg, output: OutputOpt = None) -> None:
    """The binding, the aliases as last set, the last drift seen and the last error.
    Exit 4 (deployment_not_found, mlflow_mirror_not_found)."""
    reply(ctx, lambda api: api.get_mlflow_mirror(name))


@app.command("remove")
def remove(ctx: typer.Context, name: DeploymentArg, output: OutputOpt = None) -> None:
    """Stop mirroring (MLflow's aliases stay where they are). Exit 4 (mlflow_mirror_not_found)."""

    def call(api: RegistryClient) -> dict[str, str]:
        api.remove_mlflow_mirror(name)
        return {"removed": name}

    reply(ctx, call)
    if not get_state(ctx).json:
        note(f"{name} is no longer mirrored into MLflow")
