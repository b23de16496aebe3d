"""Which of Lily's saved tensors are copies of a shared ``lily_A``/``lily_B`` (the count with
real peft adapters is in test_trainable_params.py; this covers orders and groupings that the
tiny two-layer model cannot show)."""

from __future__ import annotations

import pytest

from registry.errors import InvalidAdapterConfig
from registry.validation.config import config_from_dict
from registry.validation.methods.engine import MethodFindings
from registry.validation.methods.lily_checks import count_lily, shared_copies
from registry.validation.module_order import module_order
from registry.validation.safetensors import TensorInfo

P = "base_model.model.model.layers"


def _tensors(layers: int, kinds: dict[str, tuple[int, int]]) -> dict[str, TensorInfo]:
    """``lily_A`` [4, in] and ``lily_B`` [8, out] for each kind of module in every layer."""
    out: dict[str, TensorInfo] = {}
    for layer in range(layers):
        for kind, (o, i) in kinds.items():
            for part, shape in (("A", (4, i)), ("B", (8, o))):
                name = f"{P}.{layer}.{kind}.lily_{part}.weight"
                out[name] = TensorInfo(name, "F32", shape, 0, 0)
    return out


def test_layer_ten_comes_after_layer_two() -> None:
    paths = [f"{P}.{n}.q_proj" for n in (10, 2, 1, 0)]
    assert sorted(paths, key=module_order) == [f"{P}.{n}.q_proj" for n in (0, 1, 2, 10)]


def test_b_is_shared_per_target_and_a_per_block_of_stride_layers() -> None:
    tensors = _tensors(12, {"self_attn.q_proj": (32, 32), "self_attn.v_proj": (16, 32)})
    copies = shared_copies(tensors, stride_a=4, targets=["q_proj", "v_proj"])
    for kind in ("q_proj", "v_proj"):
        b = [n for n in copies if kind in n and "lily_B" in n]
        a = {int(n.split(".")[4]) for n in copies if kind in n and "lily_A" in n}
        assert len(b) == 11  # every layer but layer 0 holds a copy
        assert a == set(range(12)) - {0, 4, 8}  # the block leaders hold their own A


def test_a_regex_target_groups_by_shape() -> None:
    tensors = _tensors(2, {"self_attn.q_proj": (32, 32), "self_attn.v_proj": (16, 32)})
    copies = shared_copies(tensors, stride_a=1, targets=r".*\.(q|v)_proj")
    # One target, two shapes: q and v keep a B each; with stride 1 every A is its own.
    assert copies == [
        f"{P}.1.self_attn.q_proj.lily_B.weight",
        f"{P}.1.self_attn.v_proj.lily_B.weight",
    ]


@pytest.mark.parametrize("stride", [0, -1, 1.5, True, "2"])
def test_a_stride_peft_refuses_is_a_schema_error(stride: object) -> None:
    cfg = config_from_dict({"peft_type": "LILY", "stride_A": stride})
    with pytest.raises(InvalidAdapterConfig) as caught:
        count_lily(cfg, {}, None, MethodFindings())
    assert caught.value.reason == "schema"
    assert caught.value.context["field"] == "stride_A"
