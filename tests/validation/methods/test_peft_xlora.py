"""XLORA stays refused: a real X-LoRA save is checked to be what the refusal says it is."""

from __future__ import annotations

from pathlib import Path

import peft
from safetensors import safe_open

from tests.maths.tiny import load_base, save_adapter
from tests.validation.methods.method_builders import assert_error, invalid_dir


def test_xlora_is_refused_and_says_why(llama: Path, tmp_path: Path) -> None:
    lora = peft.LoraConfig(r=2, target_modules=["q_proj", "v_proj"])
    adapters = {name: str(save_adapter(llama, lora, tmp_path / name)) for name in ("0", "1")}
    config = peft.XLoraConfig(
        task_type="CAUSAL_LM", hidden_size=32, adapters=adapters, xlora_depth=2, xlora_size=8
    )
    model = load_base(llama)
    model.config.use_cache = False  # X-LoRA refuses a model that caches
    out = tmp_path / "xlora"
    peft.get_peft_model(model, config).save_pretrained(str(out))
    # What the refusal states: the upload holds the classifier only (2 outputs, one per adapter)
    # and the adapters it mixes are paths outside it, saved with the base's own weights inside.
    with safe_open(out / "adapter_model.safetensors", "np") as f:
        names = set(f.keys())
        assert all(n.startswith("base_model.internal_xlora_classifier.") for n in names)
        assert f.get_slice("base_model.internal_xlora_classifier.layers.3.weight").get_shape() == [
            2,
            8,
        ]
    with safe_open(out / "0" / "adapter_model.safetensors", "np") as f:
        assert "base_model.lora_model.model.model.embed_tokens.weight" in set(f.keys())
    error = invalid_dir(out, llama)
    assert_error(error, "unknown_peft_type", "not_validated")
    assert "'adapters'" in error.context["why"]
    assert "outside this upload" in error.detail
