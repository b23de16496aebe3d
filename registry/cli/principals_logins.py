"""``principals logins add|list|remove``: which person at the OpenID Connect issuer signs in to
the web console as which principal (admin)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli._common import command_group, reply
from registry.cli._output import OutputOpt, get_state, note, render_table

if TYPE_CHECKING:
    from registry.client import RegistryClient

app = command_group(
    "Console sign-in through OpenID Connect: link a person at the issuer to a principal (admin)."
)

NameArg = Annotated[str, typer.Argument(metavar="NAME", help="Principal name, e.g. alice.")]
SubjectArg = Annotated[
    str,
    typer.Argument(
        metavar="SUBJECT",
        help="The person's value of the server's subject claim (REGISTRY_CONSOLE_OIDC__"
        "SUBJECT_CLAIM: `sub` by default, or e.g. their verified email).",
    ),
]
IssuerOpt = Annotated[
    str | None,
    typer.Option(
        "--issuer",
        metavar="URL",
        help="The OpenID Connect issuer (default: the one the console signs in with).",
        show_default=False,
    ),
]


@app.command("add")
def add(
    ctx: typer.Context,
    name: NameArg,
    subject: SubjectArg,
    issuer: IssuerOpt = None,
    output: OutputOpt = None,
) -> None:
    """Let SUBJECT sign in to the web console as NAME (audited).

    JSON: {"principal", "issuer", "subject"}. Exit 3 (policy_denied), 4 (principal_not_found),
    5 (console_login_exists: the login is linked, to NAME or another principal), 6 (invalid).
    """
    reply(
        ctx,
        lambda api: api.add_login(name, subject, issuer=issuer),
        lambda made: f"{made['subject']} at {made['issuer']} signs in as {made['principal']}",
    )


@app.command("list")
def list_(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """The logins linked to NAME. JSON: {"items": [{"principal", "issuer", "subject"}]}."""

    def text(found: dict[str, Any]) -> str:
        return render_table(found.get("items", []), ["subject", "issuer"])

    reply(ctx, lambda api: api.list_logins(name), text)


@app.command("remove")
def remove(
    ctx: typer.Context,
    name: NameArg,
    subject: SubjectArg,
    issuer: IssuerOpt = None,
    output: OutputOpt = None,
) -> None:
    """Unlink a login: SUBJECT can no longer sign in as NAME (sessions already open end at
    sign-out or expiry; disable the principal to end them at once).
    Exit 4 (console_login_not_found, principal_not_found)."""

    def call(api: RegistryClient) -> dict[str, str]:
        api.remove_login(name, subject, issuer=issuer)
        return {"removed": subject, "principal": name}

    reply(ctx, call)
    if not get_state(ctx).json:
        note(f"{subject} no longer signs in as {name}")
