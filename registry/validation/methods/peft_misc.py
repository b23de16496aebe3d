"""Tables of peft 0.21's other methods: Poly, LLaMA-Adapter's adaption prompt, FRoD, AdaMSS.

Written from peft's ``tuners/<method>/{config,layer,model}.py`` (``source``); tested against
adapters peft itself saves (``tests/validation/methods/test_peft_misc.py``).
"""

from __future__ import annotations

from registry.validation.methods.adamss_checks import check_adamss
from registry.validation.methods.adaption_prompt import check_adaption_prompt
from registry.validation.methods.spec import Method, Role

POLY = Method(
    peft_type="POLY",
    title="Polytropon (Poly): a routed inventory of LoRA skills per task",
    family="multitask",
    roles=(
        Role("poly_lora_A", "n_splits, n_skills, in // n_splits, r"),
        Role("poly_lora_B", "n_splits, n_skills, r, out // n_splits"),
        Role("poly_router.module_logits", "n_tasks, n_splits * n_skills"),
    ),
    dims={"r": 8, "n_tasks": 1, "n_skills": 4, "n_splits": 1},
    source=(
        "peft/tuners/poly/{layer,router}.py: poly_lora_A [splits, skills, in // splits, r],"
        " poly_lora_B [splits, skills, r, out // splits], module_logits [tasks, splits * skills]"
    ),
)

ADAPTION_PROMPT = Method(
    peft_type="ADAPTION_PROMPT",
    title="LLaMA-Adapter (adaption prompt): gated prompts in the top attention layers",
    family="prompt",
    roles=(),
    source="peft/tuners/adaption_prompt/{config,layer,model}.py (checked by adaption_prompt.py)",
    check=check_adaption_prompt,
)


def frod_category(module: str) -> str:
    """peft's ``_category_from_key``: the projection category FRoD shares across blocks
    (``model.layers.0.self_attn.q_proj`` -> ``self_attn_q_proj``)."""
    parts = module.split(".")
    if len(parts) == 1:
        return parts[0]
    if parts[-2].isdigit():
        return parts[-1]
    category = f"{parts[-2]}_{parts[-1]}"
    if category == "output_dense" and len(parts) >= 3 and parts[-3] == "attention":
        return "attention_output"
    return category


#: peft's ``nnz = min(int(in * in * sparse_rate), in * in - in)``, at least 1 when
#: ``sparse_rate > 0`` and there is an off-diagonal entry (``in > 1``).
_NNZ = "max(min(ceil(sparse_rate), in - 1), min(in * in * sparse_rate, in * in - in))"

FROD = Method(
    peft_type="FROD",
    title="FRoD (full-rank fine-tuning on a shared rotation basis: diagonal plus sparse)",
    family="vector",
    roles=(Role("frod_lambda_l", "in"), Role("frod_lambda_s_values", "nnz")),
    shared=(
        Role("frod_V.{group}", "in, in", required="save_projection", buffer=True),
        Role("frod_s_indices.{group}", "2, nnz", required="save_projection", indices=True),
        Role("frod_s_size.{group}", "2", required="save_projection", indices=True),
    ),
    dims={"save_projection": True, "sparse_rate": 0.01},
    derived={"nnz": _NNZ},
    group=frod_category,
    source="peft/tuners/frod/{layer,model}.py: lambda_l [in], lambda_s_values [nnz] per linear "
    "layer; per category (_category_from_key) V [in, in], s_indices [2, nnz], s_size [2] "
    "(BufferDicts, model.py)",
)

ADAMSS = Method(
    peft_type="ADAMSS",
    title="AdaMSS (adaptive multi-subspace low-rank updates from the base's SVD)",
    family="vector",
    roles=(
        Role("adamss_newB", "svd_rank, in + biased", buffer=True),
        # Per subspace: A [min(k_i, svd_rank), svd_rank], B [n_i, k_i] (rows and ranks are data;
        # check_adamss counts the subspaces, sums the rows to out and checks each k_i).
        Role("adamss_A.{i}", "*, svd_rank", required=False, count="num_subspaces"),
        Role("adamss_B.{i}", "*, *", required=False, count="num_subspaces"),
    ),
    dims={"r": 100, "num_subspaces": 5, "subspace_rank": 1, "use_dynamic_rank": False},
    derived={"svd_rank": "min(r, out, in + biased)"},
    check=check_adamss,
    source="peft/tuners/adamss/{layer,utils}.py: newB = VVT [min(r, out, in'), in'] (a buffer) "
    "over [W | b]; per k-means subspace i: A [k_i, R], B [n_i, k_i], K = min(num_subspaces, out)",
)

TABLES: tuple[Method, ...] = (POLY, ADAPTION_PROMPT, FROD, ADAMSS)
