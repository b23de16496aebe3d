"""Tables of peft 0.21's vector and random-projection methods (VBLoRA, PVeRA, HiRA, Lily,
PEANuT, LN tuning, Uni-LoRA, RandLoRA). Each was written from
``peft/tuners/<method>/{config,layer,model}.py`` (``source``) and is tested against adapters
peft saves (``tests/validation/methods/``).

TinyLoRA, whose buffers come from an SVD of the base weight, is in ``peft_svd.py``.
"""

from __future__ import annotations

from registry.validation.methods.lily_checks import count_lily
from registry.validation.methods.spec import Method, Role

_TOPK = "save_only_topk_weights"

VBLORA = Method(
    peft_type="VBLORA",
    title="Vector-bank LoRA (VB-LoRA)",
    family="vector",
    roles=(
        Role("vblora_logits_A", "r, in // vector_length, num_vectors", required="!" + _TOPK),
        Role("vblora_logits_B", "out // vector_length, r, num_vectors", required="!" + _TOPK),
        Role(
            "vblora_logits_A_topk_indices",
            "r, in // vector_length, topk",
            required=_TOPK,
            indices=True,
        ),
        Role("vblora_logits_A_topk_weights", "r, in // vector_length, topk - 1", required=_TOPK),
        Role(
            "vblora_logits_B_topk_indices",
            "out // vector_length, r, topk",
            required=_TOPK,
            indices=True,
        ),
        Role("vblora_logits_B_topk_weights", "out // vector_length, r, topk - 1", required=_TOPK),
    ),
    shared=(Role("vblora_vector_bank", "num_vectors, vector_length"),),
    dims={"r": 4, "num_vectors": 256, "vector_length": 256, "topk": 2, _TOPK: False},
    source="peft/tuners/vblora/{layer,model}.py: logits_A [r, in // vector_length, num_vectors]; "
    "save_only_topk_weights: <logits>_topk_indices/_topk_weights (model.py)",
)

PVERA = Method(
    peft_type="PVERA",
    title="Probabilistic VeRA (PVeRA)",
    family="vector",
    roles=(Role("pvera_lambda_b", "out"), Role("pvera_lambda_d", "r * 2")),
    shared=(
        Role("pvera_A", "r * 2, max_in", required="save_projection", buffer=True),
        Role("pvera_B", "max_out, r", required="save_projection", buffer=True),
    ),
    dims={"r": 256, "save_projection": True},
    source="peft/tuners/pvera/: lambda_d [2r]; pvera_A [2r, max in], B [max out, r] (buffers)",
)

HIRA = Method(
    peft_type="HIRA",
    title="Hadamard high-rank adaptation (HiRA)",
    family="vector",
    roles=(Role("hira_A", "r, in"), Role("hira_B", "out, r")),
    dims={"r": 32},
    # peft 0.21's dispatch_default builds every new layer with config.r: rank_pattern is ignored.
    source="peft/tuners/hira/layer.py: hira_A [r, in], hira_B [out, r] (dispatch: config.r)",
)

LILY = Method(
    peft_type="LILY",
    title="Low-rank interconnected adaptation across layers (Lily)",
    family="vector",
    roles=(
        Role("lily_A.weight", "r, in"),
        Role("lily_B.weight", "num_B * r, out"),
        Role("lily_router.weight", "num_B, r"),
    ),
    dims={"r": 32, "num_B": 2},
    source="peft/tuners/lily/layer.py: Linear(in, r), Linear(out, num_B * r), Linear(r, num_B)",
    # A and B shared across layers, saved per layer: the copies are not counted.
    check=count_lily,
)

PEANUT = Method(
    peft_type="PEANUT",
    title="Parameter-efficient adaptation with weight-aware neural tweakers (PEANuT)",
    family="vector",
    roles=(
        Role("peanut_A.weight", "r, out"),
        Role("peanut_B.weight", "out, r"),
        Role("peanut_encoders.{i}.weight", "r, r", count="depth"),
        Role("peanut_decoders.{i}.weight", "r, r", count="depth"),
    ),
    dims={"r": 32, "depth": 0},
    source="peft/tuners/peanut/layer.py: A Linear(out, r), depth x Linear(r, r), B Linear(r, out)",
)

LN_TUNING = Method(
    peft_type="LN_TUNING",
    title="LayerNorm tuning (a trained copy of each targeted layer)",
    family="vector",
    roles=(
        Role("ln_tuning_layers.weight", "weight"),
        Role("ln_tuning_layers.bias", "bias", required=False),
    ),
    source="peft/tuners/ln_tuning/layer.py: ln_tuning_layers = deepcopy(base layer)",
)

UNILORA = Method(
    peft_type="UNILORA",
    title="Uni-LoRA (one shared trainable vector, projected by a seeded random map)",
    family="vector",
    roles=(),
    shared=(Role("unilora_theta_d", "theta_d_length"),),
    dims={"theta_d_length": 256},
    source="peft/tuners/unilora/model.py: unilora_theta_d [theta_d_length]; indices not saved",
)

#: RandLoRA's number of bases: min(in, out) / r, rounded up.
_BASES = "(min(in, out) + r - 1) // r"
_MAX_BASES = "(min(max_in, max_out) + r - 1) // r"

RANDLORA = Method(
    peft_type="RANDLORA",
    title="RandLoRA (full-rank updates from shared random bases)",
    family="vector",
    roles=(
        Role("randlora_lambda", f"r, {_BASES}"),
        Role("randlora_gamma", f"{_BASES}, min(in, out)"),
        # Each layer's reference to the shared bases is saved under its own name too.
        Role("randlora_A", "r, 1, >=min(in, out)", required="save_projection", buffer=True),
        Role(
            "randlora_B", f">=max(in, out), >={_BASES}, r", required="save_projection", buffer=True
        ),
    ),
    shared=(
        Role("randlora_A", "r, 1, min(max_in, max_out)", required="save_projection", buffer=True),
        Role(
            "randlora_B",
            f"max(max_in, max_out), {_MAX_BASES}, r",
            required="save_projection",
            buffer=True,
        ),
    ),
    dims={"r": 32, "save_projection": True},
    source="peft/tuners/randlora/{layer,model}.py: lambda [r, bases], gamma [bases, min dim]; "
    "A [r, 1, min dim], B [max dim, bases, r] over the largest targeted shape (buffers)",
)

TABLES: tuple[Method, ...] = (VBLORA, PVERA, HIRA, LILY, PEANUT, LN_TUNING, UNILORA, RANDLORA)
