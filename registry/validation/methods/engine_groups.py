"""Which of a method's tensors must be saved (:func:`check_roles`), and shared tensors saved once
per group of modules (``{group}`` in a shared role's suffix, ``Method.group``: FRoD's projections
per category), checked against each module of their group (:class:`GroupedShared`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from registry.errors import InconsistentAdapter
from registry.validation.methods.spec import GROUP, Method, Role
from registry.validation.safetensors import TensorInfo

INT_DTYPES = frozenset({"I8", "I16", "I32", "I64", "U8", "U16", "U32", "U64"})
Switches = Mapping[str, int | bool | float]


class ShapeChecker(Protocol):
    def check(self, role: Role, info: TensorInfo, module: str, base: Mapping[str, Any]) -> None:
        """Raise on a shape that does not fit ``role`` (binding names it shows first)."""


def _fail(reason: str, detail: str, **context: Any) -> None:
    raise InconsistentAdapter(detail, reason=reason, context=context)


def wanted(role: Role, switches: Switches) -> bool | None:
    """True: must be saved; False: must not; None: may be."""
    if role.required is True:
        return True
    if role.required is False:
        return None
    if role.required.startswith("!"):
        return not switches[role.required[1:]]
    return bool(switches[role.required])


def check_roles(
    parts: Mapping[str, TensorInfo],
    roles: tuple[Role, ...],
    owner: str,
    switches: Switches,
    tensor_name: Callable[[str], str],
) -> None:
    """Raises InconsistentAdapter ``missing_tensor``, ``unexpected_tensor`` (saved although its
    switch is off) or ``dtype_mismatch`` (indices that are not integers)."""
    for role in roles:
        want = wanted(role, switches)
        info = parts.get(role.suffix)
        if want and info is None:
            _fail(
                "missing_tensor",
                f"{role.suffix} missing",
                module=owner,
                tensor=tensor_name(role.suffix),
            )
        if want is False and info is not None:
            _fail(
                "unexpected_tensor",
                f"{role.suffix} saved although {role.required} is false",
                module=owner,
                tensor=info.name,
            )
        if info is not None and role.indices and info.dtype not in INT_DTYPES:
            _fail(
                "dtype_mismatch",
                f"{role.suffix} must hold integers",
                module=owner,
                tensor=info.name,
                actual=info.dtype,
            )


def is_grouped(role: Role) -> bool:
    return GROUP in role.suffix


class GroupedShared:
    """The shared tensors of ``{group}`` roles: each module checks its group's, and whatever no
    module's group claims is unexpected."""

    def __init__(self, method: Method, shared: Mapping[str, TensorInfo], prefix: str) -> None:
        self.method = method
        self.roles = tuple(role for role in method.shared if is_grouped(role))
        self.parts = dict(shared)
        self.prefix = prefix
        self.claimed: set[str] = set()

    def check(self, module: str, shapes: ShapeChecker, switches: Switches) -> None:
        if not self.roles:
            return
        assert self.method.group is not None  # Method.__post_init__ requires it
        name = self.method.group(module)
        roles = tuple(replace(r, suffix=r.suffix.replace(GROUP, name)) for r in self.roles)
        check_roles(self.parts, roles, module, switches, lambda suffix: self.prefix + suffix)
        for role in roles:
            info = self.parts.get(role.suffix)
            if info is not None:
                shapes.check(role, info, module, {})
                self.claimed.add(role.suffix)

    def finish(self) -> None:
        """Raises InconsistentAdapter ``unexpected_tensor`` for a group no module belongs to."""
        for suffix in sorted(self.parts.keys() - self.claimed):
            _fail(
                "unexpected_tensor",
                f"{suffix} belongs to no group of the adapted modules",
                module="(shared)",
                tensor=self.prefix + suffix,
            )
