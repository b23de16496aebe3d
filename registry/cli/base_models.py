"""``base-models``: register a base model revision (its weights manifest), list, show, pull its
stored checkpoint, lineage."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import (
    client,
    command_group,
    lineage_table,
    list_command,
    parse_base,
    reply,
)
from registry.cli._output import OutputOpt, emit, exit_with_error, get_state, render_record

app = command_group("Base models: the checkpoints adapters are trained on and checked against.")

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
    quantized_from: Annotated[
        str | None,
        typer.Option(
            "--quantized-from",
            metavar="NAME@REV",
            help="A pre-quantized checkpoint (QLoRA base): the registered base it was quantized "
            "from (lineage quantized_from).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Register NAME at --revision from a local checkpoint directory.

    Reads config.json and the safetensors headers only (never the weights data) and sends the
    weights manifest (every tensor's name, dtype, shape); --upload-weights also uploads the
    checkpoint files. A pre-quantized checkpoint (bitsandbytes 4-/8-bit) is recorded with its
    logical shapes and its quantization; --quantized-from links it to the unquantized base.
    `--from s3://...` is not supported yet (exit 2).

    JSON: the registered revision {"name", "revision", "manifest_digest", "tensor_count", ...}.
    Exit 5 (base_model_version_exists), 6 (invalid_base_model, corrupt_safetensors).
    """
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
    with client(state) as api:
        registered = api.push_base(
            name,
            revision,
            directory,
            upload_weights=upload_weights,
            license=license_,
            weights_uri=weights_uri,
            parents=_quantized_parent(quantized_from),
        )
    emit(state, registered, lambda: render_record(registered, _SHOW_KEYS))


def _quantized_parent(ref: str | None) -> list[dict[str, str]]:
    if ref is None:
        return []
    parse_base(ref, "--quantized-from")  # NAME@REV, refused locally otherwise
    return [{"ref": ref, "relation": "quantized_from", "kind": "base_model_version"}]


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


@app.command("pull")
def pull(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@REV", help="Base model revision.")],
    to: Annotated[Path, typer.Option("--to", metavar="DIR", help="Target directory.")],
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty directory (overwrites).")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Download the stored checkpoint of a base revision (registered with --upload-weights)
    into DIR, every file verified against its sha256 while it streams. Rerun an interrupted
    pull to skip the complete files and resume the partial one (as `adapters pull`).

    JSON: {"ref", "manifest_digest", "dir", "files": [{"name", "digest", "size"}], "skipped",
    "resumed"}.
    Exit 4 (no such revision, or no stored weights: file_not_found), 5 (DIR not empty),
    8 (integrity_failure).
    """
    parse_base(ref, "NAME@REV")
    reply(
        ctx,
        lambda api: api.pull_base(ref, to, force=force),
        lambda r: f"pulled {r['ref']} into {r['dir']}: " + ", ".join(f["name"] for f in r["files"]),
    )


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="NAME@REV", help="Base model revision.")],
    descendants: Annotated[
        bool, typer.Option("--descendants", help="Walk down: every version built on it.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """What a base revision was made from (merged_from, quantized_from), or with --descendants
    every registered version built on it.

    JSON: {"ref", "descendants": bool, "edges": [{"child", "child_kind", "relation", "parent",
    "parent_kind", "depth", "recipe"}]}. Exit 4 (base_model_not_found).
    """
    parse_base(ref, "NAME@REV")
    reply(
        ctx,
        lambda api: {
            "ref": ref,
            "descendants": descendants,
            "edges": api.base_lineage(ref, descendants=descendants),
        },
        lineage_table,
    )
