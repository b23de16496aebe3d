"""``evals``: record evaluation scores of a version, list them, compare two versions."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli._common import Paging, client, command_group, flag, paged
from registry.cli._output import OutputOpt, emit, get_state, render_table

app = command_group(
    "Evaluation scores bound to a version, its base, a suite, a metric and a dataset."
)

RefArg = Annotated[str, typer.Argument(metavar="REF", help="NS/NAME@vN, @sha256:... or @latest.")]

_EVAL_COLUMNS = [
    "suite",
    "metric",
    "value",
    "higher_is_better",
    "dataset_digest",
    "evaluated_on",
    "created_at",
]


@app.command("record")
def record(
    ctx: typer.Context,
    ref: RefArg,
    suite: Annotated[str, typer.Option(help="Evaluation suite, e.g. mmlu or support-regress.")],
    metric: Annotated[str, typer.Option(help="Metric name, e.g. accuracy.")],
    value: Annotated[float, typer.Option(help="Score (finite).")],
    dataset_digest: Annotated[
        str | None,
        typer.Option(
            "--dataset-digest", help="sha256:<hex> of the eval dataset.", show_default=False
        ),
    ] = None,
    lower_is_better: Annotated[
        bool, typer.Option("--lower-is-better", help="Smaller values are better (loss, ppl).")
    ] = False,
    harness_version: Annotated[
        str | None, flag("--harness-version", "Eval harness version.")
    ] = None,
    source: Annotated[
        str | None, flag("--source", "Where the score comes from (e.g. an MLflow run).")
    ] = None,
    evaluated_on: Annotated[
        str | None, flag("--evaluated-on", "Base view the eval ran on, e.g. bf16 or nf4.")
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Record a score for a version.

    JSON: {"id", "ref", "base", "suite", "metric", "value", "higher_is_better", ...}.
    Exit 4 (version_not_found), 6 (invalid input).
    """
    state = get_state(ctx)
    body: dict[str, Any] = {
        "suite": suite,
        "metric": metric,
        "value": value,
        "higher_is_better": not lower_is_better,
    }
    optional = {
        "dataset_digest": dataset_digest,
        "harness_version": harness_version,
        "source": source,
        "evaluated_on": evaluated_on,
    }
    body.update({k: v for k, v in optional.items() if v is not None})
    with client(state) as api:
        recorded = api.record_evaluation(ref, body)
    emit(
        state,
        recorded,
        lambda: (
            f"recorded {recorded['suite']}/{recorded['metric']} = {recorded['value']} "
            f"for {recorded['ref']}"
        ),
    )


@app.command("list")
@paged
def list_(
    ctx: typer.Context,
    ref: RefArg,
    suite: Annotated[str | None, typer.Option(help="Only this suite.", show_default=False)] = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """List the scores of a version, oldest first.

    JSON: {"items": [evaluation, ...], "next_page_token"}.
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.list_evaluations(
            ref, suite=suite, limit=limit, page_token=token
        ),
        columns=_EVAL_COLUMNS,
    )


@app.command("compare")
def compare(
    ctx: typer.Context,
    ref_a: Annotated[str, typer.Argument(metavar="REF1", help="First version (a).")],
    ref_b: Annotated[str, typer.Argument(metavar="REF2", help="Second version (b).")],
    output: OutputOpt = None,
) -> None:
    """Scores of two versions side by side on the same suite, metric and dataset digest.

    JSON: {"a", "b", "rows": [{"suite", "metric", "dataset_digest", "higher_is_better", "a",
    "b", "delta", "better"}]}.
    """
    state = get_state(ctx)
    with client(state) as api:
        result = api.compare_evaluations(ref_a, ref_b)
    emit(
        state,
        result,
        lambda: (
            f"a = {result['a']}\nb = {result['b']}\n\n"
            + render_table(
                result.get("rows", []),
                ["suite", "metric", "dataset_digest", "a", "b", "delta", "better"],
            )
        ),
    )
