"""``adapters merge | compose | aggregate``: adapter maths run here, on pulled inputs, the result
written to a directory or registered with its lineage. Registered on the ``adapters`` group by
:mod:`registry.cli.adapters`.

The computation needs torch (``pip install 'adapter-registry[maths]'``); without it the
commands exit 2 with ``maths_unavailable`` before downloading anything.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli._common import (
    base_dir_option,
    client,
    flag,
    option_group,
    parse_adapter,
    parse_base,
)
from registry.cli._output import OutputOpt, emit, get_state, render_record

if TYPE_CHECKING:
    from registry.client import RegistryClient

#: Bounds of ``--from REF=WEIGHT`` (a compose coefficient, negative to subtract a task) and of
#: ``--site REF=SAMPLES`` (a positive sample count).
MAX_ABS_WEIGHT = 1000.0
MAX_SAMPLES = 10**12


class Dtype(StrEnum):
    auto = "auto"
    float32 = "float32"
    bfloat16 = "bfloat16"
    float16 = "float16"


class MajoritySign(StrEnum):
    total = "total"
    frequency = "frequency"


class AggregateMethod(StrEnum):
    stack = "stack"
    fedavg = "fedavg"


class Robust(StrEnum):
    none = "none"
    clip = "clip"
    trimmed_mean = "trimmed_mean"
    median = "median"


def parse_weighted(value: str, hint: str, *, samples: bool = False) -> tuple[str, float]:
    """``REF=NUMBER`` → (REF, NUMBER), split on the LAST ``=`` (a REF may hold
    ``@sha256:<hex>``). A weight is finite with ``|w| <= MAX_ABS_WEIGHT``; a sample count
    (``samples``) is a whole number in ``1..MAX_SAMPLES``."""
    ref, sep, number = value.rpartition("=")
    expected = "REF=SAMPLES (a whole number)" if samples else "REF=WEIGHT"
    if not sep or not ref or not number or "/" not in ref.partition("@")[0]:
        raise typer.BadParameter(f"{value!r}: expected {expected}", param_hint=hint)
    try:
        parsed = int(number) if samples else float(number)
    except ValueError:
        raise typer.BadParameter(f"{value!r}: expected {expected}", param_hint=hint) from None
    if samples and not 1 <= parsed <= MAX_SAMPLES:
        raise typer.BadParameter(f"{value!r}: samples must be 1..{MAX_SAMPLES}", param_hint=hint)
    if not samples and not (math.isfinite(parsed) and abs(parsed) <= MAX_ABS_WEIGHT):
        raise typer.BadParameter(
            f"{value!r}: weight must be finite, at most {MAX_ABS_WEIGHT:g} in size", param_hint=hint
        )
    return ref, float(parsed)


#: ``progress(done, total)`` of a computation, or None to draw nothing.
Counter = Callable[[int, int], None] | None


def with_progress(
    ctx: typer.Context,
    label: str,
    unit: str,
    call: Callable[[RegistryClient, Counter], Any],
    text: Callable[[Any], str],
) -> None:
    """Run ``call(api, progress)`` and print its answer like :func:`reply`; on a terminal,
    every download and upload draws a bar with bytes/s and the computation one of ``unit``."""
    from registry.cli._progress import progress_bars

    state = get_state(ctx)
    with client(state) as api, progress_bars(state, api) as bars:
        answer = call(api, None if bars is None else bars.counter(label, unit))
    emit(state, answer, lambda: text(answer))


ToOpt = Annotated[
    Path | None,
    flag("--to", "Write the result into DIR instead of registering it.", "DIR"),
]


@dataclass(frozen=True, slots=True)
class Destination:
    """Where a compose / aggregate result goes: a new version of ``--adapter``, or ``--to``."""

    adapter: Annotated[
        str | None, flag("--adapter", "Register the result as the next version of it.", "NS/NAME")
    ] = None
    to: ToOpt = None

    def check(self) -> None:
        if (self.adapter is None) == (self.to is None):
            raise typer.BadParameter("give --adapter NS/NAME or --to DIR", param_hint="--adapter")
        if self.adapter is not None:
            parse_adapter(self.adapter)


with_destination = option_group(Destination, "destination")


def _result_text(result: dict[str, Any]) -> str:
    report = result.get("report") or {}
    if "ref" not in result:
        return f"wrote {result.get('dir')}: " + ", ".join(report.get("files", []))
    text = render_record(result, ["ref", "digest", "state", "base", "r"])
    return text + f"\nmethod  {report.get('operation')} {report.get('method')}"


@with_destination
def compose(
    ctx: typer.Context,
    inputs: Annotated[
        list[str],
        typer.Option("--from", metavar="REF=WEIGHT", help="An input and its weight (repeatable)."),
    ],
    method: Annotated[str, typer.Option("--method", help="Compose method, e.g. cat.")],
    destination: Destination,
    rank: Annotated[
        int | None, typer.Option("--rank", min=1, max=65536, show_default=False)
    ] = None,
    density: Annotated[
        float | None, typer.Option("--density", min=0.0, max=1.0, show_default=False)
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", min=0, max=2**32 - 1, show_default=False)
    ] = None,
    majority_sign: Annotated[
        MajoritySign, typer.Option("--majority-sign", help="ties / dare_ties sign election.")
    ] = MajoritySign.total,
    output: OutputOpt = None,
) -> None:
    """Compose adapters of one base into one: pull every --from input (digest-verified),
    combine them with --method here, and register the result as the next version of
    --adapter with composed_from lineage per input (digest, weight, method, parameters,
    seed); with --to DIR, write it there without registering.

    JSON: the registered version {"ref", "version", "digest", ...} with "report" (operation,
    method, files, recipe), or {"dir", "report"} with --to. Exit 6 (incompatible_adapters,
    context.reason), 3 (not allowed: nothing registered), 2 (maths_unavailable: no torch).
    """
    destination.check()
    pairs = [parse_weighted(v, "--from") for v in inputs]
    with_progress(
        ctx,
        "compose",
        "modules",
        lambda api, progress: api.compose(
            destination.adapter,
            pairs,
            method=method,
            rank=rank,
            density=density,
            seed=seed,
            majority_sign_method=majority_sign.value,
            to=destination.to,
            progress=progress,
        ),
        _result_text,
    )


@with_destination
def aggregate(
    ctx: typer.Context,
    sites: Annotated[
        list[str],
        typer.Option(
            "--site", metavar="REF=SAMPLES", help="A site's adapter and its sample count."
        ),
    ],
    destination: Destination,
    method: Annotated[AggregateMethod, typer.Option("--method")] = AggregateMethod.stack,
    robust: Annotated[Robust, typer.Option("--robust")] = Robust.none,
    max_rank: Annotated[
        int | None, typer.Option("--max-rank", min=1, max=65536, show_default=False)
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Aggregate federated sites' adapters (weighted by sample count) into one, like compose,
    with aggregated_from lineage per site.

    JSON: as compose. Exit 6 (incompatible_adapters), 3, 2 (maths_unavailable).
    """
    destination.check()
    pairs = [parse_weighted(v, "--site", samples=True) for v in sites]
    with_progress(
        ctx,
        "aggregate",
        "modules",
        lambda api, progress: api.aggregate(
            destination.adapter,
            pairs,
            method=method.value,
            robust=robust.value,
            max_rank=max_rank,
            to=destination.to,
            progress=progress,
        ),
        _result_text,
    )


def merge(
    ctx: typer.Context,
    ref: Annotated[str, typer.Argument(metavar="REF", help="Adapter version to merge.")],
    to: Annotated[Path, typer.Option("--to", metavar="DIR", help="Merged checkpoint's dir.")],
    base_dir: Annotated[
        Path | None,
        base_dir_option("Local base checkpoint (default: pull the registered base's weights)."),
    ] = None,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="Output dtype.")] = Dtype.auto,
    register_as: Annotated[
        str | None, flag("--register-as", "Register DIR as a base model revision.", "NAME")
    ] = None,
    revision: Annotated[str | None, flag("--revision", "With --register-as.", "R")] = None,
    output: OutputOpt = None,
) -> None:
    """Merge an adapter version into its base checkpoint and write the merged checkpoint to
    DIR; with --register-as NAME --revision R, register it as a base model revision (weights
    uploaded) with merged_from lineage to the adapter version and the base version.

    JSON: {"dir", "report", "registered": the base revision or null, "registered_ref":
    "NAME@R" or null}. Exit 6 (not_mergeable:
    prompt / prefix tuning), 4 (no stored base weights: give --base-dir), 2 (maths_unavailable).
    """
    if (register_as is None) != (revision is None):
        raise typer.BadParameter(
            "--register-as and --revision go together", param_hint="--revision"
        )
    if register_as is not None:
        parse_base(f"{register_as}@{revision}", "--register-as")
    with_progress(
        ctx,
        "merge",
        "tensors",
        lambda api, progress: api.merge(
            ref,
            to,
            base_dir=base_dir,
            dtype=dtype.value,
            register_as=register_as,
            revision=revision,
            progress=progress,
        ),
        lambda r: (
            f"merged into {r['dir']}"
            + (
                f"; registered {r['registered']['name']}@{r['registered']['revision']}"
                if r.get("registered")
                else ""
            )
        ),
    )
