"""Tables of peft 0.21's methods built on an SVD of the base weight (TinyLoRA).

Written from ``peft/tuners/<method>/{config,layer,model}.py`` (``source``); tested against
adapters peft itself saves (``tests/validation/methods/test_peft_svd.py``).
"""

from __future__ import annotations

from registry.validation.methods.spec import Method, Role

#: TinyLoRA's rank: ``min(r, in, out)`` (``_init_svd`` truncates to the weight's rank).
_RANK = "min(r, in, out)"

TINYLORA = Method(
    peft_type="TINYLORA",
    title="TinyLoRA (a tiny trainable vector through fixed projections of an SVD)",
    family="vector",
    roles=(
        Role("tinylora_A", f"{_RANK}, in", buffer=True),
        Role("tinylora_B", f"out, {_RANK}", buffer=True),
        Role("tinylora_P", f"u, {_RANK}, {_RANK}", required="save_projection", buffer=True),
    ),
    # One trainable vector per weight-tying group, saved once for the model; peft numbers the
    # targeted layers and makes max(1, round(layers * (1 - weight_tying))) groups.
    shared=(Role("tinylora_v.{i}", "u", count="max(1, round(modules * (1 - weight_tying)))"),),
    dims={"r": 2, "u": 64, "save_projection": True, "weight_tying": 0.0},
    source="peft/tuners/tinylora/{layer,model}.py: SVD buffers A [r', in], B [out, r'] with "
    "r' = min(r, in, out); P [u, r', r'] if save_projection; base_model.tinylora_v.<group> [u]",
)

TABLES: tuple[Method, ...] = (TINYLORA,)
