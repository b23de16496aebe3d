"""``promotions``: request that a version become a deployment's stable version; approve (four
eyes, bound to the rollout plan shown), reject, cancel, list and show requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli._common import Paging, client, command_group, flag, paged
from registry.cli._output import (
    EXIT_CONFLICT,
    OutputOpt,
    dumps,
    emit,
    exit_with_error,
    get_state,
    note,
    render_record,
)
from registry.cli.deployments_experiment import experiment_lines

app = command_group("Promotion requests: gates, four-eyes approvals, reject, cancel.")

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
    "plan_digest",
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


def _seconds(value: object) -> str:
    return f"{value:g} s" if isinstance(value, int | float) else str(value)


def _rule_line(rule: dict[str, Any]) -> str:
    """One analysis rule in words, e.g. ``error_rate vs stable: <= stable x 1.5 + 0.01``."""
    metric, hib = rule.get("metric"), rule.get("higher_is_better")
    need = f"over >= {rule.get('min_requests')} candidate requests"
    if rule.get("compare") == "stable":
        ratio = rule.get("min_ratio" if hib else "max_ratio", 1)
        delta = rule.get("max_delta")
        sign, bound = (">=", "-") if hib else ("<=", "+")
        limit = f"stable x {ratio:g}" + (f" {bound} {delta:g}" if delta else "")
        stable = rule.get("min_stable_requests", rule.get("min_requests"))
        return f"{metric} vs stable: {sign} {limit} ({need}, >= {stable} stable)"
    bounds = [f"<= {rule['max']:g}"] if rule.get("max") is not None else []
    bounds += [f">= {rule['min']:g}"] if rule.get("min") is not None else []
    return f"{metric} absolute: {' and '.join(bounds)} ({need})"


def plan_lines(promotion: dict[str, Any]) -> str:
    """The whole rollout plan an approval starts, as the approver must see it."""
    plan = promotion.get("plan_spec")
    if not isinstance(plan, dict):
        return "  (the plan is no longer defined by the active policy: request again)"
    steps = " -> ".join(
        f"{s.get('share'):g} % for >= {_seconds(s.get('min_dwell_s'))}"
        for s in plan.get("steps") or []
    )
    lines = [f"  steps:     {steps}"]
    rules = plan.get("analysis") or []
    lines += [f"  rule:      {_rule_line(r)}" for r in rules] or ["  rule:      (none)"]
    lines.append(
        f"  rollback:  after {plan.get('failure_limit')} failing analysis(es) in a row; "
        f"inconclusive after the dwell: {plan.get('on_inconclusive')}"
    )
    return "\n".join(lines + experiment_lines(promotion.get("plan"), plan))


def render_promotion(promotion: dict[str, Any]) -> str:
    record = {**promotion, "approvals": _approvers(promotion)}
    return (
        f"{render_record(record, _RECORD_KEYS)}\ngates:\n{gate_lines(promotion)}"
        f"\nrollout plan {promotion.get('plan')} ({promotion.get('plan_digest')}):\n"
        f"{plan_lines(promotion)}"
    )


def _plan_file(path: Path) -> dict[str, Any]:
    """A plan of the request's own from a YAML (or JSON) file: one plan, rollout.yaml's shape."""
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise typer.BadParameter(f"{path}: {exc}", param_hint="--plan-file") from exc
    if not isinstance(loaded, dict):
        raise typer.BadParameter(
            f"{path}: expected one plan (steps, analysis, ...)", param_hint="--plan-file"
        )
    return loaded


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
            "version (default: the policy's default_plan); with --plan-file, that plan's name.",
            show_default=False,
        ),
    ] = None,
    plan_file: Annotated[
        Path | None,
        typer.Option(
            "--plan-file",
            metavar="FILE",
            help="A rollout plan of this request's own (YAML: steps, analysis, failure_limit, "
            "on_inconclusive, as in rollout.yaml); it must meet the policy's floor.",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Request that REF become the deployment's stable version. Gates are computed now, and the
    rollout plan is stored in full with the request (approvers see it and its digest).
    Once approved: with no stable version yet, REF becomes it at once; otherwise REF becomes
    the candidate at the plan's first step (state "rolling_out").

    JSON: {"id", "state", "deployment", "ref", "gates": [{"name", "passed", "reason",
    "detail"}], "gates_passed", "required_approvals", "approvals", "policy_digest", ...}.
    State "pending" (exit 0) waits for approvals. State "blocked" means gates failed: the same
    object is printed with "error": "gates_failed", "detail" and "context" added, and the
    exit code is 5. Other errors: 3 (policy_denied), 4 (deployment / version not found),
    5 (invalid_transition), 6 (invalid input; plan_below_floor: the plan misses the policy's
    floor, "context.failures" lists each check).
    """
    state = get_state(ctx)
    spec = _plan_file(plan_file) if plan_file is not None else None
    with client(state) as api:
        promotion = api.request_promotion(
            ref,
            deployment=deployment,
            reason=reason,
            override_reason=override_reason,
            plan=plan,
            plan_spec=spec,
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
    plan_digest: Annotated[
        str | None,
        typer.Option(
            "--plan-digest",
            metavar="DIGEST",
            help="The rollout plan digest you approve, as `promotions show ID` printed it "
            "(default: the plan the request carries now, read just before approving).",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Approve a pending request (never your own request or a version you registered). The
    gates run again now, against the deployment's stable version now. With enough approvals:
    no stable version yet → the version becomes stable at once ("completed"); otherwise its
    canary starts at the first step of the request's rollout plan ("rolling_out"). The approval
    binds that plan's digest (see `promotions show ID`).

    JSON: the promotion ("state": "pending", "completed" or "rolling_out"; "revision" once
    applied).
    Exit 3 (separation_of_duties, policy_denied), 4 (promotion_not_found),
    5 (promotion_state_conflict; gates_failed: a gate fails now; stable_changed: a new stable
    version overtook the request, which expired; plan_digest_mismatch: the request's plan is
    not the one named), 6 (plan_below_floor: the plan misses the policy's floor now).
    """
    state = get_state(ctx)
    with client(state) as api:
        if plan_digest is None:
            shown = api.get_promotion(promotion_id)
            plan_digest = shown.get("plan_digest")
            if plan_digest is None:
                exit_with_error(
                    state,
                    "invalid_transition",
                    "the request's rollout plan is no longer defined; request again",
                    {"id": promotion_id, "plan": shown.get("plan")},
                )
            note(f"approving rollout plan {shown.get('plan')} ({plan_digest})")
        promotion = api.approve_promotion(promotion_id, comment=comment, plan_digest=plan_digest)
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
@paged
def list_(
    ctx: typer.Context,
    deployment: Annotated[str | None, flag("--deployment", "Only this deployment.", "D")] = None,
    state_filter: Annotated[
        str | None,
        flag(
            "--state",
            "Only this state (pending, blocked, approved, rejected, cancelled, expired, ...).",
            "S",
        ),
    ] = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """List promotion requests newest first, in deployments you may read.

    JSON: {"items": [promotion, ...], "next_page_token"}. Exit 4 (deployment_not_found).
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.list_promotions(
            deployment=deployment, state=state_filter, limit=limit, page_token=token
        ),
        columns=_LIST_COLUMNS,
        row=lambda promotion: {**promotion, "approvals": _approvers(promotion)},
    )


@app.command("show")
def show(ctx: typer.Context, promotion_id: IdArg, output: OutputOpt = None) -> None:
    """One promotion request with its gates, approvals and the whole rollout plan an approval
    starts, with the plan's digest (what `promotions approve` binds).

    JSON: the promotion ("plan_spec": the plan, "plan_digest"). Exit 4 (promotion_not_found).
    """
    state = get_state(ctx)
    with client(state) as api:
        promotion = api.get_promotion(promotion_id)
    emit(state, promotion, lambda: render_promotion(promotion))
