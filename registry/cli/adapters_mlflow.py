"""``adapters import --from-mlflow URI``: the server fetches a PEFT adapter from an MLflow
tracking server it allow-lists and registers it. Registered on the ``adapters`` group by
:mod:`registry.cli.adapters`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli._common import client, parse_adapter, parse_base
from registry.cli._output import OutputOpt, emit, get_state, render_record
from registry.cli.adapters_write import AdapterOpt, BaseOpt, DescriptionOpt, TagOpt

_URI_PREFIXES = ("runs:/", "models:/")


def _imported(result: dict[str, Any]) -> str:
    version, source = result["version"], result["source"]
    flat = {
        "ref": version["ref"],
        "created": result["created"],
        "digest": version["digest"],
        "peft_type": version["peft_type"],
        "base": version["base"],
        "mlflow_run": source["run_id"],
        "logged_model": source["model_id"],
        "artifact_path": source["artifact_path"],
        "evaluations": sum(1 for m in source["metrics"] if m["recorded"]),
    }
    return render_record(flat, list(flat))


def import_(
    ctx: typer.Context,
    source_uri: Annotated[
        str,
        typer.Option(
            "--from-mlflow",
            metavar="URI",
            help="runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>@<alias> or "
            "models:/m-<logged model id>.",
        ),
    ],
    adapter: AdapterOpt,
    base: BaseOpt,
    server: Annotated[
        str | None,
        typer.Option(
            "--mlflow-server",
            metavar="URL",
            help="MLflow tracking server, one the registry allow-lists "
            "(REGISTRY_MLFLOW__ALLOWED_SERVERS); default: the registry's default server.",
            show_default=False,
        ),
    ] = None,
    tags: TagOpt = None,
    description: DescriptionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Import a PEFT adapter from MLflow as the next version of NS/NAME.

    The registry server (not this CLI) resolves the URI over MLflow's REST API, fetches only
    the adapter's files (adapter_config.json, safetensors weights, README/tokenizer files; never
    a pickle) from the peft/ folder of a transformers model, a plain adapter folder or the
    highest Trainer checkpoint-N/, validates them against the base and records the run's
    metrics as evaluations (suite mlflow). Importing the same source again answers the same
    version (created: false).

    JSON: {"created", "version": {...}, "source": {"tracking_server", "run_id", "model_id",
    "artifact_path", "files", "metrics"}}. Exit 3 mlflow_server_not_allowed, 4
    mlflow_source_not_found, 6 mlflow_no_adapter or a bad adapter, 7 mlflow_unavailable.
    """
    state = get_state(ctx)
    namespace, name = parse_adapter(adapter)
    parse_base(base)
    if not source_uri.startswith(_URI_PREFIXES):
        raise typer.BadParameter("expected runs:/... or models:/...", param_hint="--from-mlflow")
    from registry.cli._progress import progress_bars

    with client(state) as api, progress_bars(state, api) as bars:
        if bars is not None:
            bars.spinner("import from MLflow (the server fetches and validates the files)")
        result = api.import_from_mlflow(
            namespace,
            name,
            source_uri=source_uri,
            base=base,
            tracking_server=server,
            description=description or "",
            tags=list(tags or []),
        )
    emit(state, result, lambda: _imported(result))
