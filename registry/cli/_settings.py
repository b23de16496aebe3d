"""Server settings for the server-side commands, with errors that name the variable.

``Settings()`` reads ``REGISTRY_*`` variables; a bad value raises pydantic's ValidationError
(or pydantic-settings' SettingsError for a list/dict value that is not JSON), whose text
names a *field path* and drags a traceback along. An operator needs the environment variable
to fix, so :func:`load_settings` turns both into :class:`InvalidSettings` naming it; the
command prints it and exits 2 (``invalid_settings``). Values are never echoed: a database URL
or an S3 key may be in them.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NoReturn, get_args, get_origin

if TYPE_CHECKING:
    from registry.cli._output import State
    from registry.settings import Settings

PREFIX = "REGISTRY_"
EXIT_USAGE = 2
_NAMED = re.compile(r"REGISTRY_[A-Z0-9]+__[A-Z0-9_]+")


class InvalidSettings(Exception):
    """A ``REGISTRY_*`` variable holds a value the settings refuse."""

    def __init__(self, variable: str, reason: str) -> None:
        super().__init__(f"{variable}: {reason}")
        self.variable = variable
        self.reason = reason


def variable_for(loc: Sequence[int | str]) -> str:
    """``("storage", "bucket")`` -> ``REGISTRY_STORAGE__BUCKET``; list indexes are dropped
    (``("storage", "import_allowlist", 0)`` names the whole list); a bare group is
    ``REGISTRY_STORAGE__*``."""
    names = [str(part).upper() for part in loc if isinstance(part, str)]
    if len(names) < 2:
        return PREFIX + (names[0] + "__*" if names else "*")
    return PREFIX + "__".join(names[:2])


def _is_complex(annotation: Any) -> bool:
    """Fields that pydantic-settings reads as JSON from the environment."""
    origin = get_origin(annotation)
    if origin in (list, dict, set, tuple):
        return True
    return any(_is_complex(arg) for arg in get_args(annotation))


def _unparsable_json(settings_cls: type[Settings], environ: Mapping[str, str]) -> str | None:
    """The first ``REGISTRY_<GROUP>__<FIELD>`` whose field takes JSON and whose value is not."""
    present = {k.upper(): v for k, v in environ.items() if k.upper().startswith(PREFIX)}
    for group, field in settings_cls.model_fields.items():
        model = field.annotation
        fields = getattr(model, "model_fields", {})
        for name, sub in fields.items():
            variable = f"{PREFIX}{group.upper()}__{name.upper()}"
            if variable in present and _is_complex(sub.annotation):
                try:
                    json.loads(present[variable])
                except ValueError:
                    return variable
    return None


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """``get_settings()``, or :class:`InvalidSettings` naming the variable at fault."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from registry.settings import Settings, get_settings

    environ = os.environ if environ is None else environ
    try:
        settings = get_settings()
    except ValidationError as exc:
        first = exc.errors(include_url=False, include_input=False)[0]
        message = str(first["msg"]).removeprefix("Value error, ")
        variable = variable_for(first["loc"])
        if variable.endswith("*"):  # a check across fields names its variable in its message
            named = _NAMED.search(message)
            variable = named.group(0) if named is not None else variable
        raise InvalidSettings(variable, message) from None
    except SettingsError as exc:
        culprit = _unparsable_json(Settings, environ)
        if culprit is None:
            raise InvalidSettings(f"{PREFIX}*", str(exc)) from None
        raise InvalidSettings(culprit, 'not valid JSON (a list is written ["a", "b"])') from None
    _check_allowlist(settings)
    return settings


def _check_allowlist(settings: Settings) -> None:
    """The import allow-list is parsed by the S3 store at start-up; check it here too, so
    `serve` refuses a bad entry before any worker starts."""
    from registry.storage.imports import validate_allowlist

    try:
        validate_allowlist(settings.storage.import_allowlist)
    except ValueError as exc:
        raise InvalidSettings(f"{PREFIX}STORAGE__IMPORT_ALLOWLIST", str(exc)) from None


def settings_or_exit(state: State | None) -> Settings:
    """:func:`load_settings` for a command: a bad variable exits 2 with ``invalid_settings``."""
    try:
        return load_settings()
    except InvalidSettings as exc:
        fail(state, exc)


def fail(state: State | None, exc: InvalidSettings) -> NoReturn:
    from registry.cli._output import exit_with_error

    exit_with_error(
        state,
        "invalid_settings",
        f"environment variable {exc.variable}: {exc.reason}",
        {"variable": exc.variable},
        exit_code=EXIT_USAGE,
    )
