"""LoRA on parameters (``target_parameters``: MoE experts, routers) is refused, never stored
unchecked: ``unknown_peft_type`` / ``not_validated`` with the reason (a real adapter)."""

from __future__ import annotations

from pathlib import Path

import peft

from tests.validation.methods.method_builders import (
    assert_error,
    build,
    invalid_dir,
    set_key,
    variant,
)


def test_lora_on_parameters_is_refused_with_its_reason(llama: Path, tmp_path: Path) -> None:
    config = peft.LoraConfig(r=2, target_modules=[], target_parameters=["mlp.down_proj.weight"])
    adapter = build(llama, config, tmp_path / "a")
    for base in (llama, None):
        error = invalid_dir(adapter, base)
        assert_error(error, "unknown_peft_type", "not_validated")
        assert error.context["field"] == "target_parameters"
        assert "experts" in error.context["why"]
    # The same tensors without the key claim ordinary modules the config does not target.
    unset = variant(adapter, tmp_path / "unset", config=set_key("target_parameters", None))
    assert_error(invalid_dir(unset, None), "inconsistent_adapter", "unexpected_tensor")
