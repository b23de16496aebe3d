"""Roles that apply under conditions, and derived names (:mod:`~registry.validation.methods.spec`).

:func:`active_roles` keeps the roles whose ``when`` holds for the config; :func:`check_inactive`
refuses a saved tensor whose suffix has no role that applies (``unexpected_tensor``);
:func:`add_derived` computes a method's ``derived`` names once the names they need are known.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from registry.errors import InconsistentAdapter
from registry.validation.config import AdapterConfig
from registry.validation.methods.spec import (
    Condition,
    Method,
    Role,
    evaluate,
    expr_names,
    parse_expr,
    parse_when,
)
from registry.validation.safetensors import TensorInfo


def _written(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _holds(cond: Condition, cfg: AdapterConfig, dims: Mapping[str, int | bool | float]) -> bool:
    if cond.op == "true":
        return bool(dims[cond.key])
    if cond.op == "not":
        return not dims[cond.key]
    raw = cfg.raw.get(cond.key)
    value = dims[cond.key] if raw is None and cond.key in dims else raw
    return (_written(value) == cond.value) == (cond.op == "=")


def active_roles(
    cfg: AdapterConfig, roles: tuple[Role, ...], dims: Mapping[str, int | bool | float]
) -> tuple[Role, ...]:
    """The roles whose conditions hold for this config."""
    return tuple(r for r in roles if all(_holds(c, cfg, dims) for c in parse_when(r.when)))


def check_inactive(parts: Mapping[str, TensorInfo], roles: tuple[Role, ...], owner: str) -> None:
    """Raises InconsistentAdapter ``unexpected_tensor`` for a tensor no active role names."""
    wanted = {role.suffix for role in roles}
    if parts.keys() <= wanted:
        return
    for suffix, info in sorted(parts.items()):
        if suffix not in wanted:
            raise InconsistentAdapter(
                f"{suffix} is not saved with this config",
                reason="unexpected_tensor",
                context={"module": owner, "tensor": info.name},
            )


def add_derived(
    method: Method,
    env: dict[str, int],
    from_base: frozenset[str],
    numbers: Mapping[str, float] | None = None,
) -> frozenset[str]:
    """Add ``method.derived`` names to ``env`` where computable (``numbers``: float config keys
    they may also use); return the names the base gave (a derived name counts as the base's when
    it uses one)."""
    base = set(from_base)
    for name, text in method.derived.items():
        expr = parse_expr(text)
        needs = expr_names(expr)
        values = {**(numbers or {}), **env}
        if needs <= values.keys():
            env[name] = evaluate(expr, values)
            if needs & base:
                base.add(name)
    return frozenset(base)
