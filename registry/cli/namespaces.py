"""``namespaces``: create and list the teams / tenants that own adapters."""

from __future__ import annotations

from typing import Annotated

import typer

from registry.cli._common import client, command_group, list_command
from registry.cli._output import OutputOpt, emit, get_state

app = command_group("Namespaces: the teams or tenants that own adapters.")


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


list_command(
    app,
    """List namespaces by name.

    JSON: {"items": [{"name", "description", "created_at"}], "next_page_token"}.
    """,
    lambda api, **page: api.list_namespaces(**page),
    columns=["name", "description", "created_at"],
)
