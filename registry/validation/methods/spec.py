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
* ``weight``/``bias`` as a whole shape - exactly the base weight's (bias's) shape.

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
numbering them from 0 (peft's ``nn.ModuleList``: ``peanut_encoders.{i}.weight``). ``unpinned``
maps a dimension to a switch that, when on, leaves it to be bound by each module's tensors.

This module has no dependency on the rest of the validator: tables import only it.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

#: Names the base supplies (a mismatch on them is ``incompatible_base``, not the adapter's own).
BASE_NAMES: frozenset[str] = frozenset({"in", "out", "k", "max_in", "max_out"})
#: Whole-shape tokens.
WHOLE_SHAPES: frozenset[str] = frozenset({"weight", "bias"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_OPS = (ast.Add, ast.Sub, ast.Mult, ast.FloorDiv)
#: The functions an expression may call (on two or more arguments).
_CALLS = {"min": min, "max": max}
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
        calls = {id(n.func) for n in ast.walk(self.expr) if isinstance(n, ast.Call)}
        return frozenset(
            _name(n) for n in ast.walk(self.expr) if isinstance(n, ast.Name) and id(n) not in calls
        )

    @property
    def bare(self) -> str | None:
        """The name when the dimension is just a name (it may then bind it)."""
        return _name(self.expr) if isinstance(self.expr, ast.Name) and not self.at_least else None

    def value(self, env: Mapping[str, int]) -> int | None:
        """The expected size, or None while a name it needs is unknown."""
        if self.expr is None or not self.names <= env.keys():
            return None
        return _evaluate(self.expr, env)


def _evaluate(node: ast.expr, env: Mapping[str, int]) -> int:
    if isinstance(node, ast.Constant):
        assert type(node.value) is int  # parse_dim lets no other constant through
        return node.value
    if isinstance(node, ast.Name):
        return env[_name(node)]
    if isinstance(node, ast.Call):
        assert isinstance(node.func, ast.Name)  # _check_expr lets no other call through
        return int(_CALLS[node.func.id](_evaluate(arg, env) for arg in node.args))
    assert isinstance(node, ast.BinOp)
    left, right = _evaluate(node.left, env), _evaluate(node.right, env)
    if isinstance(node.op, ast.Add):
        return left + right
    if isinstance(node.op, ast.Sub):
        return left - right
    if isinstance(node.op, ast.Mult):
        return left * right
    return left // right if right else -1  # a zero divisor never matches a real size


def _check_expr(node: ast.AST, text: str) -> None:
    if isinstance(node, ast.Call):
        ok_call = isinstance(node.func, ast.Name) and node.func.id in _CALLS
        if not ok_call or node.keywords or len(node.args) < 2:
            raise ValueError(f"shape expression {text!r}: only min(a, b, ...) and max(a, b, ...)")
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
    #: A dims key: the role is a list of that many tensors, ``{i}`` in ``suffix`` numbering them.
    count: str = ""

    @cached_property
    def dims(self) -> tuple[Dim, ...] | str:
        return parse_shape(self.shape)


@dataclass(frozen=True)
class Method:
    """One adaptation method: its tensors, its config dimensions, and how to name it."""

    peft_type: str
    #: Words for people ("Vector-based Random Matrix Adaptation (VeRA)").
    title: str
    #: The family it is listed under (``lora``, ``orthogonal``, ``vector``, ``sparse``, ...).
    family: str
    roles: tuple[Role, ...]
    #: Config key -> peft's default, for the integer dimensions and boolean switches used above.
    dims: Mapping[str, int | bool] = field(default_factory=dict)
    shared: tuple[Role, ...] = ()
    #: Where peft's code for it lives (for whoever updates the table).
    source: str = ""
    #: Dimension -> config key of its per-module override dict (see the module docstring).
    patterns: Mapping[str, str] = field(default_factory=dict)
    #: Dimension -> boolean dims key: when that switch is on, peft sizes the dimension per module
    #: from the whole model (WaveFT's ``proportional_parameters``): it is bound, not checked.
    unpinned: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        known = set(self.dims) | BASE_NAMES
        for role in (*self.roles, *self.shared):
            dims = role.dims
            names = set() if isinstance(dims, str) else set().union(*(d.names for d in dims))
            if not names <= known:
                raise ValueError(f"{self.peft_type}.{role.suffix}: unknown names {names - known}")
            if role.count and role.count not in self.dims:
                raise ValueError(f"{self.peft_type}.{role.suffix}: unknown count")
            if isinstance(role.required, str) and role.required.lstrip("!") not in self.dims:
                raise ValueError(f"{self.peft_type}.{role.suffix}: unknown switch")
        if not {*self.patterns, *self.unpinned, *self.unpinned.values()} <= set(self.dims):
            raise ValueError(f"{self.peft_type}: a pattern for an unknown dimension")
        if any(not _NAME.match(key) for key in self.dims):
            raise ValueError(f"{self.peft_type}: bad dims key")
