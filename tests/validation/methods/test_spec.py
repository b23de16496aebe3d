"""The shape expression language of method tables."""

from __future__ import annotations

import pytest

from registry.validation.methods import METHODS
from registry.validation.methods.engine_patterns import expand_counts
from registry.validation.methods.engine_variants import add_derived
from registry.validation.methods.spec import (
    Method,
    Role,
    near_divisor,
    parse_dim,
    parse_shape,
    parse_when,
)


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


def test_near_divisor_is_peft_adjust_oft_parameters() -> None:
    assert [near_divisor(32, x) for x in (8, 12, 7, 40, 32, 1)] == [8, 8, 8, 32, 32, 1]
    assert near_divisor(96, 10) == 8  # 8 and 12 are 2 away: the lower wins
    assert near_divisor(64, 0) == -1


def test_functions_in_expressions_only_from_the_list() -> None:
    dim = parse_dim("fan_in // near_divisor(fan_in, r)")
    assert dim.names == {"fan_in", "r"}
    assert dim.value({"fan_in": 32, "r": 5}) == 8  # 5 -> 4 blocks of 8
    with pytest.raises(ValueError, match="unknown function"):
        parse_dim("abs(in, out)")
    with pytest.raises(ValueError, match="unknown function"):
        parse_dim("near_divisor(in, out, r)")


def test_when_conditions_parse_and_name_known_switches() -> None:
    conds = parse_when("not r, block_share, init_weights=bat, init_weights!=mini")
    assert [(c.key, c.op, c.value) for c in conds] == [
        ("r", "not", ""),
        ("block_share", "true", ""),
        ("init_weights", "=", "bat"),
        ("init_weights", "!=", "mini"),
    ]
    with pytest.raises(ValueError, match="unknown switch"):
        Method("X", "x", "o", roles=(Role("a", "r", when="share"),), dims={"r": 1})
    Method("X", "x", "o", roles=(Role("a", "r", when="mode=x"),), dims={"r": 1})


def test_derived_names_need_known_names_and_count_as_the_bases() -> None:
    method = Method(
        "X", "x", "o", roles=(Role("a", "r, n"),), dims={"r": 4}, derived={"n": "fan_in // r"}
    )
    env = {"r": 4}
    assert add_derived(method, env, frozenset()) == frozenset()
    assert "n" not in env  # fan_in unknown without a base: n stays unbound
    env = {"r": 4, "fan_in": 32}
    assert add_derived(method, env, frozenset({"fan_in"})) == {"fan_in", "n"}
    assert env["n"] == 8
    with pytest.raises(ValueError, match="unknown names"):
        Method("X", "x", "o", roles=(), dims={}, derived={"n": "fan_in // r"})


def test_bound_names_are_known_to_the_table() -> None:
    with pytest.raises(ValueError, match="unknown names"):
        Method("X", "x", "o", roles=(Role("a", "low, in"),))
    Method("X", "x", "o", roles=(Role("a", "low, in"),), bound=("low",))


def test_conv_switches_a_layout_between_linear_and_conv2d() -> None:
    dim = parse_dim("1 + (out - 1) * conv")
    assert (dim.value({"out": 32, "conv": 0}), dim.value({"out": 32, "conv": 1})) == (1, 32)


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
        with pytest.raises(ValueError, match="unknown function"):
            parse_dim(bad)


def test_counts_may_be_expressions_over_dims_and_the_module_count() -> None:
    count = "max(1, round(modules * (1 - tying)))"
    method = Method(
        "X",
        "x",
        "vector",
        roles=(Role("a", "r"),),
        shared=(Role("v.{i}", "r", count=count),),
        dims={"r": 2, "tying": 0.0},
    )
    assert expand_counts(method, {"r": 2, "tying": 0.5}).shared == method.shared  # no modules yet
    shared = expand_counts(method, {"r": 2, "tying": 0.5, "modules": 5}).shared
    assert [role.suffix for role in shared] == ["v.0", "v.1"]  # round(2.5) = 2, as peft rounds
    with pytest.raises(ValueError, match="unknown count"):  # modules: shared roles only
        Method("X", "x", "vector", roles=(Role("a.{i}", "r", count="modules"),), dims={"r": 2})
    with pytest.raises(ValueError, match="unknown names"):  # a float key is for counts only
        Method("X", "x", "vector", roles=(Role("a", "t"),), dims={"t": 0.5})
    with pytest.raises(ValueError, match="unknown function"):
        parse_dim("round(in, out)")


def test_group_roles_need_a_grouping_and_are_shared_only() -> None:
    shared = (Role("v.{group}", "in, in"),)
    Method("X", "x", "vector", roles=(), shared=shared, group=str.upper)
    with pytest.raises(ValueError, match="group role"):
        Method("X", "x", "vector", roles=(), shared=shared)
    with pytest.raises(ValueError, match="group role"):
        Method("X", "x", "vector", roles=(Role("v.{group}", "in"),), group=str.upper)
    dim = parse_dim("max(min(ceil(rate), in - 1), min(in * in * rate, in * in - in))")
    assert [dim.value({"in": 32, "rate": r}) for r in (0.0, 0.0001, 0.05, 1.0)] == [0, 1, 51, 992]  # type: ignore[dict-item]


def test_buffers_are_flagged_roles_and_indices_and_variants_agree() -> None:
    assert Role("vera_A", "r, in", buffer=True).is_buffer
    assert Role("idx", "*", indices=True).is_buffer
    assert not Role("vera_lambda_b", "out").is_buffer
    agree = (Role("z", "out", buffer=True, when="on"), Role("z", "in", buffer=True, when="not on"))
    Method("A", "a", "x", roles=agree, dims={"on": False})
    disagree = (Role("z", "out", buffer=True, when="on"), Role("z", "in", when="not on"))
    with pytest.raises(ValueError, match="disagree on buffer"):
        Method("B", "b", "x", roles=disagree, dims={"on": False})


def test_every_saved_buffer_of_the_tables_is_flagged() -> None:
    """The roles peft 0.21 saves from buffers (register_buffer, BufferDict) or computes as
    integer indices at save time, and the tied lm_head's copy of TRAINABLE_TOKENS' delta;
    everything else is a trained parameter (Lily's per-layer copies are found by its check)."""
    flagged = {
        (m.peft_type, r.suffix)
        for m in METHODS.values()
        for r in (*m.roles, *m.shared)
        if r.is_buffer
    }
    assert flagged == {
        ("VERA", "vera_A"),
        ("VERA", "vera_B"),
        ("PVERA", "pvera_A"),
        ("PVERA", "pvera_B"),
        ("RANDLORA", "randlora_A"),
        ("RANDLORA", "randlora_B"),
        ("VBLORA", "vblora_logits_A_topk_indices"),
        ("VBLORA", "vblora_logits_B_topk_indices"),
        ("DELORA", "delora_w_norm"),
        ("GLORA", "glora_A.zeros"),
        ("GLORA", "glora_B.zeros"),
        ("GLORA", "glora_C.zeros"),
        ("GLORA", "glora_D.zeros"),
        ("GLORA", "glora_E.zeros"),
        ("TINYLORA", "tinylora_A"),
        ("TINYLORA", "tinylora_B"),
        ("TINYLORA", "tinylora_P"),
        ("FROD", "frod_V.{group}"),
        ("FROD", "frod_s_indices.{group}"),
        ("FROD", "frod_s_size.{group}"),
        ("ADAMSS", "adamss_newB"),
        ("SHIRA", "shira_indices"),
        ("SUPERTUNING", "supertuning_indices"),
        ("SPARSE_DELTA", "sparse_indices"),
        ("TRAINABLE_TOKENS", "model.lm_head.trainable_tokens_delta"),
    }
