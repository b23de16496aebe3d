"""``principals``: create, list, disable and enable principals (humans, services); change their
role, namespace memberships and console logins (``logins``)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from registry.cli import principals_logins
from registry.cli._common import command_group, flag, list_command, reply
from registry.cli._output import OutputOpt

app = command_group(
    "Principals: humans and services, their role and namespace memberships (admin)."
)


class Role(StrEnum):
    viewer = "viewer"
    developer = "developer"
    approver = "approver"
    operator = "operator"
    admin = "admin"
    auditor = "auditor"


class Kind(StrEnum):
    human = "human"
    service = "service"


_COLUMNS = ["name", "kind", "role", "namespaces", "ci_identity", "disabled", "created_at"]

NamespacesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--namespace", metavar="NS", help="Namespace membership (repeatable).", show_default=False
    ),
]


@app.command("create")
def create(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Principal name, e.g. alice.")],
    role: Annotated[Role, typer.Option("--role", help="Role granted in member namespaces.")],
    namespaces: NamespacesOpt = None,
    kind: Annotated[Kind, typer.Option("--kind", help="human or service.")] = Kind.human,
    ci_identity: Annotated[
        str | None,
        flag(
            "--ci-identity",
            "The CI login (e.g. GitHub actor) of this human (four-eyes checks).",
            "LOGIN",
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Create a principal (admin).

    JSON: {"id", "name", "kind", "role", "namespaces", "ci_identity", "created_at", "disabled"}.
    Exit 3 (policy_denied), 4 (namespace_not_found), 5 (principal_exists), 6 (invalid input).
    """
    reply(
        ctx,
        lambda api: api.create_principal(
            name, role.value, kind=kind.value, namespaces=namespaces or [], ci_identity=ci_identity
        ),
        lambda created: (
            f"created {created['kind']} principal {created['name']} ({created['role']}) "
            f"in {', '.join(created['namespaces']) or 'no namespace'}"
        ),
    )


list_command(
    app,
    """List principals by name (admin).

    JSON: {"items": [{"id", "name", "kind", "role", "namespaces", "ci_identity", "created_at",
    "disabled"}], "next_page_token"}.
    """,
    lambda api, **page: api.list_principals(**page),
    columns=_COLUMNS,
)


@app.command("grant")
def grant(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Principal name.")],
    namespaces: Annotated[
        list[str],
        typer.Option(
            "--namespace", metavar="NS", help="Namespace to add (repeatable, at least one)."
        ),
    ],
    output: OutputOpt = None,
) -> None:
    """Add namespace memberships to a principal (admin).

    JSON: the principal (with every membership). Exit 4 (principal_not_found,
    namespace_not_found), 3 (policy_denied).
    """
    reply(
        ctx,
        lambda api: api.grant_namespaces(name, namespaces),
        lambda updated: (
            f"{updated['name']} is a member of {', '.join(updated['namespaces']) or '-'}"
        ),
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Principal name.")],
    namespaces: Annotated[
        list[str],
        typer.Option(
            "--namespace", metavar="NS", help="Namespace to remove (repeatable, at least one)."
        ),
    ],
    output: OutputOpt = None,
) -> None:
    """Remove namespace memberships from a principal (admin; one it is no member of is skipped).

    JSON: the principal (with the memberships left). Exit 4 (principal_not_found,
    namespace_not_found), 3 (policy_denied).
    """
    reply(
        ctx,
        lambda api: api.revoke_namespaces(name, namespaces),
        lambda updated: (
            f"{updated['name']} is a member of {', '.join(updated['namespaces']) or '-'}"
        ),
    )


@app.command("set-role")
def set_role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Principal name.")],
    role: Annotated[Role, typer.Option("--role", help="The new role.")],
    output: OutputOpt = None,
) -> None:
    """Give a principal another role (admin); it applies from its next request.

    JSON: the principal. Exit 5 (last_admin: the last enabled admin keeps its role),
    4 (principal_not_found), 3 (policy_denied).
    """
    reply(
        ctx,
        lambda api: api.set_principal_role(name, role.value),
        lambda updated: f"{updated['name']} is now {updated['role']}",
    )


@app.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Principal name.")],
    output: OutputOpt = None,
) -> None:
    """Disable a principal (admin): its tokens are refused at once (kept for `enable`).

    JSON: the principal ("disabled": true). Exit 5 (last_admin: the last enabled admin cannot
    be disabled), 4 (principal_not_found), 3 (policy_denied).
    """
    reply(ctx, lambda api: api.disable_principal(name), lambda p: f"{p['name']} is disabled")


@app.command("enable")
def enable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Principal name.")],
    output: OutputOpt = None,
) -> None:
    """Enable a disabled principal (admin): its unexpired, unrevoked tokens work again.

    JSON: the principal ("disabled": false). Exit 4 (principal_not_found), 3 (policy_denied).
    """
    reply(ctx, lambda api: api.enable_principal(name), lambda p: f"{p['name']} is enabled")


app.add_typer(principals_logins.app, name="logins")
