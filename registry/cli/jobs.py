"""``jobs``: server-side adapter maths (merge, compose, aggregate): submit, show, list, cancel,
wait."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from registry.cli._common import client, command_group, list_command, reply
from registry.cli._output import OutputOpt, emit, exit_with_error, get_state, note, render_record

app = command_group("Server-side adapter maths jobs: submit, show, list, cancel, wait.")

IdArg = Annotated[str, typer.Argument(metavar="ID", help="Job id.")]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Wait for the job to end (as `jobs wait ID`).")
]
TimeoutOpt = Annotated[
    float, typer.Option("--timeout", min=1, help="Give up waiting after this many seconds.")
]
PollOpt = Annotated[float, typer.Option("--poll", min=0.1, help="Seconds between two looks.")]

_COLUMNS = ["id", "kind", "state", "target", "progress", "created_by", "created_at"]
_RECORD_KEYS = [
    "id",
    "kind",
    "state",
    "target",
    "progress",
    "cancel_requested",
    "result",
    "error",
    "created_by",
    "attempts",
    "created_at",
    "started_at",
    "finished_at",
]


def _row(job: dict[str, Any]) -> dict[str, Any]:
    return {**job, "progress": f"{job.get('progress_done')}/{job.get('progress_total')}"}


def render_job(job: dict[str, Any]) -> str:
    return render_record(_row(job), _RECORD_KEYS)


def _ended(ctx: typer.Context, job: dict[str, Any]) -> None:
    """Print an ended job; exit 0 when it succeeded, else with its error's exit code (a
    cancelled job: 5, ``job_state_conflict``)."""
    state = get_state(ctx)
    if job.get("state") == "succeeded":
        emit(state, job, lambda: render_job(job))
        return
    if not state.json:
        note(render_job(job))
    error = job.get("error") or {}
    if job.get("state") == "failed" and error.get("code"):
        context = {**(error.get("context") or {}), "id": job.get("id")}
        exit_with_error(state, str(error["code"]), str(error.get("detail", "")), context)
    exit_with_error(
        state, "job_state_conflict", f"the job is {job.get('state')}", {"id": job.get("id")}
    )


def _wait(ctx: typer.Context, job_id: str, timeout: float, poll: float) -> None:
    state = get_state(ctx)
    seen: list[str] = []

    def progress(job: dict[str, Any]) -> None:
        line = f"{job.get('state')} {job.get('progress_done')}/{job.get('progress_total')}"
        if not seen or seen[-1] != line:
            seen.append(line)
            note(f"job {job_id}: {line}")

    with client(state) as api:
        job = api.wait_job(job_id, timeout=timeout, poll=poll, on_progress=progress)
    _ended(ctx, job)


@app.command("submit")
def submit(
    ctx: typer.Context,
    body_file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            help='The request as JSON, e.g. {"kind": "compose", "target": "NS/NAME", '
            '"inputs": [{"ref": "NS/A@v1", "weight": 0.7}, ...], "method": "cat"} '
            "(- reads stdin).",
        ),
    ],
    wait: WaitOpt = False,
    timeout: TimeoutOpt = 3600.0,
    poll: PollOpt = 2.0,
    output: OutputOpt = None,
) -> None:
    """Queue a merge, compose or aggregate job (POST /api/v1/jobs) and print it.

    JSON: the job ({"id", "kind", "state": "queued", "target", "params", ...}); with --wait,
    the job once it ended. Exit 3 (policy_denied), 4 (an input or namespace not found),
    5 (version_exists, base_model_version_exists), 6 (invalid request, incompatible_adapters,
    not_mergeable), 2 (maths_unavailable: the server has no torch); with --wait, a failed job
    exits with its error's code and a cancelled one with 5.
    """
    text = typer.get_text_stream("stdin").read() if str(body_file) == "-" else None
    try:
        body = json.loads(text if text is not None else body_file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise typer.BadParameter(f"{body_file}: {exc}", param_hint="FILE") from exc
    state = get_state(ctx)
    with client(state) as api:
        job = api.submit_job(body)
    if not wait:
        emit(state, job, lambda: render_job(job))
        return
    note(f"job {job['id']} queued")
    _wait(ctx, str(job["id"]), timeout, poll)


@app.command("show")
def show(ctx: typer.Context, job_id: IdArg, output: OutputOpt = None) -> None:
    """One job: state, progress, result (the registered version's ref and digest, the recipe)
    or error (code, detail, context).

    JSON: the job. Exit 4 (job_not_found: no such job, or not yours).
    """
    reply(ctx, lambda api: api.get_job(job_id), render_job)


@app.command("cancel")
def cancel(ctx: typer.Context, job_id: IdArg, output: OutputOpt = None) -> None:
    """Cancel a job: a queued one at once; a running one stops at its next progress report
    (state "running", cancel_requested: yes, until then; nothing is registered).

    JSON: the job. Exit 4 (job_not_found), 5 (job_state_conflict: it has ended).
    """
    reply(ctx, lambda api: api.cancel_job(job_id), render_job)


@app.command("wait")
def wait_command(
    ctx: typer.Context,
    job_id: IdArg,
    timeout: TimeoutOpt = 3600.0,
    poll: PollOpt = 2.0,
    output: OutputOpt = None,
) -> None:
    """Wait for a job to end, printing its progress on stderr.

    JSON: the ended job. Exit 0 (succeeded), the exit code of its error when it failed
    (e.g. 6 incompatible_adapters, 8 integrity_failure, 1 job_failed), 5 when it was
    cancelled, 4 (job_not_found), 7 (request_timeout: still running after --timeout).
    """
    _wait(ctx, job_id, timeout, poll)


list_command(
    app,
    """Your jobs newest first (an admin: everyone's).

    JSON: {"items": [job, ...], "next_page_token"}.
    """,
    lambda api, **page: api.list_jobs(**page),
    columns=_COLUMNS,
    row=_row,
)
