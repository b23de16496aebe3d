"""Tables of peft 0.21's block-structured methods (MiSS, GLoRA, C3A, DeLoRA, GraLoRA).

Each table was written from ``peft/tuners/<method>/{config,layer}.py`` (``source``). BONE, MiSS's
earlier name, has no tuner in peft 0.21 and stays refused (docs/formats.md).
"""

from __future__ import annotations

from registry.validation.methods.spec import Method, Role

MISS = Method(
    peft_type="MISS",
    title="Matrix Shard Sharing (MiSS)",
    family="orthogonal",
    roles=(
        Role("miss_block", "r, out", when="init_weights!=bat, init_weights!=mini"),
        Role("miss_block", "out // r, r, r", when="init_weights=bat"),
        Role("miss_block", "r, mini_r", when="init_weights=mini"),
    ),
    dims={"r": 64, "mini_r": 1},
    source="peft/tuners/miss/layer.py: miss_block [r, out]; bat [out/r, r, r]; mini [r, mini_r]",
)

TABLES: tuple[Method, ...] = (MISS,)
