"""``tokens``: mint, list and revoke API tokens."""

from __future__ import annotations

from typing import Annotated

import typer

from registry.cli._common import Paging, client, command_group, paged
from registry.cli._output import OutputOpt, emit, get_state, note

app = command_group("API tokens: mint (shown once), list, revoke.")

_COLUMNS = ["id", "principal", "name", "scopes", "expires_at", "revoked_at", "created_at"]

PrincipalOpt = Annotated[
    str | None,
    typer.Option(
        "--principal",
        metavar="NAME",
        help="Owner of the tokens (default: you).",
        show_default=False,
    ),
]


@app.command("create")
def create(
    ctx: typer.Context,
    principal: PrincipalOpt = None,
    name: Annotated[str, typer.Option("--name", help="Label, e.g. ci-nightly.")] = "",
    ttl_days: Annotated[
        int | None,
        typer.Option(
            "--ttl-days",
            min=1,
            max=366,
            help="Lifetime in days (default: 90, or the rest of your token's lifetime if "
            "shorter). Longer than your own token is refused (exit 3, token_exceeds_parent).",
            show_default=False,
        ),
    ] = None,
    no_expiry: Annotated[
        bool,
        typer.Option(
            "--no-expiry",
            help="A token that never expires (refused unless your own token never expires).",
        ),
    ] = False,
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            "--scope",
            metavar="ACTION",
            help="Restrict the token to this action (repeatable; default: your token's "
            "scopes). An action your token does not hold is refused (exit 3).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Mint an API token for yourself or (admin) for another principal. The secret is shown
    once. The new token never exceeds the token you call with: at most its scopes, expiring no
    later than it.

    JSON: {"id", "principal", "name", "scopes", "expires_at", "revoked_at", "created_at",
    "token"}. Exit 2 (--ttl-days with --no-expiry), 3 (policy_denied, token_exceeds_parent),
    4 (principal_not_found).
    """
    if no_expiry and ttl_days is not None:
        raise typer.BadParameter(
            "give --ttl-days or --no-expiry, not both", param_hint="--ttl-days"
        )
    state = get_state(ctx)
    with client(state) as api:
        issued = api.create_token(
            principal=principal,
            name=name,
            ttl_days=ttl_days,
            no_expiry=no_expiry,
            scopes=scopes or None,
        )
    if not state.json:
        note(
            f"token {issued['id']} for {issued['principal']} "
            f"(expires {issued.get('expires_at') or 'never'}); it is shown only once"
        )
    emit(state, issued, lambda: str(issued["token"]))


@app.command("list")
@paged
def list_(
    ctx: typer.Context,
    principal: PrincipalOpt = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """List a principal's tokens, newest first (never the secrets).

    JSON: {"items": [{"id", "principal", "name", "scopes", "expires_at", "revoked_at",
    "created_at"}, ...], "next_page_token"}. Exit 3 (policy_denied), 4 (principal_not_found).
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.list_tokens(
            principal=principal, limit=limit, page_token=token
        ),
        columns=_COLUMNS,
    )


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    token_id: Annotated[str, typer.Argument(metavar="ID", help="Token id (from tokens list).")],
    output: OutputOpt = None,
) -> None:
    """Revoke a token (yours, or any as admin).

    JSON: the token record with "revoked_at" set. Exit 4 (token_not_found), 6 (malformed id).
    """
    state = get_state(ctx)
    with client(state) as api:
        revoked = api.revoke_token(token_id)
    emit(state, revoked, lambda: f"revoked token {revoked['id']} of {revoked['principal']}")
