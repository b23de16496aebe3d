"""``deployments resolve | routing-table | report | decisions``: what serving asks (which version
serves a key, the whole routing table), what it reports back (traffic per arm and window), and
what the rollout controller decided from those reports. Registered on the ``deployments`` group
by :mod:`registry.cli.deployments`."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated, Any

import typer

from registry.cli._common import DeploymentArg, Paging, client, paged, percent, short_digest
from registry.cli._output import OutputOpt, emit, get_state, render_record
from registry.cli.deployments_experiment import StatsOpt, read_stats

_DECISION_COLUMNS = ["decided_at", "action", "reason", "step_index", "revision"]


class Arm(StrEnum):
    stable = "stable"
    candidate = "candidate"


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


def resolve(
    ctx: typer.Context,
    name: DeploymentArg,
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


def routing_table(ctx: typer.Context, name: DeploymentArg, output: OutputOpt = None) -> None:
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


def report(
    ctx: typer.Context,
    name: DeploymentArg,
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
    stats: StatsOpt = None,
    output: OutputOpt = None,
) -> None:
    """Report what serving saw for one arm of a revision over a window (the rollout
    controller's evidence); --stats adds the experiment statistics (A/B readout).

    JSON: {"id", "deployment", "revision", "arm", "version", "window_start", "window_end",
    "requests", "errors"}. Exit 3 (policy_denied), 4 (deployment_not_found), 6 (invalid_report:
    errors > requests, a future or reversed window, an unknown revision or arm; context.reason
    says which).
    """
    parsed = dict(parse_score(s) for s in scores or [])
    experiment_stats = read_stats(stats)
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
            units=experiment_stats.get("units"),
            metrics=experiment_stats.get("metrics"),
            source=experiment_stats.get("source"),
        )
    emit(
        state,
        made,
        lambda: (
            f"report {made['id']} recorded: revision {made['revision']} {made['arm']} "
            f"(v{made['version']}), {made['requests']} requests, {made['errors']} errors"
        ),
    )


@paged
def decisions(
    ctx: typer.Context,
    name: DeploymentArg,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """The rollout controller's decisions, newest first, with their evidence.

    JSON: {"items": [{"id", "decided_at", "action", "reason", "step_index", "revision",
    "evidence"}, ...], "next_page_token"}. Exit 4 (deployment_not_found).
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.deployment_decisions(name, limit=limit, page_token=token),
        columns=_DECISION_COLUMNS,
    )
