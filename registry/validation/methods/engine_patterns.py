"""Per-module overrides of a method's dimensions (``Method.patterns``: ``n_frequency_pattern``,
``rank_pattern``), resolved the way peft's ``get_pattern_key`` does, and counted roles
(``Role.count``: a dims key or an expression) expanded into one role per tensor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import NoReturn

from registry.errors import InvalidAdapterConfig
from registry.validation.config import AdapterConfig
from registry.validation.matching import pattern_lookup
from registry.validation.methods.spec import Method, Role, evaluate, expr_names, parse_expr


def module_ints(
    cfg: AdapterConfig, method: Method, module: str, ints: Mapping[str, int]
) -> dict[str, int]:
    """``ints`` with the dimensions the config's pattern dicts override for ``module``, less
    those an ``unpinned`` switch hands to peft's own per-module sizing.

    Raises:
        InvalidAdapterConfig: ``schema`` (a pattern that is not a dict of non-negative integers).
    """
    values = dict(ints)
    for dim, switch in method.unpinned.items():
        if cfg.raw.get(switch) is True:
            values.pop(dim, None)
    for dim, key in method.patterns.items():
        if dim not in values:
            continue
        pattern = cfg.raw.get(key) or {}
        if not isinstance(pattern, dict):
            _schema(key)
        value = pattern_lookup(cfg, pattern, module)
        if value is None:
            continue
        if type(value) is not int or value < 0:
            _schema(key)
        values[dim] = value
    return values


def _schema(key: str) -> NoReturn:
    raise InvalidAdapterConfig(
        f"{key} must map module names to non-negative integers",
        reason="schema",
        context={"file": "adapter_config.json", "field": key},
    )


def count_of(count: str, env: Mapping[str, float]) -> int | None:
    """How many tensors a counted role stands for, or None while a name it needs is unknown."""
    if count in env:
        return int(env[count])
    expr = parse_expr(count)
    return evaluate(expr, env) if expr_names(expr) <= env.keys() else None


#: Expanded tables by (the table's identity, the counts): expanding re-validates the whole table
#: (``Method.__post_init__``), too slow to repeat per upload. Tables live as long as the process.
#: Each entry keeps its source table too, so an identity is never reused while it is a key.
_EXPANDED: dict[tuple[int, tuple[tuple[str, int | None], ...]], tuple[Method, Method]] = {}
_EXPANDED_MAX = 512


def expand_counts(method: Method, env: Mapping[str, float]) -> Method:
    """``method`` with each counted role replaced by its count of roles numbered from 0; a role
    whose count needs a name ``env`` lacks (``modules``, before the layout) stays counted."""
    counted = [role.count for role in (*method.roles, *method.shared) if role.count]
    if not counted:
        return method
    key = (id(method), tuple((c, count_of(c, env)) for c in counted))
    cached = _EXPANDED.get(key)
    if cached is None or cached[0] is not method:
        if len(_EXPANDED) >= _EXPANDED_MAX:
            _EXPANDED.clear()
        cached = _EXPANDED[key] = (method, _expand(method, env))
    return cached[1]


def _expand(method: Method, env: Mapping[str, float]) -> Method:

    def expand(roles: tuple[Role, ...]) -> tuple[Role, ...]:
        out: list[Role] = []
        for role in roles:
            count = count_of(role.count, env) if role.count else None
            if count is None:
                out.append(role)
                continue
            for i in range(count):
                out.append(replace(role, suffix=role.suffix.replace("{i}", str(i)), count=""))
        return tuple(out)

    return replace(method, roles=expand(method.roles), shared=expand(method.shared))
