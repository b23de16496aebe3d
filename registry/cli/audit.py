"""``audit``: the hash-chained audit log: filtered listing, chain verification, checkpoints,
and "what served deployment D at time T"."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from registry.cli._common import Paging, client, command_group, paged, short_digest
from registry.cli._output import OutputOpt, emit, exit_with_error, get_state, note, render_record

app = command_group(
    "Audit log: who did what, when, on which evidence; tamper-evident (hash chain)."
)


def _text(flag: str, help_: str, metavar: str) -> Any:
    return typer.Option(flag, help=help_, metavar=metavar, show_default=False)


@app.command("log")
@paged
def log(
    ctx: typer.Context,
    actor: Annotated[str | None, _text("--actor", "Only events by this principal.", "NAME")] = None,
    action: Annotated[
        str | None, _text("--action", "Action prefix, e.g. promotion. or token.revoke.", "PREFIX")
    ] = None,
    resource: Annotated[
        str | None, _text("--resource", "Resource prefix, e.g. deployment:chat-prod.", "PREFIX")
    ] = None,
    since: Annotated[
        str | None, _text("--since", "From this time, with a zone (2026-11-25T10:00:00Z).", "ISO")
    ] = None,
    until: Annotated[str | None, _text("--until", "Up to this time, with a zone.", "ISO")] = None,
    *,
    paging: Paging,
    output: OutputOpt = None,
) -> None:
    """List audit events in sequence order (auditor, admin).

    JSON: {"items": [{"seq", "at", "actor", "action", "resource", "decision", "before",
    "after", "request_id", "prev_hash", "hash"}], "next_page_token"}. Exit 3 (policy_denied),
    6 (a time without a zone, a bad page token).
    """
    paging.print(
        ctx,
        lambda api, limit, token: api.audit_events(
            actor=actor,
            action=action,
            resource=resource,
            since=since,
            until=until,
            limit=limit,
            page_token=token,
        ),
        columns=["seq", "at", "actor", "action", "resource"],
    )


@app.command("verify")
def verify(
    ctx: typer.Context,
    require_checkpoint: Annotated[
        bool,
        typer.Option(
            "--require-checkpoint",
            help="Fail (exit 8, audit_checkpoint_missing) when no signed checkpoint exists: "
            "without one a rewritten history is not detectable.",
        ),
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Recompute the hash chain and check every signed checkpoint against the key history.

    JSON: {"ok": true, "events", "checkpoints", "first_bad_seq": null, "reason": null,
    "warnings": [], "last_checkpoint_seq"} (exit 0; "warnings": ["no_checkpoints"] when nothing
    anchors the log), or the error {"error": "audit_chain_broken", "detail", "context":
    {"first_bad_seq", "reason", "events", "checkpoints", "checkpoint_seq", "bad_range"}} with
    exit 8 (for a re-chained history, first_bad_seq is the edited event when it can be named,
    bad_range the events holding the first edit). With --require-checkpoint and no checkpoint:
    {"error": "audit_checkpoint_missing"}, exit 8. Exit 3 (policy_denied).
    """
    state = get_state(ctx)
    with client(state) as api:
        result = api.audit_verify(require_checkpoint=require_checkpoint)
    if not result.get("ok"):
        exit_with_error(
            state,
            "audit_chain_broken",
            f"audit chain broken at seq {result.get('first_bad_seq')}: {result.get('reason')}",
            {
                "first_bad_seq": result.get("first_bad_seq"),
                "reason": result.get("reason"),
                "events": result.get("events"),
                "checkpoints": result.get("checkpoints"),
                "checkpoint_seq": result.get("checkpoint_seq"),
                "bad_range": result.get("bad_range"),
            },
        )
    if "no_checkpoints" in (result.get("warnings") or []) and not state.json:
        note(
            "warning: no signed checkpoint exists, so a rewritten history would verify too "
            "(run `audit checkpoint`; use --require-checkpoint to make this an error)"
        )
    emit(
        state,
        result,
        lambda: (
            f"ok: {result.get('events')} events, {result.get('checkpoints')} checkpoints verified"
        ),
    )


@app.command("rotate-key")
def rotate_key(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Replace the audit signing key; the new key vouches for the old one (server-side).

    Runs where the key file is (REGISTRY_AUDIT__SIGNING_KEY_PATH) with the server's artifact
    store settings (REGISTRY_STORAGE__*), not through the API: it writes the old key's signed
    record (public key, validity window) next to the checkpoints, then replaces the key file.
    Checkpoints the old key signed keep verifying, each against the key in use at its time.
    Restart every server afterwards: until then they refuse to sign (audit_key_retired).

    JSON: {"retired_key_id", "not_before", "not_after", "new_key_id"}. Exit 2 (no key file),
    7 (audit_key_retired: the configured key was retired already).
    """
    from registry.audit.keyring import rotate_signing_key
    from registry.cli._settings import settings_or_exit
    from registry.storage.factory import make_store

    state = get_state(ctx)
    settings = settings_or_exit(state)
    path = settings.audit.signing_key_path
    if not path.exists():
        exit_with_error(state, "usage", f"no audit signing key at {path}", {"path": str(path)})
    done = rotate_signing_key(make_store(settings.storage), path)
    record = done.retired
    answer = {
        "retired_key_id": record.key_id,
        "not_before": record.not_before.isoformat() if record.not_before else None,
        "not_after": record.not_after.isoformat(),
        "new_key_id": done.new_key_id,
    }
    emit(
        state,
        answer,
        f"retired key {record.key_id}, new key {done.new_key_id} at {path}; back it up and "
        "restart every server",
    )


@app.command("checkpoint")
def checkpoint(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Export a signed checkpoint of the chain's head to the artifact store now.

    JSON: {"seq", "hash", "at", "key_id"}, or null when the log is empty. Exit 3 (policy_denied).
    """
    state = get_state(ctx)
    with client(state) as api:
        made = api.audit_checkpoint()
    emit(
        state,
        made,
        lambda: (
            "no events: nothing to checkpoint"
            if made is None
            else f"checkpoint at seq {made['seq']} ({made['hash']}), key {made['key_id']}"
        ),
    )


def _served_version(summary: Any) -> str:
    if not isinstance(summary, dict):
        return "-"
    return f"{summary.get('ref')} {short_digest(summary.get('digest'))}"


def render_served(served: dict[str, Any]) -> str:
    """The answer of ``audit served`` as ``key: value`` lines."""
    base = served.get("base") or {}
    promotion = served.get("promotion")
    if isinstance(promotion, dict):
        approvers = ", ".join(str(a.get("approver")) for a in promotion.get("approvers") or [])
        promoted = (
            f"{promotion.get('id')} requested by {promotion.get('requested_by')}, "
            f"approved by {approvers or '-'}"
        )
        if promotion.get("override_reason"):
            promoted += f" (override: {promotion['override_reason']})"
    else:
        promoted = "-"
    share = served.get("share_bp")
    record = {
        "deployment": served.get("deployment"),
        "at": served.get("at"),
        "revision": f"{served.get('revision')} (effective {served.get('effective_at')}, "
        f"{served.get('reason')})",
        "stable": _served_version(served.get("stable")),
        "candidate": _served_version(served.get("candidate")),
        "share": f"{share / 100:g} %" if isinstance(share, int) else "-",
        "base": f"{base.get('ref')} {short_digest(base.get('manifest_digest'))}",
        "promotion": promoted,
    }
    if served.get("key") is not None:
        record["key"] = f"{served.get('key')} -> {served.get('arm') or '-'}"
    return render_record(record)


@app.command("served")
def served(
    ctx: typer.Context,
    deployment: Annotated[
        str, typer.Option("--deployment", metavar="D", help="Deployment name.", show_default=False)
    ],
    at: Annotated[
        str,
        _text("--at", "The time, ISO 8601 with a zone (2026-11-25T10:00:00Z).", "ISO-8601"),
    ],
    key: Annotated[
        str | None,
        _text("--key", "A routing key: which arm it was routed to then.", "K"),
    ] = None,
    output: OutputOpt = None,
) -> None:
    """Which adapter versions served deployment D at a time, and who approved them.

    The revision effective at --at, its stable and candidate versions with digests, the base
    and its digest, the candidate's share, the promotion and its approvers and, with --key, the
    arm that key was routed to (recomputed from the revision's salt and hash spec).

    JSON: {"deployment", "at", "revision", "effective_at", "reason", "stable": {"version",
    "ref", "digest"} | null, "candidate": {...} | null, "share_bp", "salt", "hash_spec",
    "base": {"ref", "manifest_digest"}, "promotion": {"id", "requested_by", "approvers":
    [{"approver", "at"}], "override_reason", "policy_digest", "gates_passed"} | null, "key",
    "arm": "stable" | "candidate" | null}. Exit 3 (policy_denied), 4 (deployment_not_found,
    nothing_served: no revision yet at that time), 6 (a time without a zone).
    """
    state = get_state(ctx)
    with client(state) as api:
        answer = api.audit_served(deployment, at=at, key=key)
    emit(state, answer, lambda: render_served(answer))
