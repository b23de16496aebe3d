"""Registry-native methods (not peft types), one table each (imports only ``spec``).

``BITFIT``: bias-only deltas. ``adapter_model.safetensors`` holds ``base_model.model.<module>.bias``
(the fine-tuned bias minus the base's, 1-D, a float dtype) for each tuned module - linear layers
and norms alike; merging adds each delta to the base's bias. See ``docs/formats.md``; the checks a
table cannot express are in :mod:`registry.validation.methods.bias_checks`.
"""

from __future__ import annotations

from registry.validation.methods.spec import Method, Role

BITFIT = Method(
    peft_type="BITFIT",
    title="BitFit bias-only deltas (registry-native)",
    family="bias",
    roles=(Role("bias", "bias"),),
    source="docs/formats.md, Bias-only tuning: base_model.model.<module>.bias = tuned - base",
)

TABLES: tuple[Method, ...] = (BITFIT,)
