"""Why each real peft method without checks is refused (``unknown_peft_type`` / ``not_validated``):
the ``why`` in the error's message and ``context``, so an uploader learns what cannot be checked
and what to do instead. Each was judged from peft 0.21.2's code (``peft/tuners/<method>/``) and
what it saves; docs/formats.md, "Methods refused", says the same in prose."""

from __future__ import annotations

from collections.abc import Mapping

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
