"""The shape expression language of method tables."""

from __future__ import annotations

import pytest

from registry.validation.methods.engine_patterns import expand_counts
from registry.validation.methods.spec import Method, Role, parse_dim, parse_shape


def test_in_is_a_dimension_despite_being_a_keyword() -> None:
    dim = parse_dim("in // 2 + max_in")
    assert dim.names == {"in", "max_in"}
    assert dim.value({"in": 8, "max_in": 3}) == 7
    assert parse_dim("in").bare == "in"
    assert parse_dim(">=in").bare is None


def test_shapes_whole_scalar_and_any() -> None:
    assert parse_shape("weight") == "weight"
    assert parse_shape("") == ()
    dims = parse_shape("*, out")
    assert not isinstance(dims, str)
    any_dim, out = dims
    assert any_dim.value({}) is None
    assert out.value({"out": 4}) == 4


@pytest.mark.parametrize("text", ["in ** 2", "f(in)", "1.5", "in if r else out"])
def test_only_arithmetic_on_names_and_integers(text: str) -> None:
    with pytest.raises((ValueError, SyntaxError)):
        parse_dim(text)


def test_a_table_naming_an_unknown_dimension_is_refused_at_import() -> None:
    with pytest.raises(ValueError, match="unknown names"):
        Method("X", "x", "lora", roles=(Role("a", "r, in"),))
    Method("X", "x", "lora", roles=(Role("a", "r, in"),), dims={"r": 8})


def test_negated_switches_patterns_and_counts_are_checked_at_import() -> None:
    roles = (Role("a", "r", required="!only_b"), Role("b.{i}", "r", count="depth"))
    Method("X", "x", "vector", roles=roles, dims={"r": 2, "only_b": False, "depth": 1})
    with pytest.raises(ValueError, match="unknown switch"):
        Method("X", "x", "vector", roles=(Role("a", "r", required="!nope"),), dims={"r": 2})
    with pytest.raises(ValueError, match="unknown count"):
        Method("X", "x", "vector", roles=(Role("a.{i}", "r", count="n"),), dims={"r": 2})
    with pytest.raises(ValueError, match="pattern"):
        Method("X", "x", "vector", roles=(Role("a", "r"),), dims={"r": 2}, patterns={"n": "p"})
    with pytest.raises(ValueError, match="pattern"):
        Method("X", "x", "vector", roles=(Role("a", "r"),), dims={"r": 2}, unpinned={"r": "s"})


def test_counted_roles_expand_per_index() -> None:
    method = Method(
        "X",
        "x",
        "vector",
        roles=(Role("a", "r"), Role("e.{i}.w", "r, r", count="depth")),
        dims={"r": 2, "depth": 2},
    )
    expanded = expand_counts(method, {"r": 2, "depth": 2})
    assert [role.suffix for role in expanded.roles] == ["a", "e.0.w", "e.1.w"]
    assert all(not role.count for role in expanded.roles)
    assert expand_counts(method, {"r": 2, "depth": 0}).roles == (Role("a", "r"),)


def test_min_and_max_derive_dimensions_and_keep_axes_apart() -> None:
    dims = parse_shape("(min(in, out) + r - 1) // r, max(in, out)")
    assert not isinstance(dims, str)
    bases, largest = dims
    assert bases.names == {"in", "out", "r"}
    assert (bases.value({"in": 32, "out": 16, "r": 12}), largest.value({"in": 32, "out": 16})) == (
        2,
        32,
    )
    assert bases.bare is None
    for bad in ("min(in)", "abs(in, out)", "min(in, out=2)"):
        with pytest.raises(ValueError, match="only min"):
            parse_dim(bad)
