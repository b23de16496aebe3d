"""``deployments experiment``: the A/B readout of a revision, and the ``--stats`` file a serving
report may carry. Registered on the ``deployments`` group by :mod:`registry.cli.deployments`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli._common import DeploymentArg, client
from registry.cli._output import OutputOpt, emit, get_state, render_record, render_table

MAX_STATS_BYTES = 64 * 1024

StatsOpt = Annotated[
    Path | None,
    typer.Option(
        "--stats",
        metavar="FILE",
        exists=True,
        dir_okay=False,
        help='Experiment statistics (JSON: {"source", "units", "metrics": {NAME: {"kind": '
        '"binary"|"ratio", ...}}}), cumulative since the revision started; '
        "docs/experiments.md.",
        show_default=False,
    ),
]


def read_stats(path: Path | None) -> dict[str, Any]:
    """The ``units``/``metrics``/``source`` of a report from a ``--stats`` file ({} without)."""
    if path is None:
        return {}
    if path.stat().st_size > MAX_STATS_BYTES:
        raise typer.BadParameter(f"larger than {MAX_STATS_BYTES} bytes", param_hint="--stats")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise typer.BadParameter(f"not JSON: {exc}", param_hint="--stats") from exc
    allowed = {"source", "units", "metrics"}
    if not isinstance(doc, dict) or not set(doc) <= allowed:
        raise typer.BadParameter(
            "a JSON object with source, units and metrics", param_hint="--stats"
        )
    return doc


def experiment_lines(name: Any, plan: dict[str, Any]) -> list[str]:
    """An experiment plan's mode, metrics and the sample size per arm it needs."""
    from registry.canary.plans import plan_from_mapping
    from registry.errors import InvalidPolicy

    if "experiment" not in plan:
        return []
    try:
        parsed = plan_from_mapping(str(name or "plan"), plan, stored=True)
    except InvalidPolicy:
        return ["  experiment: (does not parse)"]
    experiment = parsed.experiment
    assert experiment is not None
    lines = []
    if parsed.mode == "experiment":
        lines.append("  mode:      experiment: the split is held, never progressed by the "
                     "controller; a person ships or drops the candidate")  # fmt: skip
    for m in experiment.metrics:
        target = f"MDE {m.mde:.4g}" if m.role == "primary" else f"margin {m.margin:.4g}"
        lines.append(
            f"  metric:    {m.name} ({m.kind}, {m.role}, {m.direction}, {target} relative)"
        )
    share = parsed.steps[0].share_bp / 10_000
    planned = experiment.planned_units_per_arm(share if share < 1 else 0.5)
    lines.append(
        f"  testing:   alpha {experiment.alpha:g}, power {experiment.power:g}, "
        f"sample size {planned if planned is not None else '-'} units per arm"
    )
    return lines


def _number(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _interval(value: Any, relative: bool = False) -> str:
    if not isinstance(value, dict):
        return "-"
    low, high = value.get("low"), value.get("high")
    scale = 100.0 if relative else 1.0
    unit = " %" if relative else ""

    def bound(x: Any, inf: str) -> str:
        return inf if x is None else f"{x * scale:.4g}"

    return f"[{bound(low, '-inf')}, {bound(high, 'inf')}]{unit}"


def _srm_note(srm: dict[str, Any]) -> str:
    if srm.get("flagged"):
        return " FLAGGED: the split the units saw is not the configured one; fix it first"
    return " ok"


def render_readout(readout: dict[str, Any]) -> str:
    """The readout as text: one row per metric, then the SRM check and the decision."""
    rows = []
    for m in readout.get("metrics", []):
        units = m.get("units") or {}
        rows.append(
            {
                "metric": m.get("name"),
                "role": m.get("role"),
                "stable": _number(m.get("control_mean")),
                "candidate": _number(m.get("treatment_mean")),
                "diff": _number(m.get("abs_diff")),
                "rel": "-" if m.get("rel_diff") is None else f"{m['rel_diff'] * 100:+.2f} %",
                "always-valid CI": _interval(m.get("sequential")),
                "p (always valid)": _number((m.get("sequential") or {}).get("p_value")),
                "units": f"{units.get('stable', 0)}/{units.get('candidate', 0)}",
                "decision": m.get("decision"),
            }
        )
    columns = ["metric", "role", "stable", "candidate", "diff", "rel", "always-valid CI"]
    columns += ["p (always valid)", "units", "decision"]
    srm = readout.get("srm") or {}
    head = render_record(
        {
            "deployment": readout.get("deployment"),
            "revision": readout.get("revision"),
            "plan": f"{readout.get('plan')} ({readout.get('mode')})",
            "planned units/arm": readout.get("planned_units_per_arm"),
            "srm": f"p = {_number(srm.get('p_value'))}{_srm_note(srm)}",
            "decision": f"{readout.get('decision')} ({readout.get('reason')})",
        }
    )
    return head + "\n\n" + render_table(rows, columns)


def experiment(
    ctx: typer.Context,
    name: DeploymentArg,
    revision: Annotated[
        int | None,
        typer.Option(
            "--revision",
            metavar="N",
            min=1,
            help="Default: the current revision.",
            show_default=False,
        ),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """The A/B readout of a revision under its rollout plan's experiment: per metric the arm
    means, the difference, an always-valid (mSPRT) confidence interval and p-value and a
    decision (better, worse, within_margin, inconclusive); the sample-ratio-mismatch check;
    the planned sample size per arm; the overall decision. Decide with `deployments rollout
    --to-share 100` (ship) or `deployments rollback` (drop).

    JSON: {"deployment", "revision", "plan", "mode", "planned_units_per_arm", "arms",
    "metrics": [...], "srm": {...}, "decision", "reason", ...}. Exit 4 (deployment_not_found,
    revision_not_found), 5 (no_experiment).
    """
    state = get_state(ctx)
    with client(state) as api:
        readout = api.experiment(name, revision=revision)
    emit(state, readout, lambda: render_readout(readout))
