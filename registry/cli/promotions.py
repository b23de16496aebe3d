"""``promotions``: request that a version become a deployment's stable version; approve (four
eyes), reject, cancel, list and show requests."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli._common import AllOpt, LimitOpt, PageTokenOpt, client, collect
from registry.cli._output import (
    EXIT_CONFLICT,
    OutputOpt,
    dumps,
    emit,
    emit_page,
    get_state,
    render_record,
)

app = typer.Typer(
    help="Promotion requests: gates, four-eyes approvals, reject, cancel.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

IdArg = Annotated[str, typer.Argument(metavar="ID", help="Promotion request id.")]

_LIST_COLUMNS = ["id", "state", "deployment", "ref", "gates_passed", "approvals", "created_at"]
_RECORD_KEYS = [
    "id",
    "state",
    "deployment",
    "ref",
    "gates_passed",
    "required_approvals",
    "approvals",
    "revision",
    "plan",
    "reason",
    "override_reason",
    "policy_digest",
    "expires_at",
    "created_at",
    "decided_at",
]


def _approvers(promotion: dict[str, Any]) -> list[str]:
    return [str(a.get("approver")) for a in promotion.get("approvals") or []]


def gate_lines(promotion: dict[str, Any]) -> str:
    """One ``PASS``/``FAIL`` line per gate, with its reason."""
    lines = []
    for gate in promotion.get("gates") or []:
        mark = "PASS" if gate.get("passed") else "FAIL"
        reason = gate.get("reason") or ""
        lines.append(f"  {mark}  {gate.get('name')}" + (f": {reason}" if reason else ""))
        if not gate.get("passed"):
            lines += [f"        {item}" for item in _failure_details(gate.get("detail") or {})]
    return "\n".join(lines) or "  (no gates)"


def _failure_details(detail: dict[str, Any]) -> list[str]:
    """What a failed gate found, one line per finding (regressions, thresholds, missing)."""
    out = []
    for r in detail.get("regressions") or []:
        out.append(
            f"{r.get('suite')}/{r.get('metric')}: candidate {r.get('candidate')} vs stable "
            f"{r.get('stable')} (tolerance {r.get('tolerance')})"
        )
    for t in detail.get("failures") or []:
        bound = f"min {t.get('min')}" if t.get("min") is not None else f"max {t.get('max')}"
        out.append(
            f"{t.get('suite')}/{t.get('metric')}: {t.get('problem')} ({t.get('value')}, {bound})"
        )
    if detail.get("missing"):
        out.append(f"missing: {', '.join(map(str, detail['missing']))}")
    if "count" in detail and "required" in detail:
        out.append(f"{detail['count']} evaluation(s), {detail['required']} required")
    return out


def render_promotion(promotion: dict[str, Any]) -> str:
    record = {**promotion, "approvals": _approvers(promotion)}
    return f"{render_record(record, _RECORD_KEYS)}\ngates:\n{gate_lines(promotion)}"


def _failed(promotion: dict[str, Any]) -> list[str]:
    return [str(g.get("name")) for g in promotion.get("gates") or [] if not g.get("passed")]


@app.command("request")
def request(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="NS/NAME@vN or NS/NAME@sha256:...")],
    deployment: Annotated[
        str, typer.Option("--deployment", metavar="D", help="Target deployment.")
    ],
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why (free text).", show_default=False)
    ] = None,
    override_reason: Annotated[
        str | None,
        typer.Option(
            "--override-reason",
            help="Admin only: request despite failing gates, with this written reason (audited).",
            show_default=False,
        ),
    ] = None,
    plan: Annotated[
        str | None,
        typer.Option(
            "--plan",
            metavar="NAME",
            help="Rollout plan of rollout.yaml used when the deployment already has a stable "
            "version (default: the policy's default_plan).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Request that REF become the deployment's stable version. Gates are computed now.
    Once approved: with no stable version yet, REF becomes it at once; otherwise REF becomes
    the candidate at the plan's first step (state "rolling_out").

    JSON: {"id", "state", "deployment", "ref", "gates": [{"name", "passed", "reason",
    "detail"}], "gates_passed", "required_approvals", "approvals", "policy_digest", ...}.
    State "pending" (exit 0) waits for approvals. State "blocked" means gates failed: the same
    object is printed with "error": "gates_failed", "detail" and "context" added, and the
    exit code is 5. Other errors: 3 (policy_denied), 4 (deployment / version not found),
    5 (invalid_transition), 6 (invalid input).
    """
    state = get_state(ctx)
    with client(state) as api:
        promotion = api.request_promotion(
            ref,
            deployment=deployment,
            reason=reason,
            override_reason=override_reason,
            plan=plan,
        )
    if promotion.get("state") != "blocked":
        emit(state, promotion, lambda: render_promotion(promotion))
        return
    failed = _failed(promotion)
    detail = f"promotion blocked: gate(s) failed: {', '.join(failed) or '?'}"
    if state.json:
        body = {
            **promotion,
            "error": "gates_failed",
            "detail": detail,
            "context": {"id": promotion.get("id"), "failed_gates": failed},
        }
        typer.echo(dumps(body))
    else:
        typer.echo(render_promotion(promotion))
        typer.echo(f"error: gates_failed: {detail}", err=True)
    raise typer.Exit(EXIT_CONFLICT)


@app.command("approve")
def approve(
    ctx: typer.Context,
    promotion_id: IdArg,
    comment: Annotated[
        str, typer.Option("--comment", help="Free text kept with the approval.")
    ] = "",
    output: OutputOpt = None,
) -> None:
    """Approve a pending request (never your own request or a version you registered). With
    enough approvals: no stable version yet → the version becomes stable at once ("completed");
    otherwise its canary starts at the plan's first step ("rolling_out").

    JSON: the promotion ("state": "pending", "completed" or "rolling_out"; "revision" once
    applied).
    Exit 3 (separation_of_duties, policy_denied), 4 (promotion_not_found),
    5 (promotion_state_conflict).
    """
    state = get_state(ctx)
    with client(state) as api:
        promotion = api.approve_promotion(promotion_id, comment=comment)
    emit(state, promotion, lambda: render_promotion(promotion))


@app.command("reject")
def reject(
    ctx: typer.Context,
    promotion_id: IdArg,
    reason: Annotated[str, typer.Option("--reason", help="Why it is rejected (required).")],
    output: OutputOpt = None,
) -> None:
    """Reject a pending or blocked request.

    JSON: the promotion ("state": "rejected"). Exit 3 (policy_denied), 4 (promotion_not_found),
    5 (promotion_state_conflict), 6 (empty reason).
    """
    state = get_state(ctx)
    with client(state) as api:
        promotion = api.reject_promotion(promotion_id, reason=reason)
    emit(state, promotion, lambda: render_promotion(promotion))


@app.command("cancel")
def cancel(ctx: typer.Context, promotion_id: IdArg, output: OutputOpt = None) -> None:
    """Cancel your own pending or blocked request.

    JSON: the promotion ("state": "cancelled"). Exit 3 (policy_denied), 4 (promotion_not_found),
    5 (promotion_state_conflict).
    """
    state = get_state(ctx)
    with client(state) as api:
        promotion = api.cancel_promotion(promotion_id)
    emit(state, promotion, lambda: render_promotion(promotion))


@app.command("list")
def list_(
    ctx: typer.Context,
    deployment: Annotated[
        str | None,
        typer.Option("--deployment", metavar="D", help="Only this deployment.", show_default=False),
    ] = None,
    state_filter: Annotated[
        str | None,
        typer.Option(
            "--state",
            metavar="S",
            help="Only this state (pending, blocked, approved, rejected, cancelled, expired, ...).",
            show_default=False,
        ),
    ] = None,
    limit: LimitOpt = None,
    page_token: PageTokenOpt = None,
    all_pages: AllOpt = False,
    output: OutputOpt = None,
) -> None:
    """List promotion requests newest first, in deployments you may read.

    JSON: {"items": [promotion, ...], "next_page_token"}. Exit 4 (deployment_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        page = collect(
            lambda token: api.list_promotions(
                deployment=deployment, state=state_filter, limit=limit, page_token=token
            ),
            page_token,
            all_pages,
        )
    if state.json:
        emit(state, page)
        return
    items = [{**p, "approvals": _approvers(p)} for p in page.get("items", [])]
    emit_page(state, {**page, "items": items}, _LIST_COLUMNS)


@app.command("show")
def show(ctx: typer.Context, promotion_id: IdArg, output: OutputOpt = None) -> None:
    """One promotion request with its gates and approvals.

    JSON: the promotion. Exit 4 (promotion_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        promotion = api.get_promotion(promotion_id)
    emit(state, promotion, lambda: render_promotion(promotion))
