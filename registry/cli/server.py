"""Server-side commands: ``serve``, ``bootstrap``, ``db upgrade|check|current``, ``storage gc``.

These touch the database and the artifact store directly (settings from ``REGISTRY_*``
environment variables); every other command goes through the HTTP API.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from registry.cli._common import command_group
from registry.cli._output import OutputOpt, State, emit, exit_with_error, get_state, render_record

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from registry.settings import Settings

db_app = command_group("Database schema: upgrade, check, current (REGISTRY_DATABASE__URL).")
storage_app = command_group("Artifact store maintenance (REGISTRY_STORAGE__*).")


def _settings(state: State | None = None) -> Settings:
    """The server settings; a bad ``REGISTRY_*`` value exits 2 naming the variable."""
    from registry.cli._settings import settings_or_exit

    return settings_or_exit(state)


def _engine(settings: Settings) -> Engine:
    from registry.db.engine import make_engine

    return make_engine(settings.database, application_name="adapter-registry-cli")


def _schema_status(settings: Settings) -> dict[str, Any]:
    from registry.db import migrate

    engine = _engine(settings)
    try:
        current = sorted(migrate.current_revisions(engine))
    finally:
        engine.dispose()
    head = sorted(migrate.head_revisions())
    return {"current": current, "head": head, "up_to_date": current == head}


def serve(
    ctx: typer.Context,
    host: Annotated[
        str | None, typer.Option(help="Bind address [settings: 127.0.0.1].", show_default=False)
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(min=1, max=65535, help="Port [settings: 8000].", show_default=False),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            show_default=False,
            help="Worker processes [default: one per core]; 1 serves in this process. "
            "/metrics sums every worker's figures.",
        ),
    ] = None,
) -> None:
    """Serve the HTTP API with uvicorn (registry.app:create_app).

    Defaults come from REGISTRY_SERVER__HOST / REGISTRY_SERVER__PORT; REGISTRY_METRICS__PORT
    adds a token-free GET /metrics listener on its own port (with several workers, in this parent
    process, answering for all of them). The server refuses to
    start on an out-of-date schema (run `db upgrade` first, or set
    REGISTRY_DATABASE__AUTO_MIGRATE=true). With several workers, the rollout controller and the
    audit checkpointer run in one of them (elected by lock: a PostgreSQL advisory lock, a file
    lock next to a SQLite database); webhook, MLflow mirror and job rounds lock per round.
    """
    import os

    import uvicorn

    from registry.cli._serve_metrics import worker_metrics

    settings = _settings(get_state(ctx))
    # The CPUs this process may run on (a container's cpuset), not every core of the host.
    workers = workers or len(os.sched_getaffinity(0)) or 1
    if settings.metrics.port is not None and settings.metrics.port == (
        port or settings.server.port
    ):
        raise typer.BadParameter(
            "REGISTRY_METRICS__PORT must differ from the API port", param_hint="--port"
        )
    if workers > 1 and settings.database.auto_migrate:
        from registry.db import migrate

        migrate.upgrade(settings.database.url)  # once here, not racing in every worker
    with worker_metrics(settings, workers):
        uvicorn.run(
            "registry.app:create_app",
            factory=True,
            host=host or settings.server.host,
            port=port or settings.server.port,
            log_level=log_level,
            workers=workers,
            # Header size and header time bounds (registry/api/protocol.py); body bounds are
            # the request guard's.
            http="registry.api.protocol:GuardedHttpToolsProtocol",
            timeout_keep_alive=settings.server.keep_alive_s,
            limit_concurrency=settings.server.max_concurrency,
        )


def bootstrap(
    ctx: typer.Context,
    name: Annotated[str, typer.Option(help="Name of the admin principal.")] = "admin",
    recover: Annotated[
        bool,
        typer.Option(
            "--recover",
            help="Lost admin token: mint a new token for admin principal NAME (created if "
            "missing) even though an admin exists; audited as principal.recover.",
        ),
    ] = False,
    revoke_existing: Annotated[
        bool,
        typer.Option(
            "--revoke-existing",
            help="With --recover: revoke NAME's other tokens in the same transaction (a "
            "leaked token). Without it they keep working.",
        ),
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Create the first admin principal and print its API token once (stored hashed).

    JSON: {"token": "..."}. Exit 5 (admin_exists) when an admin exists already, exit 7
    (schema_out_of_date) when the database needs `db upgrade`.

    With --recover (run where the server's REGISTRY_DATABASE__URL is, like `db upgrade`): a new
    token for the admin principal NAME whatever admins exist, recorded in the audit log
    (principal.recover, actor system:recover, the OS user and host); a disabled admin NAME is
    enabled again. JSON: {"token", "principal", "created", "enabled", "revoked_tokens"}.
    Exit 6 (bad_request) when NAME is not an admin, 7 (schema_out_of_date) when the database
    needs `db upgrade`.
    """
    from registry.db import migrate
    from registry.db.session import Sessions, unit_of_work

    state = get_state(ctx)
    if revoke_existing and not recover:
        exit_with_error(state, "usage", "--revoke-existing only goes with --recover")
    settings = _settings(state)
    engine = _engine(settings)
    try:
        migrate.check_schema(engine)
        with unit_of_work(Sessions(engine).write) as session:
            if recover:
                from registry.principals.recovery import recover_admin

                done = recover_admin(
                    session, name=name, operator=_operator(), revoke_existing=revoke_existing
                )
            else:
                from registry.principals.service import bootstrap_admin

                token = bootstrap_admin(session, name=name)
    finally:
        engine.dispose()
    if not recover:
        emit(
            state,
            {"token": token},
            f"admin token (shown once, stored hashed): {token}\n"
            f"(principal '{name}'; export REGISTRY_TOKEN={token})",
        )
        return
    emit(
        state,
        {
            "token": done.token,
            "principal": done.principal,
            "created": done.created,
            "enabled": done.enabled,
            "revoked_tokens": done.revoked_tokens,
        },
        f"recovery admin token (shown once, stored hashed; audited): {done.token}\n"
        f"(principal '{done.principal}'{', created' if done.created else ''}"
        f"{', enabled again' if done.enabled else ''}; "
        f"{done.revoked_tokens} other token(s) revoked; export REGISTRY_TOKEN={done.token})",
    )


def _operator() -> str:
    """Who ran a recovery, for its audit event: OS user and host (best effort)."""
    import getpass
    import os
    import socket

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers with an arbitrary uid)
        user = f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()}"


@db_app.command("upgrade")
def db_upgrade(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Migrate the database to the code's schema version (alembic upgrade head).

    JSON: {"current": [...], "head": [...], "up_to_date": true}.
    """
    from registry.db import migrate

    state = get_state(ctx)
    settings = _settings(state)
    migrate.upgrade(settings.database.url)
    emit(state, _schema_status(settings), lambda: "schema up to date")


@db_app.command("check")
def db_check(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Exit 0 when the schema is current, exit 7 (schema_out_of_date) when `db upgrade` is
    needed.

    JSON: {"current": [...], "head": [...], "up_to_date": true}.
    """
    state = get_state(ctx)
    status = _schema_status(_settings(state))
    if not status["up_to_date"]:
        exit_with_error(
            state,
            "schema_out_of_date",
            "the database schema is not at the version this code needs; "
            "run `adapter-registry db upgrade`",
            {"current": status["current"], "required": status["head"]},
        )
    emit(state, status, "schema up to date")


@db_app.command("current")
def db_current(ctx: typer.Context, output: OutputOpt = None) -> None:
    """Print the database's schema revision and the code's head revision.

    JSON: {"current": [...], "head": [...], "up_to_date": bool}.
    """
    state = get_state(ctx)
    status = _schema_status(_settings(state))
    emit(state, status, lambda: render_record(status))


@storage_app.command("gc")
def storage_gc(
    ctx: typer.Context,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List, delete nothing.")] = False,
    grace_seconds: Annotated[
        int | None,
        typer.Option(
            "--grace-seconds",
            min=0,
            show_default=False,
            help="Keep unreferenced objects younger than this "
            "[settings: REGISTRY_STORAGE__GC_GRACE_S, 24 h]. Must be at least the longest "
            "upload session (REGISTRY_SERVER__UPLOAD_TTL_S, 6 h) unless --force.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Accept a grace shorter than the longest upload session (only when no "
            "server is taking pushes: in-flight uploads lose their bytes).",
        ),
    ] = False,
    output: OutputOpt = None,
) -> None:
    """Delete unreferenced blobs and stale staging objects older than the grace window.

    Prints the gc report (JSON object). Safe to run repeatedly and next to a live server. A
    grace window shorter than the longest upload session (REGISTRY_SERVER__UPLOAD_TTL_S) would
    delete the bytes of pushes in flight: it is refused with exit 2 (usage) unless --force.
    """
    from registry.maintenance import storage_gc as run_gc
    from registry.storage.gc import GraceTooShort

    state = get_state(ctx)
    settings = _settings(state)
    grace = settings.storage.gc_grace_s if grace_seconds is None else grace_seconds
    try:
        report = run_gc(settings, dry_run=dry_run, grace_s=grace, force=force)
    except GraceTooShort as exc:
        exit_with_error(
            state,
            "usage",
            str(exc),
            {"grace_s": exc.grace_s, "min_grace_s": exc.min_grace_s},
        )
    emit(state, report)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)
    app.command("bootstrap")(bootstrap)
    app.add_typer(db_app, name="db")
    app.add_typer(storage_app, name="storage")
