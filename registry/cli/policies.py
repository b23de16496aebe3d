"""``policies``: show the active policy set, check a policy directory locally, apply one."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from registry.cli._common import client, command_group
from registry.cli._output import OutputOpt, emit, get_state, render_record

app = command_group("Access policies (Cedar) and promotion gates (gates.yaml).")

DirArg = Annotated[
    Path,
    typer.Argument(
        metavar="DIR",
        help="Directory with *.cedarschema, *.cedar and gates.yaml.",
    ),
]


@app.command("show")
def show(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Show the active policy set (version 0 = the defaults shipped with the server).

    JSON: {"version", "digest", "source", "applied_at", "schema_text", "policies_text",
    "gates_text"}. Exit 3 (policy_denied).
    """
    state = get_state(ctx)
    with client(state) as api:
        active = api.get_policies()

    def table() -> str:
        head = render_record(active, ["version", "digest", "source", "applied_at"])
        parts = [head]
        for key, title in (
            ("schema_text", "schema"),
            ("policies_text", "policies"),
            ("gates_text", "gates.yaml"),
            ("rollout_text", "rollout.yaml"),
        ):
            parts.append(f"\n# ---- {title}\n{str(active.get(key) or '').rstrip()}")
        return "\n".join(parts)

    emit(state, active, table)


@app.command("check")
def check(ctx: typer.Context, directory: DirArg, output: OutputOpt = None) -> None:
    """Validate a policy directory locally (no server): the schema parses and declares what the
    registry needs, every policy parses, has a unique @id and validates, gates.yaml parses.

    JSON: {"ok": true, "digest", "directory", "policies": [policy @id, ...]}. Exit 6
    (invalid_policy, with every problem in context.errors).
    """
    from registry.policy.loader import load_dir, validate

    state = get_state(ctx)
    bundle = load_dir(directory)
    ids = validate(bundle)
    result = {
        "ok": True,
        "digest": bundle.digest,
        "directory": str(directory.resolve()),
        "policies": list(ids),
    }
    emit(state, result, lambda: f"ok: {len(ids)} policies, digest {bundle.digest}")


@app.command("apply")
def apply(ctx: typer.Context, directory: DirArg, output: OutputOpt = None) -> None:
    """Make a policy directory the active policy set (admin; validated by the server, audited).

    Reads the files exactly as `policies check` does, so the digest printed by check is the
    digest of the applied set. The source recorded is the directory's absolute path.

    JSON: the new active set, as `policies show`. Exit 3 (policy_denied), 6 (invalid_policy).
    """
    from registry.policy.loader import load_dir

    state = get_state(ctx)
    bundle = load_dir(directory)
    with client(state) as api:
        applied = api.apply_policies(
            schema_text=bundle.schema_text,
            policies_text=bundle.policies_text,
            gates_text=bundle.gates_text,
            rollout_text=bundle.rollout_text,
            source=str(directory.resolve()),
        )
    emit(
        state,
        applied,
        lambda: f"applied policy version {applied['version']} ({applied['digest']})",
    )
