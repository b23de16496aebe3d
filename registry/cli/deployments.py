"""``deployments``: named serving targets, their current state and revision history, and the
manual rollout / rollback; the serving-side commands (resolve, routing-table, report, decisions)
are in :mod:`registry.cli.deployments_serving`."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli import deployments_experiment, deployments_mirror, deployments_serving
from registry.cli._common import (
    DeploymentArg,
    Paging,
    client,
    command_group,
    flag,
    list_command,
    paged,
    parse_adapter,
    parse_base,
    percent,
    reply,
    short_digest,
)
from registry.cli._output import OutputOpt, emit, get_state, note, render_record

app = command_group(
    "Deployments: a base model revision + an adapter, rolled out revision by revision."
)

_HISTORY_COLUMNS = [
    "revision",
    "stable_version",
    "candidate_version",
    "share",
    "reason",
    "detail",
    "promotion_id",
    "effective_at",
]

ExpectedRevisionOpt = Annotated[
    int | None,
    typer.Option(
        "--expected-revision",
        metavar="N",
        min=1,
        help="The revision you expect the deployment to be at (compare-and-set: "
        "`deployments status` shows it).",
        show_default=False,
    ),
]


def _version(summary: Any) -> str:
    """``acme/bot@v2 sha256:0123456789ab`` (ref and short digest), ``-`` for none."""
    if not isinstance(summary, dict):
        return "-"
    ref = summary.get("ref") or f"v{summary.get('version')}"
    text = f"{ref} {short_digest(summary.get('digest'))}"
    state = summary.get("state")
    return f"{text} ({state})" if state and state != "validated" else text


def _row(dep: dict[str, Any]) -> dict[str, Any]:
    """A deployment as one table row (versions flattened, share in percent)."""
    return {
        **dep,
        "stable": _version(dep.get("stable")),
        "candidate": _version(dep.get("candidate")),
        "share": percent(dep.get("share_bp")),
    }


_STATUS_KEYS = ["name", "adapter", "base", "revision", "stable", "candidate", "share", "created_at"]


def render_deployment(dep: dict[str, Any]) -> str:
    return render_record(_row(dep), _STATUS_KEYS)


def share_bp(percentage: float) -> int:
    """``--to-share`` in percent (0.01 % resolution) → basis points."""
    value = percentage * 100
    bp = round(value)
    if abs(value - bp) > 1e-6:
        raise typer.BadParameter(
            f"{percentage:g}: the share has a 0.01 % resolution (e.g. 5, 12.5, 0.25)",
            param_hint="--to-share",
        )
    return bp


@app.command("create")
def create(
    ctx: typer.Context,
    name: DeploymentArg,
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
    reply(
        ctx,
        lambda api: api.create_deployment(name, base=base, adapter=adapter),
        lambda created: (
            f"created deployment {created['name']}: {created['adapter']} on {created['base']} "
            f"(revision {created['revision']})"
        ),
    )


list_command(
    app,
    """List the deployments you may read, by name.

    JSON: {"items": [deployment, ...], "next_page_token"}.
    """,
    lambda api, **page: api.list_deployments(**page),
    columns=["name", "adapter", "base", "revision", "stable", "candidate", "share"],
    row=_row,
)


@app.command("status")
def status(ctx: typer.Context, name: DeploymentArg, output: OutputOpt = None) -> None:
    """Current state: the newest revision, its stable and candidate versions and the candidate's
    traffic share in basis points (the revision is what --expected-revision wants).

    JSON: {"name", "namespace", "adapter", "base", "revision", "stable": {"version", "digest",
    "ref", "state"} | null, "candidate": {...} | null, "share_bp", "created_at"}.
    Exit 4 (deployment_not_found).
    """
    reply(ctx, lambda api: api.get_deployment(name), render_deployment)


@app.command("history")
@paged
def history(
    ctx: typer.Context,
    name: DeploymentArg,
    since: Annotated[
        str | None,
        flag(
            "--since",
            "Revisions effective from this time on (inclusive), with a zone "
            "(2026-11-25T10:00:00Z).",
            "ISO",
        ),
    ] = None,
    until: Annotated[
        str | None,
        flag("--until", "Revisions effective before this time (exclusive), with a zone.", "ISO"),
    ] = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """Revisions of a deployment, newest first.

    JSON: {"items": [{"revision", "stable_version", "candidate_version", "share_bp", "salt",
    "hash_spec", "reason", "detail", "promotion_id", "effective_at"}], "next_page_token"}.
    Exit 4 (deployment_not_found), 6 (a time without a zone, a bad page token).
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.deployment_history(
            name, since=since, until=until, limit=limit, page_token=token
        ),
        columns=_HISTORY_COLUMNS,
        row=lambda revision: {**revision, "share": percent(revision.get("share_bp"))},
    )


@app.command("rollout")
def rollout(
    ctx: typer.Context,
    name: DeploymentArg,
    to_share: Annotated[
        float,
        typer.Option(
            "--to-share",
            metavar="P",
            min=0,
            max=100,
            help="The candidate's traffic share in percent (0.01 % resolution: 5, 12.5); "
            "100 completes the rollout (the candidate becomes the stable version).",
        ),
    ],
    expected_revision: ExpectedRevisionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Move the candidate's traffic share by hand: one new revision.

    Compare-and-set: give --expected-revision (the revision of `deployments status`). Without
    it nothing is read on your behalf: the server refuses with precondition_required (exit 5);
    a stale revision is precondition_failed (exit 5, the context has the current "revision").
    Sent once, never retried.

    JSON: the deployment, as `deployments status`. Exit 3 (policy_denied), 4
    (deployment_not_found), 5 (precondition_failed, precondition_required, invalid_transition:
    no candidate to move).
    """
    bp = share_bp(to_share)
    reply(
        ctx,
        lambda api: api.rollout(name, share_bp=bp, expected_revision=expected_revision),
        render_deployment,
    )


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: DeploymentArg,
    to_revision: Annotated[
        int | None,
        typer.Option(
            "--to-revision",
            metavar="N",
            min=1,
            help="Restore revision N's versions and split (refused when one of its versions is "
            "archived or quarantined). Default: drop the candidate, or, with none, return to "
            "the previous stable version.",
            show_default=False,
        ),
    ] = None,
    expected_revision: ExpectedRevisionOpt = None,
    output: OutputOpt = None,
) -> None:
    """Roll back in one command: one new revision.

    Compare-and-set: without --expected-revision the CLI reads the current revision first (GET)
    and sends it as If-Match, so one command is enough in an emergency (a note on stderr says
    which); a change landing in between still makes it fail with precondition_failed (exit 5).
    Sent once, never retried.

    JSON: the deployment, as `deployments status`. Exit 3 (policy_denied), 4
    (deployment_not_found), 5 (precondition_failed, invalid_transition: nothing to roll back,
    or a target version no longer servable).
    """
    state = get_state(ctx)
    with client(state) as api:
        expected = expected_revision
        if expected is None:
            expected = int(api.get_deployment(name)["revision"])
            note(f"note: rolling back from revision {expected} (the current one)")
        dep = api.rollback(name, expected_revision=expected, to_revision=to_revision)
    emit(state, dep, lambda: render_deployment(dep))


app.command("resolve")(deployments_serving.resolve)
app.command("routing-table")(deployments_serving.routing_table)
app.command("report")(deployments_serving.report)
app.command("decisions")(deployments_serving.decisions)
app.command("experiment")(deployments_experiment.experiment)
app.add_typer(deployments_mirror.app, name="mirror")
