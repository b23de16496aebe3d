"""The table engine checks the shapes of one kind of module (``q_proj`` of every layer) once and
reuses the outcome for modules with the same inputs: a later module whose tensors or base differ
from its kind's is still checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import peft
import pytest

from registry.errors import AdapterInvalid
from registry.validation import validate_adapter
from registry.validation.manifest import BaseManifest, read_base_dir
from tests.validation.methods.method_builders import (
    Tensors,
    assert_error,
    build,
    dir_files,
    invalid_dir,
    validate_dir,
    variant,
)

LAYER0 = "base_model.model.model.layers.0.self_attn.q_proj"
LAYER1 = "base_model.model.model.layers.1.self_attn.q_proj"


@pytest.fixture(scope="module")
def delora(llama: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    config = peft.DeloraConfig(r=4, target_modules=["q_proj", "v_proj"])
    return build(llama, config, tmp_path_factory.mktemp("fast-delora") / "a")


def test_a_later_module_of_a_checked_kind_is_still_checked(
    delora: Path, llama: Path, tmp_path: Path
) -> None:
    assert validate_dir(delora, llama).checked_against_base

    def widen_layer1(t: Tensors) -> Tensors:
        name = next(n for n in sorted(t) if n.startswith(LAYER1 + ".delora_A"))
        t[name] = np.zeros((4, 33), dtype=np.float32)  # layer 0's q_proj keeps [4, 32]
        return t

    broken = variant(delora, tmp_path / "wide1", tensors=widen_layer1)
    error = invalid_dir(broken, llama)
    assert_error(error, "incompatible_base", "shape_mismatch")
    assert error.context["module"] == LAYER1.removeprefix("base_model.model.")


def test_a_module_whose_base_differs_from_its_kind_is_still_checked(
    delora: Path, llama: Path
) -> None:
    base = read_base_dir(llama)
    key = "model.layers.1.self_attn.q_proj.weight"
    dtype, _ = base.tensors[key]
    tensors = {**base.tensors, key: (dtype, (32, 40))}  # layer 1's q_proj takes 40 inputs
    odd = BaseManifest(tensors=tensors, config=base.config)
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(dir_files(delora), base=odd)
    assert_error(info.value, "incompatible_base", "shape_mismatch")
    assert info.value.context["module"] == "model.layers.1.self_attn.q_proj"
