"""``deployments``: named serving targets, their current state and revision history."""

from __future__ import annotations

import math
from enum import StrEnum
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
    short_digest,
)
from registry.cli._output import (
    OutputOpt,
    emit,
    emit_page,
    get_state,
    note,
    render_record,
)

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
    "share",
    "reason",
    "detail",
    "promotion_id",
    "effective_at",
]
_DECISION_COLUMNS = ["decided_at", "action", "reason", "step_index", "revision"]

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


class Arm(StrEnum):
    stable = "stable"
    candidate = "candidate"


def percent(share_bp: Any) -> str:
    """Basis points as a percentage (``1250`` → ``12.5 %``)."""
    if not isinstance(share_bp, int):
        return "-"
    return f"{share_bp / 100:g} %"


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


def parse_score(value: str) -> tuple[str, float]:
    """``NAME=VALUE`` → (name, value)."""
    name, sep, raw = value.partition("=")
    try:
        number = float(raw)
    except ValueError:
        number = math.nan
    if not sep or not name or not math.isfinite(number):
        raise typer.BadParameter(f"{value!r}: expected NAME=NUMBER", param_hint="--score")
    return name, number


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
    emit_page(state, rows, ["name", "adapter", "base", "revision", "stable", "candidate", "share"])


@app.command("status")
def status(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """Current state: the newest revision, its stable and candidate versions and the candidate's
    traffic share in basis points (the revision is what --expected-revision wants).

    JSON: {"name", "namespace", "adapter", "base", "revision", "stable": {"version", "digest",
    "ref", "state"} | null, "candidate": {...} | null, "share_bp", "created_at"}.
    Exit 4 (deployment_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        dep = api.get_deployment(name)
    emit(state, dep, lambda: render_deployment(dep))


@app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="ISO",
            help="Revisions effective from this time on (inclusive), with a zone "
            "(2026-11-25T10:00:00Z).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="ISO",
            help="Revisions effective before this time (exclusive), with a zone.",
            show_default=False,
        ),
    ] = None,
    limit: LimitOpt = None,
    page_token: PageTokenOpt = None,
    all_pages: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """Revisions of a deployment, newest first.

    JSON: {"items": [{"revision", "stable_version", "candidate_version", "share_bp", "salt",
    "hash_spec", "reason", "detail", "promotion_id", "effective_at"}], "next_page_token"}.
    Exit 4 (deployment_not_found), 6 (a time without a zone, a bad page token).
    """
    state = get_state(ctx)
    with client(state) as api:
        page = collect(
            lambda token: api.deployment_history(
                name, since=since, until=until, limit=limit, page_token=token
            ),
            page_token,
            all_pages,
        )
    if state.json:
        emit(state, page)
        return
    items = [{**r, "share": percent(r.get("share_bp"))} for r in page.get("items", [])]
    emit_page(state, {**page, "items": items}, _HISTORY_COLUMNS)


@app.command("rollout")
def rollout(
    ctx: typer.Context,
    name: NameArg,
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
    state = get_state(ctx)
    with client(state) as api:
        dep = api.rollout(name, share_bp=bp, expected_revision=expected_revision)
    emit(state, dep, lambda: render_deployment(dep))


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: NameArg,
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


@app.command("resolve")
def resolve(
    ctx: typer.Context,
    name: NameArg,
    key: Annotated[
        str,
        typer.Option(
            "--key", metavar="K", help="Routing key (tenant, user): the same key, the same arm."
        ),
    ],
    output: OutputOpt = None,
) -> None:
    """Which adapter version serves KEY now (sticky split; docs/serving.md).

    JSON: {"deployment", "revision", "arm": "stable" | "candidate", "ref", "version", "digest",
    "serving_name", "peft_type", "r", "base", "base_digest", "files": [{"name", "digest",
    "size", "url"}]}. Exit 3 (policy_denied), 4 (deployment_not_found, nothing_served: no stable
    version yet), 6 (a bad key).
    """
    state = get_state(ctx)
    with client(state) as api:
        answer = api.resolve(name, key)
    emit(
        state,
        answer,
        lambda: (
            f"{answer.get('arm')} -> {answer.get('serving_name')}\n"
            + render_record(
                {**answer, "digest": short_digest(answer.get("digest"))},
                ["ref", "digest", "revision", "base", "peft_type", "r"],
            )
        ),
    )


@app.command("routing-table")
def routing_table(ctx: typer.Context, name: NameArg, output: OutputOpt = None) -> None:
    """The current routing table, for resolving keys client-side (registry.client.Router).

    JSON: {"deployment", "revision", "hash_spec", "salt", "share_bp", "base": {"ref",
    "manifest_digest"}, "stable": {"ref", "version", "digest", "serving_name", "peft_type",
    "r"} | null, "candidate": {...} | null, "effective_at"}. Exit 3 (policy_denied), 4
    (deployment_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        table = api.routing_table(name)

    def text() -> str:
        def arm(entry: Any) -> str:
            if not isinstance(entry, dict):
                return "-"
            return f"{entry.get('serving_name')} ({entry.get('ref')})"

        return render_record(
            {
                **table,
                "stable": arm(table.get("stable")),
                "candidate": arm(table.get("candidate")),
                "share": percent(table.get("share_bp")),
            },
            ["deployment", "revision", "stable", "candidate", "share", "salt", "hash_spec"],
        )

    emit(state, table, text)


@app.command("report")
def report(
    ctx: typer.Context,
    name: NameArg,
    revision: Annotated[
        int, typer.Option("--revision", metavar="N", min=1, help="Revision the traffic ran on.")
    ],
    arm: Annotated[Arm, typer.Option("--arm", help="Which arm served it.")],
    requests: Annotated[
        int, typer.Option("--requests", metavar="R", min=0, help="Requests in the window.")
    ],
    errors: Annotated[
        int, typer.Option("--errors", metavar="E", min=0, help="Failed requests among them.")
    ],
    window_start: Annotated[
        str,
        typer.Option("--window-start", metavar="T0", help="Window start, ISO 8601 with a zone."),
    ],
    window_end: Annotated[
        str,
        typer.Option(
            "--window-end", metavar="T1", help="Window end, ISO 8601 with a zone (not future)."
        ),
    ],
    p50_ms: Annotated[
        float | None,
        typer.Option("--p50-ms", min=0, help="Latency p50 in ms.", show_default=False),
    ] = None,
    p95_ms: Annotated[
        float | None,
        typer.Option("--p95-ms", min=0, help="Latency p95 in ms.", show_default=False),
    ] = None,
    scores: Annotated[
        list[str] | None,
        typer.Option(
            "--score",
            metavar="NAME=VALUE",
            help="Online score (repeatable), analysed as score:NAME.",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Report what serving saw for one arm of a revision over a window (the rollout
    controller's evidence).

    JSON: {"id", "deployment", "revision", "arm", "version", "window_start", "window_end",
    "requests", "errors"}. Exit 3 (policy_denied), 4 (deployment_not_found), 6 (invalid_report:
    errors > requests, a future or reversed window, an unknown revision or arm; context.reason
    says which).
    """
    parsed = dict(parse_score(s) for s in scores or [])
    state = get_state(ctx)
    with client(state) as api:
        made = api.report(
            name,
            revision=revision,
            arm=arm.value,
            window_start=window_start,
            window_end=window_end,
            requests=requests,
            errors=errors,
            latency_p50_ms=p50_ms,
            latency_p95_ms=p95_ms,
            scores=parsed,
        )
    emit(
        state,
        made,
        lambda: (
            f"report {made['id']} recorded: revision {made['revision']} {made['arm']} "
            f"(v{made['version']}), {made['requests']} requests, {made['errors']} errors"
        ),
    )


@app.command("decisions")
def decisions(
    ctx: typer.Context,
    name: NameArg,
    limit: LimitOpt = None,
    page_token: PageTokenOpt = None,
    all_pages: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """The rollout controller's decisions, newest first, with their evidence.

    JSON: {"items": [{"id", "decided_at", "action", "reason", "step_index", "revision",
    "evidence"}, ...], "next_page_token"}. Exit 4 (deployment_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        page = collect(
            lambda token: api.deployment_decisions(name, limit=limit, page_token=token),
            page_token,
            all_pages,
        )
    emit_page(state, page, _DECISION_COLUMNS)
