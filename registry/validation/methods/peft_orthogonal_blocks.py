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

C3A = Method(
    peft_type="C3A",
    title="Circular Convolution Adaptation (C3A)",
    family="orthogonal",
    roles=(Role("c3a_kernel", "out // block_size, in // block_size, block_size"),),
    dims={"block_size": 256},
    source="peft/tuners/c3a/layer.py: c3a_kernel [out/block, in/block, block]",
)

DELORA = Method(
    peft_type="DELORA",
    title="Decoupled Low-rank Adaptation (DeLoRA)",
    family="orthogonal",
    roles=(
        Role("delora_A", "r, in"),
        Role("delora_B", "out, r"),
        Role("delora_lambda", "1"),
        Role("delora_w_norm", "in"),
    ),
    dims={"r": 8},
    source="peft/tuners/delora/layer.py: A [r, in], B [out, r], lambda [1], w_norm buffer [in]",
)

GRALORA = Method(
    peft_type="GRALORA",
    title="Granular Low-Rank Adaptation (GraLoRA)",
    family="orthogonal",
    roles=(
        Role("gralora_A", "gralora_k, in // gralora_k, r"),
        Role("gralora_B", "gralora_k, r, out // gralora_k"),
        Role("gralora_A_general.weight", "hybrid_r, in", required="hybrid_r"),
        Role("gralora_B_general.weight", "out, hybrid_r", required="hybrid_r"),
    ),
    dims={"r": 32, "hybrid_r": 0, "gralora_k": 2},
    source="peft/tuners/gralora/layer.py: A [k, in/k, r], B [k, r, out/k]; hybrid LoRA A/B",
)

TABLES: tuple[Method, ...] = (MISS, C3A, DELORA, GRALORA)
