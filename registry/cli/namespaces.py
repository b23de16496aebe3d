"""``namespaces``: create and list the teams / tenants that own adapters."""

from __future__ import annotations

from typing import Annotated

import typer

from registry.cli._common import AllOpt, LimitOpt, PageTokenOpt, client, collect
from registry.cli._output import OutputOpt, emit, emit_page, get_state

app = typer.Typer(
    help="Namespaces: the teams or tenants that own adapters.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("create")
def create(
    ctx: typer.Context,
    namespace: Annotated[str, typer.Argument(metavar="NS", help="Namespace name, e.g. acme.")],
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    output: OutputOpt = None,
) -> None:
    """Create a namespace.

    JSON: {"name", "description", "created_at"}. Exit 5 (namespace_exists) when it exists,
    6 (invalid_name) for a bad name.
    """
    state = get_state(ctx)
    with client(state) as api:
        created = api.create_namespace(namespace, description)
    emit(state, created, lambda: f"created namespace {created['name']}")


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: LimitOpt = None,
    page_token: PageTokenOpt = None,
    all_pages: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """List namespaces by name.

    JSON: {"items": [{"name", "description", "created_at"}], "next_page_token"}.
    """
    state = get_state(ctx)
    with client(state) as api:
        page = collect(
            lambda token: api.list_namespaces(limit=limit, page_token=token), page_token, all_pages
        )
    emit_page(state, page, ["name", "description", "created_at"])
