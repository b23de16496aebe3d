"""Check an adapter's tensors against its method's table (:mod:`registry.validation.methods.spec`).

Order: the config's dimensions (``invalid_adapter_config`` ``schema`` for a wrong type); the
tensors sorted into per-module roles, shared tensors and saved extras
(:func:`~registry.validation.layout.classify`: ``unexpected_tensor`` for a name the method does
not save or a module the config does not target); each module's required tensors
(``missing_tensor``) and no tensor its switches turn off (``unexpected_tensor``); shapes, first
against each other and the config (``inconsistent_adapter`` ``shape_mismatch``), then, with a
base, against the base weights (``incompatible_base`` ``missing_modules``/``shape_mismatch``);
shared tensors last (``missing_tensor`` when a switch says they were saved). The findings name
the saved tensors that are buffers (``Role.buffer``/``indices``), which the report's
``trainable_params`` leaves out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

from registry.errors import IncompatibleBase, InconsistentAdapter, InvalidAdapterConfig
from registry.validation.checks_base import base_tensor, base_weights, check_extras, is_conv1d
from registry.validation.config import AdapterConfig
from registry.validation.layout import PEFT_PREFIX, AdapterLayout, ModuleTensors, classify
from registry.validation.manifest import BaseManifest
from registry.validation.methods.engine_groups import GroupedShared, check_roles, is_grouped
from registry.validation.methods.engine_patterns import expand_counts, module_ints
from registry.validation.methods.engine_variants import active_roles, add_derived, check_inactive
from registry.validation.methods.spec import BASE_NAMES, GROUP, Dim, Method, Role
from registry.validation.safetensors import TensorInfo

#: Where peft saves a model-wide tensor: ``base_model.<name>``.
SHARED_PREFIX = "base_model."


@dataclass
class MethodFindings:
    """What the checks learnt (for the validation report)."""

    targets: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    rank: int | None = None
    checked: bool = False
    #: The saved tensors whose role is a buffer (:attr:`Role.is_buffer`), and the saved copies
    #: of a parameter shared across layers (a method's check adds them), by full name: not
    #: counted in the report's ``trainable_params``.
    buffers: list[str] = field(default_factory=list)


def config_dims(cfg: AdapterConfig, method: Method) -> dict[str, int | bool | float]:
    """The method's dimensions and switches from the config (``null`` or absent: the default).

    Raises:
        InvalidAdapterConfig: ``schema``.
    """
    values: dict[str, int | bool | float] = {}
    for key, default in method.dims.items():
        value = cfg.raw.get(key)
        if value is None:
            value = default
        wanted: tuple[type, ...] = (type(default),)
        if wanted == (float,):
            wanted = (float, int)  # JSON writes 1.0 as 1 for some writers
        number = type(value) is not bool and isinstance(value, int | float)
        if type(value) not in wanted or (number and not 0 <= value < float("inf")):
            kind = {bool: "a boolean", int: "a non-negative integer"}.get(
                type(default), "a non-negative number"
            )
            raise InvalidAdapterConfig(
                f"{key} must be {kind}",
                reason="schema",
                context={"file": "adapter_config.json", "field": key},
            )
        values[key] = value
    return values


def _fail(
    error: type[InconsistentAdapter] | type[IncompatibleBase],
    reason: str,
    detail: str,
    **context: Any,
) -> NoReturn:
    raise error(detail, reason=reason, context=context)


class _Shapes:
    """Binds and checks named dimensions; remembers which names the base supplied."""

    def __init__(self, env: Mapping[str, int], from_base: frozenset[str]) -> None:
        self.env = dict(env)
        self.from_base = from_base
        #: A dimension was left unchecked for a name not yet known (a second pass may check it).
        self.skipped = False

    def check(self, role: Role, info: TensorInfo, module: str, base: Mapping[str, Any]) -> None:
        dims = role.dims
        if isinstance(dims, str):  # the whole base weight/bias shape
            expected = base.get(dims)
            if expected is not None and tuple(expected) != info.shape:
                self._mismatch(info, module, list(expected), True, f"{role.suffix} != base {dims}")
            return
        if len(dims) != len(info.shape):
            self._mismatch(info, module, [d.text for d in dims], False, f"{role.suffix} rank")
        for axis, (dim, actual) in enumerate(zip(dims, info.shape, strict=True)):
            self._dim(dim, actual, axis, role, info, module)

    def _dim(
        self, dim: Dim, actual: int, axis: int, role: Role, info: TensorInfo, module: str
    ) -> None:
        name = dim.bare
        if name is not None and name not in self.env:
            self.env[name] = actual  # the first tensor that shows a name binds it
            return
        expected = dim.value(self.env)
        if expected is None:
            self.skipped = dim.expr is not None
            return  # needs a name not bound yet, or only a base could give
        ok = actual >= expected if dim.at_least else actual == expected
        if not ok:
            base = bool(dim.names & self.from_base)
            what = f"{role.suffix} axis {axis} ({dim.text})"
            self._mismatch(info, module, expected, base, what, actual=actual)

    @staticmethod
    def _mismatch(
        info: TensorInfo, module: str, expected: Any, base: bool, what: str, actual: Any = None
    ) -> NoReturn:
        got = list(info.shape) if actual is None else actual
        error = IncompatibleBase if base else InconsistentAdapter
        _fail(
            error,
            "shape_mismatch",
            f"{what}: expected {expected}, got {got}",
            tensor=info.name,
            module=module,
            expected=expected,
            actual=got,
        )


def _base_env(
    cfg: AdapterConfig, manifest: BaseManifest, module: str, weight: tuple[int, ...]
) -> dict[str, int]:
    if len(weight) == 1:
        return {"out": weight[0]}
    if len(weight) == 2:
        conv1d = is_conv1d(cfg, manifest, module)
        fin, fout = (weight[0], weight[1]) if conv1d else (weight[1], weight[0])
        biased = int(base_tensor(manifest, module + ".bias") is not None)
        return {"in": fin, "out": fout, "fan_in": fin, "conv": 0, "biased": biased}
    if len(weight) == 4:
        k = weight[2] * weight[3]
        return {"in": weight[1], "out": weight[0], "k": k, "fan_in": weight[1] * k, "conv": 1}
    return {}


def _counted(role: Role) -> re.Pattern[str]:
    """The full names of a shared role still counted (``tinylora_v.{i}``: any index) or saved
    per group (``frod_V.{group}``: any name without a dot)."""
    parts = (SHARED_PREFIX + role.suffix).replace(GROUP, "{i}").split("{i}")
    return re.compile(("[0-9]+" if role.count else "[^.]+").join(re.escape(p) for p in parts))


def _split_shared(
    tensors: Mapping[str, TensorInfo], method: Method
) -> tuple[dict[str, TensorInfo], dict[str, TensorInfo]]:
    names = {SHARED_PREFIX + role.suffix: role.suffix for role in method.shared if not role.count}
    counted = [_counted(role) for role in method.shared if role.count or is_grouped(role)]
    # One pattern for all counted roles: one C-level match per tensor.
    either = re.compile("|".join(f"(?:{p.pattern})" for p in counted)) if counted else None
    shared: dict[str, TensorInfo] = {}
    rest: dict[str, TensorInfo] = {}
    for name, info in tensors.items():
        if name in names:
            shared[names[name]] = info
        elif either is not None and either.fullmatch(name):
            shared[name.removeprefix(SHARED_PREFIX)] = info
        else:
            rest[name] = info
    return shared, rest


def check_method(
    cfg: AdapterConfig, method: Method, tensors: Mapping[str, TensorInfo], base: BaseManifest | None
) -> MethodFindings:
    """Check ``tensors`` against ``method`` (and ``base`` when given); see the module docstring.

    Raises:
        InvalidAdapterConfig: ``schema``.
        InconsistentAdapter: ``unexpected_tensor``, ``missing_tensor``, ``shape_mismatch``.
        IncompatibleBase: ``missing_modules``, ``shape_mismatch``.
    """
    dims = config_dims(cfg, method)
    if method.check is not None and not method.roles and not method.shared:
        return _run_hook(cfg, method, tensors, base, MethodFindings())
    method = expand_counts(method, dims)
    ints = {k: v for k, v in dims.items() if type(v) is int}
    numbers = {k: v for k, v in dims.items() if type(v) is float}
    shared, rest = _split_shared(tensors, method)
    layout: AdapterLayout = classify(rest, cfg, {role.suffix: role.suffix for role in method.roles})
    method = expand_counts(method, {**dims, "modules": len(layout.modules)})
    buffers = _buffers(method, layout.modules, shared)
    grouped = GroupedShared(method, _grouped_parts(method, shared), SHARED_PREFIX)
    shared = {k: v for k, v in shared.items() if k not in grouped.parts}
    found = MethodFindings(targets=sorted(layout.modules), buffers=buffers)
    weights = base_weights(cfg, layout, base, found.warnings) if base is not None else {}
    sizes: dict[str, list[int]] = {"in": [], "out": []}
    roles = active_roles(cfg, method.roles, dims)
    # Modules of one kind (q_proj of every layer) repeat the same shape check: a check that
    # passed is remembered by everything it reads (the names bound so far, the base's shapes, the
    # tensors' suffixes and shapes), and its outcome (the names it bound) reused.
    passed: dict[tuple[Any, ...], tuple[dict[str, int], frozenset[str]]] = {}
    for module, group in sorted(layout.modules.items()):
        check_inactive(group.parts, roles, module)
        check_roles(
            group.parts,
            roles,
            module,
            dims,
            functools.partial("{}{}.{}".format, PEFT_PREFIX, module),
        )
        shapes = _module_shapes(cfg, base, weights, module, module_ints(cfg, method, module, ints))
        base_shapes = _whole_shapes(base, weights, module)
        key = (
            tuple(shapes.env.items()),
            shapes.from_base,
            tuple(base_shapes.items()),
            tuple((suffix, info.shape) for suffix, info in group.parts.items()),
        )
        seen = passed.get(key)
        if seen is None:
            _check_shapes(method, roles, numbers, shapes, group.parts, module, base_shapes)
            passed[key] = (dict(shapes.env), shapes.from_base)
        else:
            shapes = _Shapes(seen[0], seen[1])
        grouped.check(module, shapes, dims)
        for name in ("in", "out"):
            if name in shapes.env:
                sizes[name].append(shapes.env[name])
    if base is not None:
        check_extras(cfg, layout, base)
        found.checked = True
    grouped.finish()
    _check_shared(method, shared, dims, ints, sizes, base is not None)
    rank = ints.get("r")
    found.rank = rank
    return _run_hook(cfg, method, tensors, base, found)


def _check_shapes(
    method: Method,
    roles: tuple[Role, ...],
    numbers: Mapping[str, float],
    shapes: _Shapes,
    parts: Mapping[str, TensorInfo],
    module: str,
    base_shapes: Mapping[str, tuple[int, ...]],
) -> None:
    """One module's tensors against its roles, binding names in ``shapes`` as they show."""
    shapes.from_base = add_derived(method, shapes.env, shapes.from_base, numbers)
    underived = not method.derived.keys() <= shapes.env.keys()
    for again in (False, True):  # again: dims and derived names that needed a later tensor
        if again and not (shapes.skipped or underived):
            break
        if again:
            shapes.from_base = add_derived(method, shapes.env, shapes.from_base, numbers)
        for role in roles:
            info = parts.get(role.suffix)
            if info is not None:
                shapes.check(role, info, module, base_shapes)


def _buffers(
    method: Method, modules: Mapping[str, ModuleTensors], shared: Mapping[str, TensorInfo]
) -> list[str]:
    """The full names of the saved tensors whose role (per module or shared, counted or per
    group) is a buffer."""
    suffixes = {role.suffix for role in method.roles if role.is_buffer}
    names = [
        info.name
        for group in modules.values()
        for suffix, info in group.parts.items()
        if suffix in suffixes
    ]
    patterns = [_counted(role) for role in method.shared if role.is_buffer]
    names += [
        info.name for info in shared.values() if any(p.fullmatch(info.name) for p in patterns)
    ]
    return sorted(names)


def _grouped_parts(method: Method, shared: Mapping[str, TensorInfo]) -> dict[str, TensorInfo]:
    patterns = [_counted(role) for role in method.shared if is_grouped(role)]
    return {
        suffix: info
        for suffix, info in shared.items()
        if any(p.fullmatch(SHARED_PREFIX + suffix) for p in patterns)
    }


def _run_hook(
    cfg: AdapterConfig,
    method: Method,
    tensors: Mapping[str, TensorInfo],
    base: BaseManifest | None,
    found: MethodFindings,
) -> MethodFindings:
    """The method's own check (:data:`~registry.validation.methods.spec.MethodCheck`), if any."""
    if method.check is not None:
        method.check(cfg, tensors, base, found)
    return found


def _module_shapes(
    cfg: AdapterConfig,
    base: BaseManifest | None,
    weights: Mapping[str, Any],
    module: str,
    ints: Mapping[str, int],
) -> _Shapes:
    if base is None:
        return _Shapes(ints, frozenset())
    env = _base_env(cfg, base, module, weights[module][1])
    return _Shapes({**ints, **env}, frozenset(env))


def _whole_shapes(
    base: BaseManifest | None, weights: Mapping[str, Any], module: str
) -> dict[str, tuple[int, ...]]:
    if base is None:
        return {}
    shapes = {"weight": tuple(weights[module][1])}
    bias = base.tensors.get(module + ".bias")
    if bias is not None:
        shapes["bias"] = tuple(bias[1])
    return shapes


def _check_shared(
    method: Method,
    shared: Mapping[str, TensorInfo],
    switches: Mapping[str, int | bool | float],
    ints: Mapping[str, int],
    sizes: Mapping[str, list[int]],
    with_base: bool,
) -> None:
    roles = tuple(role for role in method.shared if not is_grouped(role))
    check_inactive(shared, roles, "(shared)")  # a counted role's index past its count
    check_roles(shared, roles, "(shared)", switches, lambda suffix: SHARED_PREFIX + suffix)
    env = dict(ints)
    for name in ("in", "out"):
        if sizes[name]:
            env[f"max_{name}"] = max(sizes[name])
    shapes = _Shapes(env, BASE_NAMES if with_base else frozenset())
    for role in roles:
        info = shared.get(role.suffix)
        if info is not None:
            shapes.check(role, info, "(shared)", {})
