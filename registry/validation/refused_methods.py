"""Why each real peft method without checks is refused (``unknown_peft_type`` / ``not_validated``):
the ``why`` in the error's message and ``context``, so an uploader learns what cannot be checked
and what to do instead. Each was judged from peft 0.21.2's code (``peft/tuners/<method>/``) and
what it saves; docs/formats.md, "Methods refused", says the same in prose."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from registry.errors import UnknownPeftType

REFUSED_WHY: Mapping[str, str] = {
    "BONE": (
        "peft 0.21.2 has no BONE type (PeftType has no BONE, peft/tuners/ no bone/): it was"
        " renamed MiSS, so no installed peft can load it; it is not a MISS adapter either, as"
        " Bone saved <module>.bone_block where MiSS saves <module>.miss_block (same shapes:"
        " [r, out], or [out // r, r, r] with init_weights 'bat'). Re-save it with peft as MISS"
        " (peft_type MISS, bone_block renamed miss_block)"
    ),
    "XLORA": (
        "an X-LoRA upload holds only its classifier (base_model.internal_xlora_classifier.*,"
        " sized by the number of LoRA adapters it mixes); those adapters are other directories"
        " that the config's 'adapters' names by local path or hub id, outside this upload, and"
        " peft 0.21.2 saves them with the base model's own weights inside"
        " (base_model.lora_model.model.*), so neither what the classifier scales nor the"
        " adapters can be checked from the upload. Push each LoRA adapter on its own"
    ),
    "SHADOW": (
        "ShadowPEFT saves a whole second network, base_model.shadow_backbone.* (decoder layers"
        " built by transformers from the base's architecture, resized by shadow_* overrides, or"
        " another model named by shadow_model), beside per-layer shadow_* adapters; the"
        " backbone's tensor names and shapes are transformers' code for that architecture, not"
        " a rule peft states, so no table can check them from headers"
    ),
}

#: Why a LoRA with ``target_parameters`` is refused (``unknown_peft_type`` / ``not_validated``).
TARGET_PARAMETERS_WHY = (
    "LoRA on parameters (target_parameters: a mixture-of-experts' fused expert weights and"
    " router, peft 0.17+) saves per-module factors sized by the number of experts, nested one"
    " base_layer per further parameter of the module, and transformers 5 names those modules"
    " otherwise than the base checkpoint stores them (block_sparse_moe.experts.N.w1 ->"
    " mlp.experts.gate_up_proj): neither can be checked from the headers yet. Target the"
    " attention and dense projections with target_modules instead"
)


def refuse_target_parameters(raw: Mapping[str, Any], peft_type: str) -> None:
    """``unknown_peft_type`` / ``not_validated`` for a config with ``target_parameters``."""
    if raw.get("target_parameters"):  # any LoRA-like method: peft's BaseTuner handles them
        raise UnknownPeftType(
            f"{peft_type} with target_parameters: refused rather than stored unchecked: "
            + TARGET_PARAMETERS_WHY,
            reason="not_validated",
            context={
                "file": "adapter_config.json",
                "field": "target_parameters",
                "peft_type": peft_type,
                "why": TARGET_PARAMETERS_WHY,
            },
        )
