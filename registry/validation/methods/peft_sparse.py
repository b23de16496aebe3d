"""Tables of the sparse methods: peft's SHIRA, SUPERTUNING and TRAINABLE_TOKENS, and the
registry-native ``SPARSE_DELTA`` (docs/formats.md "Sparse methods").

Each saves, per adapted module, integer indices into the base weight next to the values that
go there. The table (:class:`~registry.validation.methods.spec.Method`) gives names and shapes
(header only); :data:`SPARSE_RULES` says how the indices address the base weight, for the
streamed data checks of :mod:`registry.validation.methods.engine_indices` (integer dtype, float
values, equal counts, ranges within the base weight, order where the format promises it).
"""

from __future__ import annotations

from dataclasses import dataclass

from registry.validation.methods.spec import Method, Role


@dataclass(frozen=True)
class SparseRule:
    """How one method's index tensor addresses its module's base weight.

    ``layout``: ``"flat"`` - a 1-D tensor of row-major positions in the stored base weight
    (``0 <= i < numel``); ``"rows_cols"`` - a ``[2, nnz]`` tensor, rows (``< out``) then
    columns (``< in``) of the ``nn.Linear`` weight ``[out, in]``; ``"config"`` - the indices are
    the config key ``config_key`` (rows of an embedding, ``< vocab``), the tensor holds their rows.
    """

    values: str
    indices: str = ""
    layout: str = "flat"
    #: Strictly increasing (sorted and unique) indices are part of the format.
    ordered: bool = False
    config_key: str = ""


SHIRA = Method(
    peft_type="SHIRA",
    title="Sparse High Rank Adapters (SHiRA)",
    family="sparse",
    roles=(
        Role("shira_indices", "2, r * (in + out)", indices=True),
        Role("shira_weight", "r * (in + out)"),
    ),
    dims={"r": 32},
    source="peft/tuners/shira/{layer,model}.py: shira_weight [r*(in+out)], shira_indices int"
    " [2, r*(in+out)] (rows, cols) saved by ShiraModel._get_adapter_state_dict",
)

SUPERTUNING = Method(
    peft_type="SUPERTUNING",
    title="Super-Tuning (magnitude-selected sparse fine-tuning, optional low-rank Supra)",
    family="sparse",
    roles=(
        Role("supertuning_indices", "*", required="save_precomputed_indices", indices=True),
        Role("supertuning_values", "*"),
        Role("supertuning_lora_A.weight", "r, in", required="r"),
        Role("supertuning_lora_B.weight", "out, r", required="r"),
    ),
    dims={"r": 0, "save_precomputed_indices": True},
    source="peft/tuners/supertuning/layer.py: values [k], indices int32 [k] flat positions"
    " (a persistent buffer iff save_precomputed_indices); lora_A [r, in], lora_B [out, r] iff r",
)

TRAINABLE_TOKENS = Method(
    peft_type="TRAINABLE_TOKENS",
    title="Trainable tokens (selected embedding rows)",
    family="sparse",
    roles=(Role("trainable_tokens_delta", "*, in"),),
    # With tie_word_embeddings peft ties an adapter to the output embedding, whose state dict
    # holds the same delta again under the lm_head's name: a copy, not counted as trainable.
    shared=(
        Role("model.lm_head.trainable_tokens_delta", "*, max_in", required=False, buffer=True),
    ),
    source="peft/tuners/trainable_tokens/{layer,model}.py: trainable_tokens_delta"
    " [len(token_indices), embedding_dim]; token_indices in the config; tied lm_head copy",
)

SPARSE_DELTA = Method(
    peft_type="SPARSE_DELTA",
    title="Sparse weight delta (registry-native coordinate format)",
    family="sparse",
    roles=(Role("sparse_indices", "*", indices=True), Role("sparse_values", "*")),
    source="docs/formats.md 'Sparse methods': per module flat row-major indices and values",
)

SPARSE_RULES: dict[str, SparseRule] = {
    "SHIRA": SparseRule("shira_weight", "shira_indices", "rows_cols"),
    "SUPERTUNING": SparseRule("supertuning_values", "supertuning_indices"),
    "TRAINABLE_TOKENS": SparseRule(
        "trainable_tokens_delta", layout="config", config_key="token_indices"
    ),
    "SPARSE_DELTA": SparseRule("sparse_values", "sparse_indices", ordered=True),
}

TABLES: tuple[Method, ...] = (SPARSE_DELTA, SHIRA, SUPERTUNING, TRAINABLE_TOKENS)
