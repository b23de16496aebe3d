"""The shape expression language of method tables."""

from __future__ import annotations

import pytest

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
