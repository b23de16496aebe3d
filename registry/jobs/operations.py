"""One job's work: its inputs copied out of the store, the maths of its kind run on them
(:mod:`registry.maths`, torch imported there), and the result published as the creator."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from registry.db.session import unit_of_work
from registry.jobs import lifecycle
from registry.jobs.admission import OPERATIONS, maths_module
from registry.jobs.env import Creator, WorkerEnv
from registry.jobs.materialise import LocalInput, materialise_base, materialise_inputs
from registry.jobs.models import JobKind
from registry.jobs.publish import publish_adapter_version, publish_base_version
from registry.jobs.verify import run_verify
from registry.maths.combine import Input, Progress


def _operation(kind: JobKind) -> Any:
    """The maths function of ``kind`` (``maths_unavailable`` when not installed here)."""
    return getattr(maths_module(kind), OPERATIONS[kind][1])


def _recipe(report: Any) -> dict[str, Any]:
    recipe = getattr(report, "recipe", None)
    return dict(recipe) if isinstance(recipe, dict) else {}


def _combine(
    kind: JobKind, params: dict[str, Any], inputs: list[LocalInput], out: Path, progress: Progress
) -> dict[str, Any]:
    """Run compose or aggregate on the copied inputs into ``out``; the report's recipe."""
    args = [Input(i.path, i.weight, ref=i.ref, digest=i.digest) for i in inputs]
    if kind == JobKind.compose:
        report = _operation(kind)(
            args,
            out,
            method=params["method"],
            rank=params.get("rank"),
            density=params.get("density"),
            seed=params.get("seed"),
            majority_sign_method=params.get("majority_sign_method", "total"),
            progress=progress,
        )
    else:
        report = _operation(kind)(
            args,
            out,
            method=params.get("method", "stack"),
            robust=params.get("robust", "none"),
            max_rank=params.get("max_rank"),
            progress=progress,
        )
    return _recipe(report)


def _merge(
    env: WorkerEnv,
    params: dict[str, Any],
    creator: Creator,
    adapter: LocalInput,
    tmp: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Fold the copied adapter into its base's stored checkpoint; the report's recipe."""
    base_dir = materialise_base(env.sessions, env.store, creator, params["base"], tmp / "base")
    report = _operation(JobKind.merge)(
        adapter.path,
        base_dir,
        tmp / "out",
        dtype=params.get("dtype", "auto"),
        progress=progress,
        adapter_ref=adapter.ref,
        adapter_digest=adapter.digest,
        base_ref=params["base"],
    )
    return _recipe(report)


def run_maths(
    env: WorkerEnv,
    claimed: lifecycle.Claimed,
    creator: Creator,
    tmp: Path,
    progress: Progress,
) -> dict[str, Any]:
    """Copy the inputs, run the job's maths with ``progress``, publish the result (which ends
    the job ``succeeded``); returns the job's result."""
    kind = JobKind(claimed.kind)
    if kind == JobKind.verify:  # no maths: hash a direct upload's stored bytes
        return run_verify(env, claimed)
    inputs = materialise_inputs(
        env.sessions, env.store, creator, claimed.params["inputs"], tmp / "inputs"
    )
    with unit_of_work(env.sessions.read) as session:
        principal = creator.principal(session)
    if kind == JobKind.merge:
        recipe = _merge(env, claimed.params, creator, inputs[0], tmp, progress)
        out = tmp / "out"
        return publish_base_version(env, claimed, principal, creator, out, inputs[0], recipe)
    recipe = _combine(kind, claimed.params, inputs, tmp / "out", progress)
    return publish_adapter_version(env, claimed, principal, creator, tmp / "out", inputs, recipe)
