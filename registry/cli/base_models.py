"""``base-models``: register a base model revision (its weights manifest), list, show."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli._common import client, command_group, list_command, parse_base
from registry.cli._output import OutputOpt, emit, exit_with_error, get_state, render_record

app = command_group("Base models: the checkpoints adapters are trained on and checked against.")

#: Files sent by ``--upload-weights``: the config, the index and the safetensors weights.
_WEIGHT_FILES = re.compile(
    r"^(config\.json|model\.safetensors\.index\.json|model(-[0-9]{5}-of-[0-9]{5})?\.safetensors)$"
)

_SHOW_KEYS = [
    "name",
    "revision",
    "architecture",
    "model_type",
    "manifest_digest",
    "tensor_count",
    "parameter_count",
    "license",
    "weights_uri",
    "tokenizer_digest",
    "created_at",
]


@app.command("register")
def register(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Base model name, e.g. meta-llama/Llama-3.1-8B.")],
    revision: Annotated[str, typer.Option(help="Revision (commit hash or label).")],
    source: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="DIR",
            help="Local checkpoint directory: config.json + model.safetensors, or "
            "model.safetensors.index.json + shards. s3:// sources are not supported yet.",
        ),
    ],
    upload_weights: Annotated[
        bool,
        typer.Option(
            "--upload-weights", help="Also upload config.json, the index and the safetensors files."
        ),
    ] = False,
    license_: Annotated[
        str | None, typer.Option("--license", help="Licence id.", show_default=False)
    ] = None,
    weights_uri: Annotated[
        str | None,
        typer.Option(
            "--weights-uri", help="Where the weights live (recorded only).", show_default=False
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Register NAME at --revision from a local checkpoint directory.

    Reads config.json and the safetensors headers only (never the weights data) and sends the
    weights manifest (every tensor's name, dtype, shape); --upload-weights also uploads the
    checkpoint files. `--from s3://...` is not supported yet (exit 2).

    JSON: the registered revision {"name", "revision", "manifest_digest", "tensor_count", ...}.
    Exit 5 (base_model_version_exists), 6 (invalid_base_model, corrupt_safetensors).
    """
    from registry.client import sha256_file
    from registry.validation.manifest import read_base_dir

    state = get_state(ctx)
    if "://" in source:
        exit_with_error(
            state,
            "not_supported",
            "base-models register --from supports local directories only (s3:// not yet)",
            {"from": source},
        )
    directory = Path(source)
    if not directory.is_dir():
        exit_with_error(state, "usage", f"{source} is not a directory", {"from": source})
    manifest = read_base_dir(directory).to_json()
    body: dict[str, Any] = {
        "name": name,
        "revision": revision,
        "config": manifest["config"],
        "tensors": manifest["tensors"],
    }
    tokenizer = directory / "tokenizer.json"
    if tokenizer.is_file():
        body["tokenizer_digest"] = "sha256:" + sha256_file(tokenizer)
    if license_ is not None:
        body["license"] = license_
    if weights_uri is not None:
        body["weights_uri"] = weights_uri
    with client(state) as api:
        if upload_weights:
            files = sorted(
                p for p in directory.iterdir() if p.is_file() and _WEIGHT_FILES.fullmatch(p.name)
            )
            body["upload_id"] = api.upload_files(files, purpose="base_model")
        registered = api.register_base_model(body)
    emit(state, registered, lambda: render_record(registered, _SHOW_KEYS))


list_command(
    app,
    """List base models by name, each with its revisions.

    JSON: {"items": [{"name", "created_at", "revisions": [...]}], "next_page_token"}.
    """,
    lambda api, **page: api.list_base_models(**page),
    columns=["name", "revisions", "created_at"],
)


@app.command("show")
def show(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@REV", help="Base model revision.")],
    output: OutputOpt = None,
) -> None:
    """Show one base model revision with its config snapshot.

    JSON: {"name", "revision", "architecture", "manifest_digest", "config", "files", ...}.
    Exit 4 (base_model_not_found).
    """
    state = get_state(ctx)
    name, revision = parse_base(ref, "NAME@REV")
    with client(state) as api:
        found = api.get_base_model(name, revision)
    emit(state, found, lambda: render_record(found, _SHOW_KEYS))
