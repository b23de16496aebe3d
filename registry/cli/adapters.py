"""``adapters``: push, register, validate, merge, compose, aggregate, list, show, versions, lineage,
pull, tag, archive.

A version reference REF is NS/NAME@vN, NS/NAME@sha256:<digest> or NS/NAME[@latest].
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli import adapters_convert, adapters_maths, adapters_mlflow, adapters_write
from registry.cli._common import (
    Paging,
    client,
    command_group,
    flag,
    lineage_table,
    paged,
    parse_adapter,
    reply,
    short_digest,
)
from registry.cli._output import OutputOpt, emit, get_state, render_record, render_table
from registry.cli.method_types import ACCEPTED_PEFT_TYPES

app = command_group(
    "Adapters and their versions. REF = NS/NAME@vN | NS/NAME@sha256:<hex> | NS/NAME[@latest]."
)


def _with_types(command: Callable[..., None]) -> str:
    """The command's help plus the accepted ``peft_type``s (a generated list: ``--help`` does
    not import the validator)."""
    return (
        f"{inspect.getdoc(command)}\n\nAccepted peft_type values (README.md, Supported "
        f"methods): {', '.join(ACCEPTED_PEFT_TYPES)}."
    )


app.command("push", help=_with_types(adapters_write.push))(adapters_write.push)
app.command("register", help=_with_types(adapters_write.register))(adapters_write.register)
app.command("validate", help=_with_types(adapters_write.validate))(adapters_write.validate)
app.command("merge")(adapters_maths.merge)
app.command("compose")(adapters_maths.compose)
app.command("aggregate")(adapters_maths.aggregate)
app.command("convert")(adapters_convert.convert)
app.command("import")(adapters_mlflow.import_)

RefArg = Annotated[str, typer.Argument(metavar="REF", help="NS/NAME@vN, @sha256:... or @latest.")]

_VERSION_KEYS = [
    "ref",
    "digest",
    "state",
    "base",
    "trained_on",
    "quantization",
    "peft_type",
    "method",
    "task_type",
    "r",
    "lora_alpha",
    "target_modules",
    "use_dora",
    "use_rslora",
    "dtype",
    "trainable_params",
    "size",
    "tags",
    "description",
    "registered_by",
    "git_commit",
    "mlflow_run_id",
    "source_uri",
    "serving_name",
    "created_at",
    "archived_at",
    "warnings",
]
_VERSION_COLUMNS = [
    "ref",
    "state",
    "peft_type",
    "method",
    "r",
    "params",
    "size",
    "base",
    "digest",
    "tags",
    "created_at",
]


def _method_words(version: dict[str, Any]) -> str | None:
    """``Title (family)``; None from a server that predates the fields."""
    title, family = version.get("method"), version.get("method_family")
    if title is None:
        return None
    return f"{title} ({family})" if family else str(title)


_ACRONYM = re.compile(r"\(([^()]+)\)")


def _method_short(version: dict[str, Any]) -> str | None:
    """For tables: the acronym a title ends its name with, and the family: ``DoRA (lora)``."""
    title = version.get("method")
    if title is None:
        return None
    found = _ACRONYM.findall(str(title))
    short = found[-1].split(",")[0].strip() if found else str(title)
    family = version.get("method_family")
    return f"{short} ({family})" if family else short


def _version_row(version: dict[str, Any]) -> dict[str, Any]:
    return {
        **version,
        "digest": short_digest(version.get("digest")),
        "method": _method_short(version),
        "params": version.get("trainable_params"),
    }


def _version_text(version: dict[str, Any]) -> str:
    text = render_record({**version, "method": _method_words(version)}, _VERSION_KEYS)
    files = version.get("files") or []
    if files:
        text += "\n\n" + render_table(files, ["name", "size", "digest"])
    return text


PeftTypeOpt = Annotated[
    str | None,
    typer.Option(
        "--peft-type",
        help="Method, case-insensitive: a peft_type (LORA includes DoRA/rsLoRA), dora, rslora, "
        "adalora, or family:NAME (family:lora, family:orthogonal, ...). Exit 6 "
        "(unknown_method) for anything else.",
        show_default=False,
    ),
]
BaseOpt = Annotated[
    str | None,
    typer.Option("--base", metavar="NAME[@REV]", help="Base model.", show_default=False),
]
RankOpt = Annotated[
    int | None, typer.Option("--rank", min=1, help="LoRA rank r.", show_default=False)
]
StateOpt = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="verifying | registered | validated | quarantined | archived.",
        show_default=False,
    ),
]
TagOpt = Annotated[str | None, typer.Option("--tag", help="Tag.", show_default=False)]


@app.command("list")
@paged
def list_(
    ctx: typer.Context,
    namespace: Annotated[
        str | None, typer.Option("--namespace", help="Only this namespace.", show_default=False)
    ] = None,
    peft_type: PeftTypeOpt = None,
    base: BaseOpt = None,
    rank: RankOpt = None,
    state_: StateOpt = None,
    tag: TagOpt = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """List adapters by namespace and name; with filters, only adapters having a version that
    matches them all.

    JSON: {"items": [{"namespace", "name", "description", "latest_version", "created_at"}],
    "next_page_token"}.
    """
    filters = {"peft_type": peft_type, "base": base, "rank": rank, "state": state_, "tag": tag}
    paging.print(
        ctx,
        lambda api, limit, token: api.list_adapters(
            namespace=namespace, filters=filters, limit=limit, page_token=token
        ),
        columns=["namespace", "name", "latest_version", "description", "created_at"],
    )


@app.command("show")
def show(ctx: typer.Context, ref: RefArg, output: OutputOpt = None) -> None:
    """Show one version (the latest when REF has no @...) with its files and datasets.

    JSON: {"ref", "version", "digest", "state", "peft_type", "r", "files", "datasets", ...}.
    Exit 4 (adapter_not_found, version_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        version = api.get_version(ref)
    emit(state, version, lambda: _version_text(version))


@app.command("versions")
@paged
def versions(
    ctx: typer.Context,
    adapter: Annotated[str, typer.Argument(metavar="NS/NAME", help="Adapter.")],
    peft_type: PeftTypeOpt = None,
    base: BaseOpt = None,
    rank: RankOpt = None,
    state_: StateOpt = None,
    tag: TagOpt = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """List the versions of NS/NAME, newest first, with optional filters.

    JSON: {"items": [version, ...], "next_page_token"}. Exit 4 (adapter_not_found).
    """
    namespace, name = parse_adapter(adapter)
    filters = {"peft_type": peft_type, "base": base, "rank": rank, "state": state_, "tag": tag}
    paging.print(
        ctx,
        lambda api, limit, token: api.list_versions(
            namespace, name, filters=filters, limit=limit, page_token=token
        ),
        columns=_VERSION_COLUMNS,
        row=_version_row,
    )


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    ref: RefArg,
    descendants: Annotated[
        bool, typer.Option("--descendants", help="Walk down (children) instead of up.")
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Ancestors (default) or descendants of a version, breadth first.

    The walk goes through base model versions too: the descendants of a version are every
    registered version built from it (its blast radius), including a base merged from it and
    the adapters trained on that base.

    JSON: {"ref", "descendants": bool, "edges": [{"child", "child_kind", "relation",
    "parent", "parent_kind", "depth", "recipe"}]}.
    """
    reply(
        ctx,
        lambda api: {
            "ref": ref,
            "descendants": descendants,
            "edges": api.lineage(ref, descendants=descendants),
        },
        lineage_table,
    )


@app.command("pull")
def pull(
    ctx: typer.Context,
    ref: RefArg,
    to: Annotated[Path, typer.Option("--to", metavar="DIR", help="Target directory.")],
    force: Annotated[
        bool, typer.Option("--force", help="Write into a non-empty directory (overwrites).")
    ] = False,
    for_serving: Annotated[
        bool,
        typer.Option(
            "--for-serving",
            help="After verifying, set adapter_config.json's base_model_name_or_path to the "
            "registered base (vLLM's filesystem resolver and LoRAX compare it); the original "
            "digests go to registry-pull.json.",
        ),
    ] = False,
    base_name: Annotated[
        str | None,
        flag("--base-name", "With --for-serving: the name the engine serves the base under."),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Download a version's files into DIR, byte for byte, verified.

    Each file is hashed while it streams into DIR/.NAME.<digest12>.part and renamed into place
    only if its sha256 matches the version listing and the server's X-Content-Digest; the
    listing is checked against the version digest. An interrupted pull (Ctrl-C, a lost
    connection) leaves no file under its final name: rerun it to skip the complete files and
    resume the partial one (Range request). Refuses a DIR holding other files unless --force
    (exit 5).

    JSON: {"ref", "digest", "dir", "files": [{"name", "digest", "size"}], "skipped": [names
    already complete], "resumed": [names continued from a partial file]}.
    Exit 8 (integrity_failure) when bytes do not match.
    """
    state = get_state(ctx)
    from registry.cli._progress import progress_bars

    with client(state) as api, progress_bars(state, api):
        result = api.pull(ref, to, force=force, for_serving=for_serving, base_name=base_name)
    emit(
        state,
        result,
        lambda: (
            f"pulled {result['ref']} ({short_digest(result['digest'])}) into "
            f"{result['dir']}: " + ", ".join(f["name"] for f in result["files"])
        ),
    )


@app.command("tag")
def tag(
    ctx: typer.Context,
    ref: RefArg,
    tags: Annotated[
        list[str] | None, typer.Argument(metavar="TAG...", help="Tags to add.", show_default=False)
    ] = None,
    remove: Annotated[
        list[str] | None,
        typer.Option(
            "--remove", metavar="TAG", help="Tag to remove (repeatable).", show_default=False
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Add (and --remove) tags on a version.

    JSON: the version after the change (with "tags").
    """
    state = get_state(ctx)
    if not tags and not remove:
        raise typer.BadParameter("give tags to add and/or --remove TAG", param_hint="TAG")
    with client(state) as api:
        version = api.update_tags(ref, add=tags or [], remove=remove or [])
    emit(state, version, lambda: f"{version['ref']} tags: {', '.join(version['tags']) or '-'}")


@app.command("archive")
def archive(
    ctx: typer.Context,
    ref: RefArg,
    reason: Annotated[str, typer.Option(help="Why (kept with the change).")] = "",
    output: OutputOpt = None,
) -> None:
    """Archive a version: it stays pullable for audit but can no longer be promoted.

    JSON: the version after the change ("state": "archived"). Exit 5 (invalid_transition).
    """
    state = get_state(ctx)
    with client(state) as api:
        version = api.archive(ref, reason=reason)
    emit(state, version, lambda: f"{version['ref']} state: {version['state']}")
