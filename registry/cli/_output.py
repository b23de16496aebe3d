"""Output and exit codes of the CLI: the one error-code → exit-code table, ``exit_with_error``,
and JSON / table rendering.

With ``--output json`` nothing but JSON goes to stdout, errors included
(``{"error": code, "detail": ..., "context": ...}``); human text and warnings go to stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, NoReturn

import typer

# --- exit codes (DESIGN.md "CLI surface") ---------------------------------------------------

EXIT_OK = 0
EXIT_UNEXPECTED = 1
EXIT_USAGE = 2
EXIT_DENIED = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_INVALID = 6
EXIT_UNAVAILABLE = 7
EXIT_INTEGRITY = 8

#: Every error code the CLI knows → its exit code. Codes not listed fall back on their suffix
#: (``*_not_found`` → 4, ``*_exists`` / ``*_conflict`` → 5), then on the HTTP status.
EXIT_CODES: Mapping[str, int] = {
    # 2 usage
    "usage": EXIT_USAGE,
    "not_supported": EXIT_USAGE,
    # Not in this installation, here or on the server (no torch): retrying will not help.
    "maths_unavailable": EXIT_USAGE,
    # 3 denied / unauthenticated
    "unauthenticated": EXIT_DENIED,
    "oidc_sign_in_failed": EXIT_DENIED,
    "permission_denied": EXIT_DENIED,
    "uri_not_allowed": EXIT_DENIED,
    "mlflow_server_not_allowed": EXIT_DENIED,
    "policy_denied": EXIT_DENIED,
    "separation_of_duties": EXIT_DENIED,
    "csrf_failed": EXIT_DENIED,
    "token_exceeds_parent": EXIT_DENIED,
    "oidc_token_invalid": EXIT_DENIED,
    "oidc_token_reused": EXIT_DENIED,
    # 4 not found
    "not_found": EXIT_NOT_FOUND,
    "namespace_not_found": EXIT_NOT_FOUND,
    "base_model_not_found": EXIT_NOT_FOUND,
    "adapter_not_found": EXIT_NOT_FOUND,
    "version_not_found": EXIT_NOT_FOUND,
    "file_not_found": EXIT_NOT_FOUND,
    "upload_not_found": EXIT_NOT_FOUND,
    "blob_not_found": EXIT_NOT_FOUND,
    "principal_not_found": EXIT_NOT_FOUND,
    "token_not_found": EXIT_NOT_FOUND,
    "publisher_not_found": EXIT_NOT_FOUND,
    "deployment_not_found": EXIT_NOT_FOUND,
    "promotion_not_found": EXIT_NOT_FOUND,
    "job_not_found": EXIT_NOT_FOUND,
    "nothing_served": EXIT_NOT_FOUND,
    "revision_not_found": EXIT_NOT_FOUND,
    "mlflow_source_not_found": EXIT_NOT_FOUND,
    "mlflow_mirror_not_found": EXIT_NOT_FOUND,
    "webhook_not_found": EXIT_NOT_FOUND,
    "webhook_delivery_not_found": EXIT_NOT_FOUND,
    "console_login_not_found": EXIT_NOT_FOUND,
    # 5 conflict / invalid transition
    "conflict": EXIT_CONFLICT,
    "admin_exists": EXIT_CONFLICT,
    "namespace_exists": EXIT_CONFLICT,
    "base_model_version_exists": EXIT_CONFLICT,
    "version_exists": EXIT_CONFLICT,
    "version_verifying": EXIT_CONFLICT,
    "version_failed_verification": EXIT_CONFLICT,
    "direct_upload_unsupported": EXIT_CONFLICT,
    "invalid_transition": EXIT_CONFLICT,
    "upload_state_conflict": EXIT_CONFLICT,
    "dataset_conflict": EXIT_CONFLICT,
    "idempotency_key_reused": EXIT_CONFLICT,
    "idempotency_key_in_flight": EXIT_CONFLICT,
    "target_not_empty": EXIT_CONFLICT,
    "principal_exists": EXIT_CONFLICT,
    "publisher_exists": EXIT_CONFLICT,
    "console_login_exists": EXIT_CONFLICT,
    "last_admin": EXIT_CONFLICT,
    "deployment_exists": EXIT_CONFLICT,
    "gates_failed": EXIT_CONFLICT,
    "promotion_state_conflict": EXIT_CONFLICT,
    "stable_changed": EXIT_CONFLICT,
    "plan_digest_mismatch": EXIT_CONFLICT,
    "precondition_failed": EXIT_CONFLICT,
    "precondition_required": EXIT_CONFLICT,
    "job_state_conflict": EXIT_CONFLICT,
    "no_experiment": EXIT_CONFLICT,
    # 6 invalid input (bad adapters and bad requests)
    "invalid_adapter": EXIT_INVALID,
    "corrupt_safetensors": EXIT_INVALID,
    "missing_weights": EXIT_INVALID,
    "unknown_peft_type": EXIT_INVALID,
    "unknown_method": EXIT_INVALID,
    "invalid_adapter_config": EXIT_INVALID,
    "inconsistent_adapter": EXIT_INVALID,
    "incompatible_base": EXIT_INVALID,
    "forbidden_file": EXIT_INVALID,
    "digest_mismatch": EXIT_INVALID,
    "unhealthy_tensors": EXIT_INVALID,
    "invalid_base_model": EXIT_INVALID,
    "mlflow_no_adapter": EXIT_INVALID,
    "invalid_request": EXIT_INVALID,
    "invalid_name": EXIT_INVALID,
    "invalid_reference": EXIT_INVALID,
    "invalid_digest": EXIT_INVALID,
    "invalid_part_list": EXIT_INVALID,
    "invalid_uri": EXIT_INVALID,
    "bad_request": EXIT_INVALID,
    "invalid_page_token": EXIT_INVALID,
    "invalid_policy": EXIT_INVALID,
    "plan_below_floor": EXIT_INVALID,
    "invalid_report": EXIT_INVALID,
    "payload_too_large": EXIT_INVALID,
    "headers_too_large": EXIT_INVALID,
    "not_mergeable": EXIT_INVALID,
    "incompatible_adapters": EXIT_INVALID,
    "invalid_webhook_url": EXIT_INVALID,
    "webhook_target_blocked": EXIT_INVALID,
    "unknown_event_type": EXIT_INVALID,
    "range_not_satisfiable": EXIT_INVALID,
    # 7 server unavailable (retry later)
    "server_unavailable": EXIT_UNAVAILABLE,
    "unavailable": EXIT_UNAVAILABLE,
    "storage_unavailable": EXIT_UNAVAILABLE,
    "database_unavailable": EXIT_UNAVAILABLE,
    "request_timeout": EXIT_UNAVAILABLE,
    "schema_out_of_date": EXIT_UNAVAILABLE,
    "oidc_provider_unavailable": EXIT_UNAVAILABLE,
    "mlflow_unavailable": EXIT_UNAVAILABLE,
    "audit_key_retired": EXIT_UNAVAILABLE,
    # 8 integrity
    "integrity_failure": EXIT_INTEGRITY,
    "audit_chain_broken": EXIT_INTEGRITY,
    "audit_checkpoint_missing": EXIT_INTEGRITY,
}

_STATUS_EXITS: Mapping[int, int] = {
    400: EXIT_INVALID,
    401: EXIT_DENIED,
    403: EXIT_DENIED,
    404: EXIT_NOT_FOUND,
    409: EXIT_CONFLICT,
    412: EXIT_CONFLICT,
    408: EXIT_UNAVAILABLE,
    413: EXIT_INVALID,
    431: EXIT_INVALID,
    422: EXIT_INVALID,
    502: EXIT_UNAVAILABLE,
    503: EXIT_UNAVAILABLE,
    504: EXIT_UNAVAILABLE,
}


def exit_code_for(code: str, status: int | None = None) -> int:
    """Exit code of an error ``code`` (and, for codes this CLI does not know, its HTTP status)."""
    if code in EXIT_CODES:
        return EXIT_CODES[code]
    if code.endswith("_not_found"):
        return EXIT_NOT_FOUND
    if code.endswith(("_exists", "_conflict")):
        return EXIT_CONFLICT
    if status is not None and status in _STATUS_EXITS:
        return _STATUS_EXITS[status]
    return EXIT_UNEXPECTED


# --- output mode ----------------------------------------------------------------------------


class OutputFormat(StrEnum):
    table = "table"
    json = "json"


@dataclass
class State:
    """Options of the root callback, shared by every command (``ctx.obj``)."""

    server: str = "http://127.0.0.1:8000"
    token: str | None = None
    output: OutputFormat = OutputFormat.table

    @property
    def json(self) -> bool:
        return self.output == OutputFormat.json


def get_state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    if not isinstance(obj, State):
        obj = State()
        ctx.find_root().obj = obj
    return obj


def _output_callback(ctx: typer.Context, value: OutputFormat | None) -> OutputFormat | None:
    if value is not None:
        get_state(ctx).output = value
    return value


#: ``--output`` accepted after a subcommand too (``adapters validate DIR --output json``).
OutputOpt = Annotated[
    OutputFormat | None,
    typer.Option(
        "--output",
        "-o",
        help="json: only JSON on stdout (errors too); table: human-readable. "
        "Overrides the global --output.",
        callback=_output_callback,
        show_default=False,
    ),
]


# --- rendering ------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    return str(value)


def dumps(data: Any) -> str:
    return json.dumps(data, default=_default, sort_keys=False, indent=2)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ",".join(_cell(v) for v in value) or "-"
    if isinstance(value, dict):
        return json.dumps(value, default=_default, separators=(",", ":"))
    if isinstance(value, float):
        return f"{value:.6g}"  # 0.05, not 0.04999999999999993
    return str(value)


def render_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """Plain-text columns; an empty listing is ``(none)``."""
    if not rows:
        return "(none)"
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(line.rstrip() for line in lines)


def render_record(record: Mapping[str, Any], keys: Sequence[str] | None = None) -> str:
    """``key: value`` lines (all keys, or the ones named)."""
    names = list(keys) if keys is not None else list(record)
    width = max((len(k) for k in names), default=0)
    return "\n".join(f"{k.ljust(width)}  {_cell(record.get(k))}" for k in names if k in record)


def emit(state: State, data: Any, table: Callable[[], str] | str | None = None) -> None:
    """Print ``data`` as JSON, or the human form ``table`` (a string or a builder)."""
    if state.json:
        typer.echo(dumps(data))
        return
    if table is None:
        text = render_record(data) if isinstance(data, Mapping) else dumps(data)
    else:
        text = table if isinstance(table, str) else table()
    typer.echo(text)


def emit_page(state: State, page: Mapping[str, Any], columns: Sequence[str]) -> None:
    """A ``{items, next_page_token}`` listing."""

    def table() -> str:
        text = render_table(page.get("items", []), columns)
        token = page.get("next_page_token")
        if token:
            text += f"\n(more: --page-token {token})"
        return text

    emit(state, page, table)


def note(message: str) -> None:
    """Human-oriented remark: always stderr, so JSON output stays clean."""
    typer.echo(message, err=True)


def exit_with_error(
    state: State | None,
    code: str,
    detail: str,
    context: Mapping[str, Any] | None = None,
    *,
    status: int | None = None,
    exit_code: int | None = None,
) -> NoReturn:
    """The one way commands fail: JSON error body on stdout (``--output json``) or a message on
    stderr, then the exit code of ``code``."""
    body = {"error": code, "detail": detail, "context": dict(context or {})}
    if state is not None and state.json:
        typer.echo(dumps(body))
    else:
        message = f"error: {code}: {detail}"
        if body["context"]:
            message += f"\n  {_cell(body['context'])}"
        typer.echo(message, err=True)
    raise typer.Exit(exit_code if exit_code is not None else exit_code_for(code, status))


def json_requested(args: Sequence[str]) -> bool:
    """Whether a raw command line asks for JSON (for errors met before options are parsed)."""
    for i, arg in enumerate(args):
        if arg in ("--output", "-o") and i + 1 < len(args) and args[i + 1] == "json":
            return True
        if arg in ("--output=json", "-ojson"):
            return True
    return False


def write_stdout(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
