"""Start-up speed of ``adapter-registry``: build only the part of the command tree a run uses.

Typer turns the whole tree of ``Typer`` apps into click commands before it parses anything
(inspecting every command's signature: most of ``--help``'s time once the modules are
imported), and coerces every option value through a pydantic ``TypeAdapter`` (importing
pydantic, ~0.1 s, even for ``adapters --help``). :func:`root_command` instead builds the root
group with its own commands only; a command group is built when it is looked up (the one
being run), and the root's ``--help`` lists the groups from their help text alone. The root's
own options (``--server``, ``--token``, ``--output``) take a valid value as it is, leaving
pydantic to typer for anything else (so its error messages stay as they were).

Everything here is an optimisation of the same tree: ``typer.main.get_command(app)`` (what
``CliRunner`` and the tests use) still builds it whole, with the same names, help and options.
"""

from __future__ import annotations

import types
from collections.abc import Iterable
from enum import Enum
from typing import TYPE_CHECKING, Any, Union, get_args, get_origin

import typer
from typer import main as typer_main

try:  # typer's internals (0.2x, the version constraints.txt pins)
    from typer._click import Command, Context
    from typer._coercion import build_runtime_param
    from typer.core import TyperCommand

    INTERNALS = True
except ImportError:  # pragma: no cover - another typer: it builds the whole tree, as before
    INTERNALS = False

if TYPE_CHECKING:
    from registry.cli import RegistryGroup


class LazyGroups:
    """The command groups of a root group not built yet (``TyperInfo`` by name, in order)."""

    def __init__(self, app: typer.Typer, infos: list[Any]) -> None:
        self._app = app
        self.infos: dict[str, Any] = {str(info.name): info for info in infos}
        self.listing = False  # True while the root's --help lists its commands

    def build(self, ctx: Context, name: str) -> Command | None:
        """The click group ``name`` (None: not one of ours), built as typer builds it; the
        ``--help`` options of it and its sub-groups coerced without pydantic."""
        info = self.infos.pop(name, None)
        if info is None:
            return None
        group = typer_main.get_group_from_info(
            info,
            pretty_exceptions_short=self._app.pretty_exceptions_short,
            rich_markup_mode=self._app.rich_markup_mode,
            suggest_commands=self._app.suggest_commands,
        )
        groups: list[Any] = [group]
        while groups:
            current = groups.pop()
            plain_options([current.get_help_option(ctx)])
            groups.extend(c for c in current.commands.values() if hasattr(c, "commands"))
        return group

    def stub(self, name: str) -> Command | None:
        """What the root's command list shows of group ``name``: its name and help."""
        info = self.infos.get(name)
        if info is None:
            return None
        solved = typer_main.solve_typer_info_defaults(info)
        return TyperCommand(
            name,
            help=solved.help,
            short_help=solved.short_help,
            hidden=bool(solved.hidden),
            deprecated=solved.deprecated,
        )


def root_command(app: typer.Typer, cls: type[RegistryGroup]) -> RegistryGroup:
    """The root group of ``app`` with its command groups built on first use: until then its
    ``commands`` hold, in typer's order, a stub of each group (name and help)."""
    if not INTERNALS:  # pragma: no cover
        whole = typer_main.get_command(app)
        assert isinstance(whole, cls)
        return whole
    groups = list(app.registered_groups)
    app.registered_groups = []
    try:
        root = typer_main.get_command(app)
    finally:
        app.registered_groups = groups
    assert isinstance(root, cls)
    root.lazy = LazyGroups(app, groups)
    for name in root.lazy.infos:
        stub = root.lazy.stub(name)
        if stub is not None:
            root.commands[name] = stub
    plain_options(root.params)
    return root


class _PlainValue:
    """Coercion of a root option: a valid ``str`` / ``bool`` / enum value as it is, anything
    else (a mistyped ``--output``) by typer's own (pydantic) coercion, built only then."""

    def __init__(self, param: Any, kind: type[Any]) -> None:
        self._param = param
        self._kind = kind

    def coerce(self, value: Any, param: Any, ctx: Context) -> Any:
        if value is None or isinstance(value, self._kind):
            return value
        if issubclass(self._kind, Enum) and value in {m.value for m in self._kind}:
            return self._kind(value)
        real = build_runtime_param(self._param.type_descriptor)
        self._param._runtime_param = real
        return real.coerce(value, param=param, ctx=ctx)


def plain_options(params: Iterable[Any]) -> None:
    """Give the root's ``str``, ``bool`` and enum options (``--help`` too)
    :class:`_PlainValue` coercion (where typer keeps its lazily built coercion in
    ``_runtime_param``; otherwise nothing changes)."""
    for param in params:
        if param is None or getattr(param, "_runtime_param", "absent") is not None:
            continue
        annotation = param.type_descriptor.annotation
        if get_origin(annotation) in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            annotation = args[0] if len(args) == 1 else None
        if annotation in (str, bool) or (
            isinstance(annotation, type) and issubclass(annotation, Enum)
        ):
            param._runtime_param = _PlainValue(param, annotation)
