"""The declarative description of an adaptation method's saved tensors (one table per method).

A :class:`Method` says which tensors peft (or another library) saves for each adapted module
(:class:`Role`: the suffix after the module path and the expected shape), which tensors it saves
once for the whole model (``shared``), and which config keys give the dimensions (``dims``, with
peft's defaults). Shapes are small expressions over named dimensions:

* ``in``/``out`` - the adapted module's input and output features, read from the base weight
  (``nn.Linear`` ``[out, in]``; transformers ``Conv1D`` ``[in, out]``; Conv2d ``[out, in, kh, kw]``
  with ``k = kh * kw``; a 1-D weight (a norm) gives ``out`` only);
* ``max_in``/``max_out`` - the largest ``in``/``out`` over the adapted modules (shared tensors);
* any key of ``dims`` - the config's value, or the default;
* ``fan_in`` - the input size a multiplicative method rotates: ``in`` for a linear layer,
  ``in * k`` for a Conv2d (in channels times kernel elements);
* ``biased`` - 1 when the (2-D) base module has a bias, else 0 (AdaMSS decomposes ``[W | b]``);
* ``conv`` - 1 for a Conv2d base module, 0 for a linear one, for layouts that differ
  (``1 + (out - 1) * conv`` is ``out`` on a Conv2d and 1 on a linear layer);
* ``weight``/``bias`` as a whole shape - exactly the base weight's (bias's) shape;
* any key of ``derived`` - a name computed from the others (``b = near_divisor(fan_in, r)``),
  known once every name it needs is.

Functions (:data:`FUNCTIONS`): ``min(a, b, ...)``, ``max(a, b, ...)``; ``near_divisor(n, x)`` -
the divisor of ``n`` nearest ``x`` (peft's ``adjust_oft_parameters``: OFT moves a block size that
does not divide the input); ``round(x)`` - Python's (and so peft's) round half to even;
``ceil(x)``. A value is truncated to an integer (peft's ``int(...)``) only at the end.

A name in ``bound`` is given by no config key and no base: the tensors bind it, so they must
agree on it (OSF's trainable SVD rank, which a fraction or a per-module pattern may set).

A role with ``when`` applies only when its conditions hold (comma-separated, all must hold):
``key`` (a dims key that is true / non-zero), ``not key``, ``key=value`` or ``key!=value`` (any
config key, compared as written in JSON without quotes: ``init_weights=bat``). Several roles may
share a suffix with different ``when`` - one variant of the tensor's shape each; a saved tensor
whose suffix has no role that applies is unexpected.

A dimension is an expression with ``+ - * //``, integers and ``min(a, b)``/``max(a, b)``
(``(min(in, out) + r - 1) // r``: RandLoRA's bases, rounded up) or ``out // block_size``, ``*`` for
any size, or ``>=expr`` for at least that much. A bare name not yet known is *bound* by the
first tensor that shows it, so the tensors of one module must agree with each other even when no
base is given; a dimension that needs a name nobody bound is checked only against a base.

A role's ``required`` is ``True``, ``False`` (optional), a boolean ``dims`` key (saved exactly
when it is true) or ``"!key"`` (saved exactly when it is false). ``patterns`` maps a dimension to
the config key of peft's per-module override dict (``n_frequency_pattern``, ``rank_pattern``):
a module whose path the dict's key matches (peft's ``get_pattern_key``) uses that value instead.
A role with ``count`` (a ``dims`` key) stands for that many tensors, ``{i}`` in its suffix
numbering them from 0 (peft's ``nn.ModuleList``: ``peanut_encoders.{i}.weight``); ``count`` may
also be an expression over ``dims`` and, for a shared role, ``modules`` - the number of modules
the adapter adapts, known once its tensors are sorted (TinyLoRA's shared vectors:
``max(1, round(modules * (1 - weight_tying)))``). A ``dims`` default that is a float makes a
float config key (``weight_tying``, ``sparse_rate``), usable in counts and ``derived`` only.
Shapes (and ``derived`` names) are checked twice per module, so a dimension that needs a name
only a later tensor binds (``min(r, in, out)`` before ``in`` is seen) is still checked.
``unpinned`` maps a dimension to a switch that, when on, leaves it to be bound by each module's
tensors.

A role with ``buffer`` is a tensor that is not a trained parameter: peft saves a buffer
(``register_buffer``, a ``BufferDict``: VeRA's random projections, TinyLoRA's SVD factors,
DeLoRA's weight norms, GLoRA's ``zeros``) or computes it at save time. An ``indices`` role
(integers) is a buffer too. The engine names the saved buffers (``MethodFindings.buffers``) and
the report's ``trainable_params`` leaves them out, so that it is peft's count of trainable
parameters. Roles that share a suffix (``when`` variants) must agree on it.

A shared role whose suffix has ``{group}`` is saved once per group of modules: ``Method.group``
maps a module path to its group's name (FRoD's projection category, ``self_attn_q_proj``). Its
shape is checked against every module of the group, in that module's names (``in``, and names the
module's tensors bound), so the group's modules must agree on it.

This module has no dependency on the rest of the validator: tables import only it.
"""

from __future__ import annotations

import ast
import functools
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

#: Names the base supplies (a mismatch on them is ``incompatible_base``, not the adapter's own).
BASE_NAMES: frozenset[str] = frozenset(
    {"in", "out", "k", "max_in", "max_out", "fan_in", "conv", "biased"}
)
#: In a shared role's suffix: the group's name (``Method.group``).
GROUP = "{group}"
#: Names the adapter's own layout gives (usable in a role's ``count``).
LAYOUT_NAMES: frozenset[str] = frozenset({"modules"})
#: Whole-shape tokens.
WHOLE_SHAPES: frozenset[str] = frozenset({"weight", "bias"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)


def near_divisor(n: int, x: int) -> int:
    """The divisor of ``n`` nearest ``x`` (ties: the lower); ``n`` when ``x >= n``."""
    if x >= n:
        return n
    if x <= 0:
        return -1  # never a real size
    higher = x
    while higher <= n and n % higher:
        higher += 1
    lower = x
    while lower > 1 and n % lower:
        lower -= 1
    return lower if x - lower <= higher - x else higher


#: Functions shape expressions may call.
FUNCTIONS: dict[str, Callable[..., int]] = {
    "near_divisor": near_divisor,
    "min": min,
    "max": max,
    "round": round,
    "ceil": math.ceil,
}
#: Functions with a fixed number of arguments (``min``/``max`` take two or more).
_ARITY: dict[str, int] = {"near_divisor": 2, "round": 1, "ceil": 1}
#: ``in`` is a Python keyword: expressions are parsed with it spelled ``in_`` (see :func:`_name`).
_IN = re.compile(r"\bin\b")
#: A comma between axes, not one inside ``min(...)``/``max(...)`` (calls do not nest parentheses).
_TOP_COMMA = re.compile(r",(?![^()]*\))")


def _name(node: ast.Name) -> str:
    """The dimension a parsed name stands for (``in_`` is ``in``)."""
    return "in" if node.id == "in_" else node.id


@dataclass(frozen=True)
class Dim:
    """One dimension of an expected shape."""

    text: str
    expr: ast.expr | None  # None: any size
    at_least: bool = False

    @property
    def names(self) -> frozenset[str]:
        if self.expr is None:
            return frozenset()
        return expr_names(self.expr)

    @property
    def bare(self) -> str | None:
        """The name when the dimension is just a name (it may then bind it)."""
        return _name(self.expr) if isinstance(self.expr, ast.Name) and not self.at_least else None

    def value(self, env: Mapping[str, int]) -> int | None:
        """The expected size, or None while a name it needs is unknown."""
        if self.expr is None or not self.names <= env.keys():
            return None
        return int(_evaluate(self.expr, env))


@functools.lru_cache(maxsize=4096)
def expr_names(expr: ast.expr) -> frozenset[str]:
    """The dimension names an expression uses (function names are not dimensions). Cached by
    the node's identity: the tables' parsed expressions live as long as the process."""
    funcs = {id(n.func) for n in ast.walk(expr) if isinstance(n, ast.Call)}
    return frozenset(
        _name(n) for n in ast.walk(expr) if isinstance(n, ast.Name) and id(n) not in funcs
    )


def _evaluate(node: ast.expr, env: Mapping[str, float]) -> float:
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)  # _check_expr lets only FUNCTIONS through
        args = [_evaluate(arg, env) for arg in node.args]
        return int(FUNCTIONS[node.func.id](*args))
    if isinstance(node, ast.Constant):
        assert type(node.value) is int  # parse_dim lets no other constant through
        return node.value
    if isinstance(node, ast.Name):
        return env[_name(node)]
    assert isinstance(node, ast.BinOp)
    left, right = _evaluate(node.left, env), _evaluate(node.right, env)  # int unless a float key
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return left // right if right else -1  # a zero divisor never matches a real size


def evaluate(expr: ast.expr, env: Mapping[str, float]) -> int:
    """The value of a parsed expression (every name it uses must be in ``env``), truncated to
    an integer (only a float config key makes it a float before that)."""
    return int(_evaluate(expr, env))


def _check_expr(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Call):
        func = node.func.id if isinstance(node.func, ast.Name) else ""
        arity = _ARITY.get(func)
        arity_ok = len(node.args) == arity if arity else len(node.args) >= 2
        if func not in FUNCTIONS or not arity_ok or node.keywords:
            raise ValueError(f"shape expression {text!r}: unknown function or arguments")
        for arg in node.args:
            _check_expr(arg, text)
        return
    ok = (
        isinstance(node, ast.Name)
        or (isinstance(node, ast.Constant) and type(node.value) is int)
        or (isinstance(node, ast.BinOp) and isinstance(node.op, _OPS))
    )
    if not ok:
        raise ValueError(f"shape expression {text!r}: only names, integers, + - * //, min, max")
    for child in ast.iter_child_nodes(node):
        if not isinstance(child, ast.operator | ast.expr_context):
            _check_expr(child, text)


@functools.lru_cache(maxsize=4096)
def parse_expr(text: str) -> ast.expr:
    """An arithmetic expression over names (``in`` allowed), checked like a dimension. Cached:
    a table's expressions are parsed once, not once per tensor (callers never mutate it)."""
    expr = ast.parse(_IN.sub("in_", text.strip()), mode="eval").body
    _check_expr(expr, text)
    return expr


def parse_dim(text: str) -> Dim:
    text = text.strip()
    if text == "*":
        return Dim(text, None)
    at_least = text.startswith(">=")
    body = text.removeprefix(">=").strip()
    expr = ast.parse(_IN.sub("in_", body), mode="eval").body
    _check_expr(expr, text)
    return Dim(text, expr, at_least)


def parse_shape(text: str) -> tuple[Dim, ...] | str:
    """``"r, in"`` -> dims; ``"weight"``/``"bias"`` stay whole-shape tokens; ``""`` is a scalar."""
    text = text.strip()
    if text in WHOLE_SHAPES:
        return text
    return tuple(parse_dim(part) for part in _TOP_COMMA.split(text)) if text else ()


@dataclass(frozen=True)
class Condition:
    """One condition of a role's ``when``: ``op`` is ``true``, ``not``, ``=`` or ``!=``."""

    key: str
    op: str
    value: str = ""


def parse_when(text: str) -> tuple[Condition, ...]:
    """``"not r, init_weights=bat"`` -> its conditions (all must hold)."""
    found: list[Condition] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        op = "!=" if "!=" in part else "=" if "=" in part else ""
        if op:
            key, value = (s.strip() for s in part.split(op, 1))
            found.append(Condition(key, op, value))
        elif part.startswith("not "):
            found.append(Condition(part.removeprefix("not ").strip(), "not"))
        else:
            found.append(Condition(part, "true"))
    for cond in found:
        if not _NAME.match(cond.key):
            raise ValueError(f"bad condition {text!r}")
    return tuple(found)


@dataclass(frozen=True)
class Role:
    """A tensor saved per adapted module (``suffix`` after the module path) or once per model
    (``shared``: the full key after ``base_model.``)."""

    suffix: str
    shape: str
    #: ``True``: always saved; ``False``: optional; a dims key: saved exactly when it is true;
    #: ``"!key"``: saved exactly when it is false.
    required: bool | str = True
    #: Integer tensors of indices into the base weight (sparse methods): checked to be integers.
    indices: bool = False
    #: Conditions on the config under which this role applies ("" - always); see the module doc.
    when: str = ""
    #: A dims key: the role is a list of that many tensors, ``{i}`` in ``suffix`` numbering them.
    count: str = ""
    #: A saved buffer, not a trained parameter (see the module doc; ``indices`` implies it).
    buffer: bool = False

    @cached_property
    def dims(self) -> tuple[Dim, ...] | str:
        return parse_shape(self.shape)

    @property
    def is_buffer(self) -> bool:
        """Left out of the trainable parameters: a buffer, or integer indices."""
        return self.buffer or self.indices


#: ``check(cfg, tensors, base, findings)``: called by the engine after the table's own checks
#: (a table with neither ``roles`` nor ``shared`` has none: the hook is then the whole check). It
#: raises the validator's errors and records into ``findings`` (``targets``, ``warnings``,
#: ``rank``, ``checked``). Typed loosely so that this module stays free of the validator.
MethodCheck = Callable[[Any, Mapping[str, Any], Any, Any], None]


@dataclass(frozen=True)
class Method:
    """One adaptation method: its tensors, its config dimensions, and how to name it."""

    peft_type: str
    #: Words for people ("Vector-based Random Matrix Adaptation (VeRA)").
    title: str
    #: The family it is listed under (``lora``, ``orthogonal``, ``vector``, ``sparse``, ...).
    family: str
    roles: tuple[Role, ...]
    #: Config key -> peft's default, for the integer dimensions and boolean switches used above
    #: (a float default: a float key, for counts only).
    dims: Mapping[str, int | bool | float] = field(default_factory=dict)
    shared: tuple[Role, ...] = ()
    #: Where peft's code for it lives (for whoever updates the table).
    source: str = ""
    #: Names computed from others (``{"b": "near_divisor(fan_in, oft_block_size)"}``), in order.
    derived: Mapping[str, str] = field(default_factory=dict)
    #: Names only the tensors give (bound by the first that shows them, never by config or base).
    bound: tuple[str, ...] = ()
    #: A check the table cannot express (see :data:`MethodCheck`).
    check: MethodCheck | None = field(default=None, compare=False)
    #: Dimension -> config key of its per-module override dict (see the module docstring).
    patterns: Mapping[str, str] = field(default_factory=dict)
    #: Dimension -> boolean dims key: when that switch is on, peft sizes the dimension per module
    #: from the whole model (WaveFT's ``proportional_parameters``): it is bound, not checked.
    unpinned: Mapping[str, str] = field(default_factory=dict)
    #: Module path -> the name of its group, for shared roles with ``{group}`` in their suffix.
    group: Callable[[str], str] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        floats = {key for key, value in self.dims.items() if type(value) is float}
        known = set(self.dims) - floats | BASE_NAMES | set(self.bound)
        for name, text in self.derived.items():
            if not expr_names(parse_expr(text)) <= known | floats or not _NAME.match(name):
                raise ValueError(f"{self.peft_type}.{name}: unknown names in {text!r}")
            known.add(name)
        for role in (*self.roles, *self.shared):
            dims = role.dims
            names = set() if isinstance(dims, str) else set().union(*(d.names for d in dims))
            if not names <= known:
                raise ValueError(f"{self.peft_type}.{role.suffix}: unknown names {names - known}")
            layout = role in self.shared  # only shared roles may be counted by the layout
            if GROUP in role.suffix and (not layout or self.group is None or role.count):
                raise ValueError(f"{self.peft_type}.{role.suffix}: a group role needs Method.group")
            if role.count and not self._count_ok(role.count, layout):
                raise ValueError(f"{self.peft_type}.{role.suffix}: unknown count")
            if isinstance(role.required, str) and role.required.lstrip("!") not in self.dims:
                raise ValueError(f"{self.peft_type}.{role.suffix}: unknown switch")
            for cond in parse_when(role.when):
                if cond.op in ("true", "not") and cond.key not in self.dims:
                    raise ValueError(f"{self.peft_type}.{role.suffix}: unknown switch")
        for roles in (self.roles, self.shared):
            kinds = {(role.suffix, role.is_buffer) for role in roles}
            if len(kinds) != len({suffix for suffix, _ in kinds}):
                raise ValueError(f"{self.peft_type}: variants of a suffix disagree on buffer")
        if not {*self.patterns, *self.unpinned, *self.unpinned.values()} <= set(self.dims):
            raise ValueError(f"{self.peft_type}: a pattern for an unknown dimension")
        if any(not _NAME.match(key) for key in self.dims):
            raise ValueError(f"{self.peft_type}: bad dims key")

    def _count_ok(self, count: str, layout: bool) -> bool:
        """A dims key, or an expression over dims keys (and, for a shared role, the names of
        :data:`LAYOUT_NAMES`)."""
        if count in self.dims:
            return True
        try:
            names = expr_names(parse_expr(count))
        except (ValueError, SyntaxError):
            return False
        return names <= set(self.dims) | (LAYOUT_NAMES if layout else frozenset())
