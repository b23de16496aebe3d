"""``deployments``: named serving targets, their current state and revision history."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli._common import (
    AllOpt,
    LimitOpt,
    PageTokenOpt,
    client,
    collect,
    parse_adapter,
    parse_base,
)
from registry.cli._output import OutputOpt, emit, emit_page, get_state, render_record

app = typer.Typer(
    help="Deployments: a base model revision + an adapter, rolled out revision by revision.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

NameArg = Annotated[str, typer.Argument(metavar="D", help="Deployment name.")]

_HISTORY_COLUMNS = [
    "revision",
    "stable_version",
    "candidate_version",
    "share_bp",
    "reason",
    "detail",
    "promotion_id",
    "effective_at",
]


def _version(summary: Any) -> str:
    if not isinstance(summary, dict):
        return "-"
    return f"v{summary.get('version')} {summary.get('digest')} ({summary.get('state')})"


def _row(dep: dict[str, Any]) -> dict[str, Any]:
    """A deployment as one table row (versions flattened)."""
    return {
        **dep,
        "stable": _version(dep.get("stable")),
        "candidate": _version(dep.get("candidate")),
    }


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    base: Annotated[str, typer.Option("--base", metavar="NAME@REV", help="Base model revision.")],
    adapter: Annotated[
        str, typer.Option("--adapter", metavar="NS/NAME", help="Adapter served by it.")
    ],
    output: OutputOpt = None,
) -> None:
    """Create a deployment; revision 1 serves nothing until a promotion is approved.

    JSON: {"name", "namespace", "adapter", "base", "revision", "stable", "candidate",
    "share_bp", "created_at"}. Exit 3 (policy_denied), 4 (adapter / base model not found),
    5 (deployment_exists), 6 (invalid name or reference).
    """
    parse_base(base)
    parse_adapter(adapter)
    state = get_state(ctx)
    with client(state) as api:
        created = api.create_deployment(name, base=base, adapter=adapter)
    emit(
        state,
        created,
        lambda: (
            f"created deployment {created['name']}: {created['adapter']} on {created['base']} "
            f"(revision {created['revision']})"
        ),
    )


@app.command("list")
def list_(
    ctx: typer.Context,
    limit: LimitOpt = None,
    page_token: PageTokenOpt = None,
    all_pages: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """List the deployments you may read, by name.

    JSON: {"items": [deployment, ...], "next_page_token"}.
    """
    state = get_state(ctx)
    with client(state) as api:
        page = collect(
            lambda token: api.list_deployments(limit=limit, page_token=token),
            page_token,
            all_pages,
        )
    if state.json:
        emit(state, page)
        return
    rows = {**page, "items": [_row(d) for d in page.get("items", [])]}
    emit_page(
        state, rows, ["name", "adapter", "base", "revision", "stable", "candidate", "share_bp"]
    )


@app.command("status")
def status(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """Current state: the newest revision, its stable and candidate versions and the candidate's
    traffic share in basis points.

    JSON: {"name", "namespace", "adapter", "base", "revision", "stable": {"version", "digest",
    "ref", "state"} | null, "candidate": {...} | null, "share_bp", "created_at"}.
    Exit 4 (deployment_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        dep = api.get_deployment(name)
    emit(
        state,
        dep,
        lambda: render_record(
            _row(dep),
            [
                "name",
                "adapter",
                "base",
                "revision",
                "stable",
                "candidate",
                "share_bp",
                "created_at",
            ],
        ),
    )


@app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    limit: LimitOpt = None,
    page_token: PageTokenOpt = None,
    all_pages: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """Revisions of a deployment, newest first.

    JSON: {"items": [{"revision", "stable_version", "candidate_version", "share_bp", "salt",
    "hash_spec", "reason", "detail", "promotion_id", "effective_at"}], "next_page_token"}.
    Exit 4 (deployment_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        page = collect(
            lambda token: api.deployment_history(name, limit=limit, page_token=token),
            page_token,
            all_pages,
        )
    emit_page(state, page, _HISTORY_COLUMNS)
