"""``publishers``: trusted CI publishers (OIDC) and the CI token exchange."""

from __future__ import annotations

from dataclasses import replace
from enum import StrEnum
from typing import Annotated

import typer

from registry.cli._common import JSON, client, command_group, flag, list_command, reply
from registry.cli._output import OutputOpt, emit, get_state, note

app = command_group(
    "Trusted CI publishers: which CI OIDC identities may act as which service principal."
)


class PublisherKind(StrEnum):
    github = "github"
    gitlab = "gitlab"


_COLUMNS = [
    "name",
    "kind",
    "repository",
    "workflow_ref",
    "ref",
    "environment",
    "principal",
    "namespaces",
]


def _summary(publisher: JSON) -> str:
    """A publisher in one line: who may act as whom."""
    return (
        f"trusted publisher {publisher['name']}: {publisher['repository']} "
        f"({publisher['workflow_ref']}) acts as {publisher['principal']}"
    )


@app.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="Publisher name, e.g. acme-train.")],
    issuer: Annotated[
        str,
        flag("--issuer", "OIDC issuer, e.g. https://token.actions.githubusercontent.com.", "URL"),
    ],
    audience: Annotated[str, flag("--audience", "Expected aud claim.", "AUD")],
    repository: Annotated[str, flag("--repository", "Repository OWNER/REPO.", "OWNER/REPO")],
    owner_id: Annotated[
        str, flag("--owner-id", "Numeric repository owner id (survives renames).", "ID")
    ],
    workflow: Annotated[
        str,
        flag(
            "--workflow", "Workflow path OWNER/REPO/.github/workflows/FILE.yml (no @ref).", "PATH"
        ),
    ],
    principal: Annotated[str, flag("--principal", "Service principal CI acts as.", "NAME")],
    namespaces: Annotated[
        list[str], flag("--namespace", "Namespace CI may write to (repeatable).", "NS")
    ],
    ref: Annotated[str | None, flag("--ref", "Only this git ref, e.g. refs/heads/main.")] = None,
    environment: Annotated[
        str | None, flag("--environment", "Only jobs in this deployment environment.", "ENV")
    ] = None,
    allow_unprotected_ref: Annotated[
        bool,
        typer.Option(
            "--allow-unprotected-ref", help="Accept tokens minted for unprotected refs too."
        ),
    ] = False,
    kind: Annotated[
        PublisherKind, typer.Option("--kind", help="CI provider.")
    ] = PublisherKind.github,
    output: OutputOpt = None,
) -> None:
    """Trust a CI OIDC issuer + audience + claim constraints for a service principal (admin).

    JSON: {"id", "name", "kind", "issuer", "audience", "repository", "repository_owner_id",
    "workflow_ref", "ref", "environment", "require_protected_ref", "principal", "namespaces",
    "created_at"}. Exit 3 (policy_denied), 4 (principal / namespace not found), 5
    (publisher_exists), 6 (invalid input).
    """
    body = {
        "name": name,
        "kind": kind.value,
        "issuer": issuer,
        "audience": audience,
        "repository": repository,
        "repository_owner_id": owner_id,
        "workflow_ref": workflow,
        "ref": ref,
        "environment": environment,
        "require_protected_ref": not allow_unprotected_ref,
        "principal": principal,
        "namespaces": namespaces,
    }
    reply(ctx, lambda api: api.add_publisher(body), _summary)


list_command(
    app,
    """List trusted publishers by name (admin).

    JSON: {"items": [{"id", "name", "kind", "issuer", "audience", "repository",
    "repository_owner_id", "workflow_ref", "ref", "environment", "require_protected_ref",
    "principal", "namespaces", "created_at"}], "next_page_token"}.
    """,
    lambda api, **page: api.list_publishers(**page),
    columns=_COLUMNS,
)


@app.command("exchange")
def exchange(
    ctx: typer.Context,
    oidc_token: Annotated[
        str,
        typer.Option(
            "--oidc-token",
            envvar="REGISTRY_OIDC_TOKEN",
            metavar="JWT",
            help="The CI OIDC token (JWT) to exchange.",
            show_default=False,
        ),
    ],
    output: OutputOpt = None,
) -> None:
    """Exchange a CI OIDC token for a short-lived registry token (the JWT is sent as the bearer
    token; --token is not used).

    JSON: {"token", "expires_at", "principal", "identity"}. Exit 3 (oidc_token_invalid,
    oidc_token_reused), 7 (oidc_provider_unavailable).
    """
    state = get_state(ctx)
    with client(replace(state, token=oidc_token.strip())) as api:
        minted = api.exchange_oidc_token()
    if not state.json:
        note(f"registry token for {minted['principal']}, expires {minted['expires_at']}")
    emit(state, minted, lambda: str(minted["token"]))
