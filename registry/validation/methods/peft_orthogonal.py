"""Tables of peft 0.21's orthogonal and multiplicative methods (OFT, BOFT, HRA, ...).

These methods rotate (or reflect) the base layer's input: their tensors are sized by ``fan_in``
(a linear layer's ``in``; a Conv2d's in channels times kernel elements), in blocks the config
sets. Each table was written from ``peft/tuners/<method>/{config,layer}.py`` (``source``).
"""

from __future__ import annotations

from registry.validation.methods.spec import Method, Role


def _oft_roles() -> tuple[Role, ...]:
    # peft sets either r (the number of blocks) or oft_block_size; a value that does not divide
    # fan_in is moved to the nearest divisor. block_share saves one block for all of them.
    blocks = {"not r": "fan_in // b", "r": "n"}
    size = {"not r": "b * (b - 1) // 2", "r": "(fan_in // n) * (fan_in // n - 1) // 2"}
    roles = []
    for suffix in ("oft_R.weight", "oft_embedding_R.weight"):
        for mode in ("not r", "r"):
            shared = f"1, {size[mode]}"
            roles.append(
                Role(
                    suffix, f"{blocks[mode]}, {size[mode]}", False, when=f"{mode}, not block_share"
                )
            )
            roles.append(Role(suffix, shared, False, when=f"{mode}, block_share"))
    return tuple(roles)


OFT = Method(
    peft_type="OFT",
    title="Orthogonal Finetuning (OFT)",
    family="orthogonal",
    roles=_oft_roles(),
    dims={"r": 0, "oft_block_size": 32, "block_share": False},
    derived={
        "b": "near_divisor(fan_in, oft_block_size)",
        "n": "near_divisor(fan_in, r)",
    },
    source="peft/tuners/oft/layer.py: OFTRotationModule weight [r or 1, block*(block-1)/2]",
)

BOFT = Method(
    peft_type="BOFT",
    title="Butterfly Orthogonal Finetuning (BOFT)",
    family="orthogonal",
    roles=(
        # Axis 0 is the butterfly factor actually used: boft_n_butterfly_factor with peft's
        # CUDA extension, 1 without it (peft falls back silently), so any size is accepted.
        Role(
            "boft_R",
            "*, fan_in // boft_block_size, boft_block_size, boft_block_size",
            when="boft_block_size",
        ),
        Role("boft_R", "*, boft_block_num, bs, bs", when="not boft_block_size"),
        # [out, 1] on a linear layer, [1, out] on a Conv2d.
        Role("boft_s", "out - (out - 1) * conv, 1 + (out - 1) * conv"),
    ),
    dims={"boft_block_size": 4, "boft_block_num": 0, "boft_n_butterfly_factor": 1},
    derived={"bs": "fan_in // boft_block_num"},
    source="peft/tuners/boft/layer.py: boft_R [factor, blocks, size, size], boft_s [out, 1]",
)

HRA = Method(
    peft_type="HRA",
    title="Householder Reflection Adaptation (HRA)",
    family="orthogonal",
    roles=(Role("hra_u", "fan_in, r"),),
    dims={"r": 8},
    source="peft/tuners/hra/layer.py: hra_u [in (x kernel elements for Conv2d), r]",
)

DEFT = Method(
    peft_type="DEFT",
    title="Decomposed fine-tuning (DEFT)",
    family="orthogonal",
    roles=(Role("deft_P", "out, rr"), Role("deft_R", "rr, in", when="not para")),
    dims={"r": 8, "para": False},
    derived={"rr": "min(r, out)"},  # peft caps r at the output size
    source="peft/tuners/deft/layer.py: deft_P [out, min(r, out)], deft_R [r, in] unless para",
)


def _road_roles() -> tuple[Role, ...]:
    # Named sizes (not expressions) so that theta binds them and alpha must agree, base or not.
    sizes = {"road_1": "half", "road_2": "out", "road_4": "double"}
    return tuple(
        Role(suffix, size, when=f"variant={variant}")
        for variant, size in sizes.items()
        for suffix in ("road_theta", "road_alpha")
    )


ROAD = Method(
    peft_type="ROAD",
    title="Rotation Adaptation (RoAd)",
    family="orthogonal",
    roles=_road_roles(),
    dims={"group_size": 64},
    derived={"half": "out // 2", "double": "out * 2"},
    source="peft/tuners/road/layer.py: road_theta/alpha [out/2 | out | 2*out] by variant",
)

OSF = Method(
    peft_type="OSF",
    title="Orthogonal Subspace Fine-tuning (OSF)",
    family="orthogonal",
    # The trainable low-rank part of the weight's SVD: what is left after the frozen top
    # effective_rank directions (int, fraction or rank_pattern: the size is only bound here).
    roles=(
        Role("osf_svd_params.U_low", "out, low"),
        Role("osf_svd_params.S_low", "low"),
        Role("osf_svd_params.V_low", "low, in"),
    ),
    bound=("low",),
    source="peft/tuners/osf/{layer,utils}.py: U_low [out, k], S_low [k], V_low [k, in]",
)

PSOFT = Method(
    peft_type="PSOFT",
    title="Principal-subspace orthogonal fine-tuning (PSOFT)",
    family="orthogonal",
    roles=(
        Role("psoft_R.weight", "r * (r - 1) // 2", when="psoft_orth"),
        Role("psoft_R.weight", "r, r", when="not psoft_orth"),
        Role("psoft_R.vector_b", "r", required="psoft_mag_b"),
        Role("psoft_R.vector_a", "r", required="psoft_mag_a"),
    ),
    dims={"r": 32, "psoft_orth": True, "psoft_mag_b": True, "psoft_mag_a": True},
    source="peft/tuners/psoft/layer.py: OrthLayer(size=r) weight, vector_b/a [r]",
)

TABLES: tuple[Method, ...] = (OFT, BOFT, HRA, DEFT, ROAD, OSF, PSOFT)
