"""``adapter-registry``: the command line of the PEFT adapter registry.

Start-up stays light (``--help`` < 0.5 s): command modules import only typer and the helpers
here; the HTTP client, the server app, SQLAlchemy, Alembic and numpy are imported inside the
commands that need them.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import Annotated, Any, NoReturn

import typer
from typer.core import TyperGroup

from registry import __version__
from registry.cli import (
    adapters,
    audit,
    base_models,
    deployments,
    evals,
    jobs,
    namespaces,
    policies,
    principals,
    promotions,
    publishers,
    server,
    tokens,
    webhooks,
)
from registry.cli._lazy import LazyGroups, plain_options, root_command
from registry.cli._output import (
    EXIT_UNEXPECTED,
    OutputFormat,
    State,
    dumps,
    exit_with_error,
    get_state,
    json_requested,
    write_stdout,
)

DEFAULT_SERVER = "http://127.0.0.1:8000"
#: Set by the shell completion scripts (``_ADAPTER_REGISTRY_COMPLETE=source_bash`` prints one).
COMPLETE_VAR = "_ADAPTER_REGISTRY_COMPLETE"

HELP = """Registry and governance service for PEFT adapters (LoRA, DoRA, IA3, prefix tuning, ...).

\b
Exit codes (stable, for CI):
  0  ok
  1  unexpected error
  2  usage, or not available in this installation (maths_unavailable:
     merge / compose / aggregate need pip install 'adapter-registry[maths]')
  3  denied / unauthenticated
  4  not found
  5  conflict / invalid transition
  6  invalid input (bad adapter, bad request)
  7  server unavailable (retry later)
  8  integrity check failed (digest on pull, audit verify)

With --output json only JSON goes to stdout, errors included:
{"error": code, "detail": ..., "context": {...}}. --output is accepted before or after the
command (adapter-registry adapters validate DIR --base-dir B --output json).
"""


def handle_exception(ctx: typer.Context, exc: Exception) -> NoReturn:
    """Turn an exception escaping a command into the error output and its exit code."""
    state = get_state(ctx)
    from registry.client import ClientError
    from registry.errors import RegistryError

    if isinstance(exc, ClientError):
        exit_with_error(state, exc.code, exc.detail, exc.context, status=exc.status or None)
    if isinstance(exc, RegistryError):
        exit_with_error(state, exc.code, exc.detail, exc.context, status=exc.status_code)
    sa_exc = sys.modules.get("sqlalchemy.exc")
    if sa_exc is not None and isinstance(exc, sa_exc.OperationalError):
        exit_with_error(state, "unavailable", f"database unreachable: {exc.orig}")
    if os.environ.get("REGISTRY_DEBUG"):
        traceback.print_exc(file=sys.stderr)
    exit_with_error(state, "unexpected", f"{type(exc).__name__}: {exc}", exit_code=EXIT_UNEXPECTED)


class RegistryGroup(TyperGroup):
    """Root group: every error escaping a command leaves through ``exit_with_error``.

    Built by :func:`registry.cli._lazy.root_command` (``main``), its command groups are built
    on first use (``lazy``); built by typer (tests), it holds them all."""

    lazy: LazyGroups | None = None

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if self.lazy is not None and not self.lazy.listing and cmd_name in self.lazy.infos:
            built = self.lazy.build(ctx, cmd_name)
            if built is not None:
                self.commands[cmd_name] = built  # replaces the stub, in its place
        return super().get_command(ctx, cmd_name)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if self.lazy is not None and option is not None:
            plain_options([option])
        return option

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        if self.lazy is None:
            return super().format_commands(ctx, formatter)
        self.lazy.listing = True
        try:
            super().format_commands(ctx, formatter)
        finally:
            self.lazy.listing = False

    # ``ctx`` is typer's vendored click Context (not a public name, hence Any).
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # exits, aborts and usage errors: typer reports them (exit 0/1/2)
        except Exception as exc:
            handle_exception(ctx, exc)


app = typer.Typer(
    name="adapter-registry",
    cls=RegistryGroup,
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(__version__)
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    server_url: Annotated[
        str,
        typer.Option("--server", envvar="REGISTRY_URL", help="Registry server URL."),
    ] = DEFAULT_SERVER,
    token: Annotated[
        str | None,
        typer.Option(envvar="REGISTRY_TOKEN", help="API token.", show_default=False),
    ] = None,
    output: Annotated[
        OutputFormat,
        typer.Option("--output", "-o", help="json (only JSON on stdout) or table."),
    ] = OutputFormat.table,
    _show_version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = State(server=server_url, token=token or None, output=output)


server.register(app)
app.add_typer(namespaces.app, name="namespaces")
app.add_typer(base_models.app, name="base-models")
app.add_typer(adapters.app, name="adapters")
app.add_typer(evals.app, name="evals")
app.add_typer(principals.app, name="principals")
app.add_typer(tokens.app, name="tokens")
app.add_typer(publishers.app, name="publishers")
app.add_typer(policies.app, name="policies")
app.add_typer(deployments.app, name="deployments")
app.add_typer(promotions.app, name="promotions")
app.add_typer(audit.app, name="audit")
app.add_typer(jobs.app, name="jobs")
app.add_typer(webhooks.app, name="webhooks")


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point (``adapter-registry``, ``python -m registry``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if COMPLETE_VAR in os.environ:  # shell completion (README, "CLI"): only then load it
        from typer._completion_classes import completion_init  # typer has no public name

        completion_init()
    command = root_command(app, RegistryGroup)
    try:
        result = command.main(args=args, prog_name="adapter-registry", standalone_mode=False)
    except typer.TyperException as exc:  # usage errors (exit 2), help on a bare group
        is_help = type(exc).__name__ == "NoArgsIsHelpError"
        if json_requested(args) and not is_help:
            write_stdout(dumps({"error": "usage", "detail": exc.format_message(), "context": {}}))
        else:
            show = getattr(exc, "show", None)
            if callable(show):
                show()
            else:
                typer.echo(f"Error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("Aborted.", err=True)
        sys.exit(EXIT_UNEXPECTED)
    sys.exit(result if isinstance(result, int) else 0)
