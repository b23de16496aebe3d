"""Helpers shared by the command modules: the client, pagination, argument parsing."""

from __future__ import annotations

import functools
import inspect
import re
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_type_hints

import typer

from registry.cli._output import OutputOpt, State, emit, emit_page, get_state, note, render_table

if TYPE_CHECKING:
    from registry.client import RegistryClient

JSON = dict[str, Any]

_RELATION = re.compile(r"[a-z][a-z_]{0,31}")

LimitOpt = Annotated[
    int | None,
    typer.Option(
        "--limit", min=1, max=500, help="Page size (server default 50).", show_default=False
    ),
]
PageTokenOpt = Annotated[
    str | None,
    typer.Option("--page-token", help="next_page_token of the previous page.", show_default=False),
]
DeploymentArg = Annotated[str, typer.Argument(metavar="D", help="Deployment name.")]
AllOpt = Annotated[bool, typer.Option("--all", help="Follow next_page_token and print every item.")]


def base_dir_option(help_: str) -> Any:
    """``--base-dir BASE_DIR``: an existing local base checkpoint directory."""
    return typer.Option(
        "--base-dir",
        metavar="BASE_DIR",
        exists=True,
        file_okay=False,
        help=help_,
        show_default=False,
    )


def flag(flag_: str, help_: str, metavar: str | None = None) -> Any:
    """A ``typer.Option`` whose default ``--help`` does not show (an optional value)."""
    return typer.Option(flag_, help=help_, metavar=metavar, show_default=False)


def command_group(help_: str) -> typer.Typer:
    """A command group (``adapter-registry GROUP ...``): plain-text help, help when bare."""
    return typer.Typer(help=help_, no_args_is_help=True, rich_markup_mode=None)


def client(state: State) -> RegistryClient:
    """The HTTP client for ``--server`` / ``--token`` (httpx imported on first use)."""
    from registry import client as client_module  # attribute lookup: tests swap the class

    return client_module.RegistryClient(state.server, state.token)


def reply(
    ctx: typer.Context,
    call: Callable[[RegistryClient], Any],
    text: Callable[[Any], str] | None = None,
) -> None:
    """Make one request with ``call(api)`` and print the answer: JSON, or ``text(answer)``
    (a record by default)."""
    state = get_state(ctx)
    with client(state) as api:
        answer = call(api)
    emit(state, answer, None if text is None else lambda: text(answer))


def collect(fetch: Callable[[str | None], JSON], page_token: str | None, all_pages: bool) -> JSON:
    """One page (``{items, next_page_token}``) or, with ``--all``, every page concatenated."""
    page = fetch(page_token)
    if not all_pages:
        return page
    items = list(page.get("items", []))
    while page.get("next_page_token"):
        page = fetch(page["next_page_token"])
        items.extend(page.get("items", []))
    return {"items": items, "next_page_token": None}


def option_group(
    group: type[Any], name: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A decorator that gives a command the fields of the dataclass ``group`` as its options,
    so that options several commands share are declared once. Typer sees them, in field order,
    between the command's own parameters and ``--output`` (the order ``--help`` lists them in);
    the command receives them as one argument ``name``, an instance of ``group``."""
    hints = get_type_hints(group, include_extras=True)
    shared = [
        inspect.Parameter(
            f.name,
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=hints[f.name],
            default=inspect.Parameter.empty if f.default is MISSING else f.default,
        )
        for f in fields(group)
    ]

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        signature = inspect.signature(command, eval_str=True)
        own = [p for p in signature.parameters.values() if p.name not in (name, "output")]
        tail = [p for p in signature.parameters.values() if p.name == "output"]
        # Required ones first (Python's rule); otherwise the command's own, then the group's.
        required = [p for p in [*own, *shared] if p.default is inspect.Parameter.empty]
        optional = [p for p in [*own, *shared] if p.default is not inspect.Parameter.empty]
        parameters = [*required, *optional, *tail]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            values = {f.name: kwargs.pop(f.name) for f in fields(group)}
            command(**kwargs, **{name: group(**values)})

        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run

    return decorate


@dataclass(frozen=True, slots=True)
class Paging:
    """The options of every paged ``list`` command (see :data:`paged`)."""

    limit: LimitOpt = None
    page_token: PageTokenOpt = None
    all_pages: AllOpt = False

    def print(
        self,
        ctx: typer.Context,
        fetch: Callable[[RegistryClient, int | None, str | None], JSON],
        *,
        columns: Sequence[str],
        row: Callable[[JSON], JSON] | None = None,
    ) -> None:
        """Fetch one page with ``fetch(api, limit, page_token)`` or, with ``--all``, every
        page; print it as received (JSON) or as a table of ``columns``, each item first passed
        through ``row`` when given."""
        state = get_state(ctx)
        with client(state) as api:
            page = collect(
                lambda token: fetch(api, self.limit, token), self.page_token, self.all_pages
            )
        if row is not None and not state.json:
            page = {**page, "items": [row(item) for item in page.get("items", [])]}
        emit_page(state, page, columns)


#: Gives a command ``--limit``, ``--page-token`` and ``--all`` as one ``paging: Paging``.
paged = option_group(Paging, "paging")


def list_command(
    app: typer.Typer,
    help_: str,
    fetch: Callable[..., JSON],
    *,
    columns: Sequence[str],
    row: Callable[[JSON], JSON] | None = None,
) -> None:
    """Register a group's plain paged ``list`` command (no options but paging and ``--output``):
    ``fetch(api, limit=..., page_token=...)`` gives one page, printed by :meth:`Paging.print`.
    ``help_`` is the command's help, written like a docstring."""

    @app.command("list", help=inspect.cleandoc(help_))
    @paged
    def list_(ctx: typer.Context, *, paging: Paging, output: OutputOpt = None) -> None:
        paging.print(
            ctx,
            lambda api, limit, token: fetch(api, limit=limit, page_token=token),
            columns=columns,
            row=row,
        )


def parse_parent(value: str) -> JSON:
    """``REF:RELATION`` → ``{"ref", "relation"}``, split on the LAST ``:`` (a REF may hold
    ``sha256:<hex>``)."""
    ref, sep, relation = value.rpartition(":")
    if not sep or not ref or ref.endswith("sha256") or not _RELATION.fullmatch(relation):
        raise typer.BadParameter(
            f"{value!r}: expected REF:RELATION, e.g. acme/bot@v3:continued_from",
            param_hint="--parent",
        )
    return {"ref": ref, "relation": relation}


def parse_dataset(value: str) -> JSON:
    """``NAME=DIGEST`` → ``{"name", "digest"}``."""
    name, sep, digest = value.partition("=")
    if not sep or not name or not digest:
        raise typer.BadParameter(f"{value!r}: expected NAME=sha256:<hex>", param_hint="--dataset")
    return {"name": name, "digest": digest}


def parse_base(value: str, hint: str = "--base") -> tuple[str, str]:
    """``NAME@REVISION`` (NAME may hold a ``/``) → (name, revision)."""
    name, sep, revision = value.rpartition("@")
    if not sep or not name or not revision:
        raise typer.BadParameter(f"{value!r}: expected NAME@REVISION", param_hint=hint)
    return name, revision


def parse_adapter(value: str) -> tuple[str, str]:
    """``NS/NAME`` → (namespace, name)."""
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name or "@" in value:
        raise typer.BadParameter(f"{value!r}: expected NS/NAME", param_hint="--adapter")
    return namespace, name


def dir_files(directory: Path) -> list[Path]:
    """Every regular file directly in ``directory`` (sorted; symlinks to files count).

    Sub-directories and other entries are skipped with a note on stderr: they are never sent.
    """
    files: list[Path] = []
    for entry in sorted(directory.iterdir()):
        if entry.is_file():
            files.append(entry)
        else:
            note(f"note: skipping {entry.name!s} (not a regular file)")
    return files


def version_body(
    *,
    base: str,
    description: str | None,
    tags: list[str] | None,
    datasets: list[str] | None,
    parents: list[str] | None,
    git_commit: str | None,
    mlflow_run: str | None,
    training_base_dtype: str | None,
    quantization: str | None,
    trained_on: str | None = None,
) -> JSON:
    """The metadata part of ``POST .../versions`` from the shared push / register flags
    (``trained_on``: a quantized base revision, sent as a ``trained_on`` parent)."""
    parse_base(base)
    declared = [parse_parent(p) for p in parents or []]
    if trained_on is not None:
        parse_base(trained_on, "--trained-on")
        declared.append({"ref": trained_on, "relation": "trained_on", "kind": "base_model_version"})
    body: JSON = {
        "base": base,
        "description": description or "",
        "tags": list(tags or []),
        "datasets": [parse_dataset(d) for d in datasets or []],
        "parents": declared,
    }
    optional = {
        "git_commit": git_commit,
        "mlflow_run_id": mlflow_run,
        "training_base_dtype": training_base_dtype,
        "quantization": quantization,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    return body


def lineage_table(result: JSON) -> str:
    """The edges of a ``lineage`` answer as a table, base model versions marked."""
    rows = [
        {**e, "child": _node(e, "child"), "parent": _node(e, "parent")}
        for e in result.get("edges", [])
    ]
    return render_table(rows, ["depth", "child", "relation", "parent"])


def _node(edge: JSON, end: str) -> str:
    suffix = " (base)" if edge.get(f"{end}_kind") == "base_model_version" else ""
    return f"{edge.get(end)}{suffix}"


def short_digest(digest: Any) -> str:
    text = str(digest or "")
    return text[:19] if text.startswith("sha256:") else text[:12]


def percent(share_bp: Any) -> str:
    """Basis points as a percentage (``1250`` → ``12.5 %``)."""
    if not isinstance(share_bp, int):
        return "-"
    return f"{share_bp / 100:g} %"
