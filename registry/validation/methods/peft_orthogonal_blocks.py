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
        Role("delora_w_norm", "in", buffer=True),
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


def _choice(key: str, value: str, values: tuple[str, ...]) -> str:
    """The ``when`` for ``key == value``, where the first of ``values`` is peft's default."""
    if value != values[0]:
        return f"{key}={value}"
    return ", ".join(f"{key}!={other}" for other in values[1:])


def _glora_roles() -> tuple[Role, ...]:
    a_b = ("lora", "vector", "constant", "none")
    roles = []
    for path in ("glora_A", "glora_B"):
        when = {v: _choice("config_A_B", v, a_b) for v in a_b}
        roles += [
            Role(f"{path}.Xd", "out, r", when=when["lora"]),
            Role(f"{path}.Xu", "r, in", when=when["lora"]),
            Role(f"{path}.X", "out, 1", when=when["vector"]),
            Role(f"{path}.X", "1", when=when["constant"]),
            Role(f"{path}.zeros", "out, in", when=when["none"], buffer=True),
        ]
    # C, D and E are trained only when the base module has a bias; without one peft saves a
    # zero buffer instead, so either form is accepted (sizes still checked).
    c = ("lora", "vector", "none")
    when = {v: _choice("config_C", v, c) for v in c}
    roles += [
        Role("glora_C.Xd", "in, r", False, when=when["lora"]),
        Role("glora_C.Xu", "r, 1", False, when=when["lora"]),
        Role("glora_C.X", "in, 1", False, when=when["vector"]),
        Role("glora_C.zeros", "in, 1", False, buffer=True),
    ]
    d_e = ("constant", "vector", "none")
    when = {v: _choice("config_D_E", v, d_e) for v in d_e}
    for path in ("glora_D", "glora_E"):
        roles += [
            Role(f"{path}.X", "out", False, when=when["vector"]),
            Role(f"{path}.X", "1", False, when=when["constant"]),
            Role(f"{path}.zeros", "out", False, buffer=True),
        ]
    return tuple(roles)


GLORA = Method(
    peft_type="GLORA",
    title="Generalized LoRA (GLoRA)",
    family="orthogonal",
    roles=_glora_roles(),
    dims={"r": 8},
    source="peft/tuners/glora/layer.py: A/B/C/D/E paths (lora Xd/Xu, vector/scalar X, zeros: "
    "GloraEmptyPath's register_buffer)",
)

TABLES: tuple[Method, ...] = (MISS, C3A, DELORA, GRALORA, GLORA)
