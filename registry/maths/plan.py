"""Plan a merge: which base tensors change, by which edits, checked before a byte is written.

The adapter is read with the validation package (config, header, :func:`classify` into modules
and saved copies, :func:`check_module`, :func:`check_against_base`), then each targeted module
becomes :mod:`registry.maths.deltas` edits on its base key. A tied ``lm_head`` (absent from the
checkpoint, ``tie_word_embeddings``) is the input embedding: a delta on it changes the embedding,
as peft's in-place merge into the shared parameter does; a saved ``lm_head`` copy
(``modules_to_save``) becomes a new ``lm_head.weight`` tensor and the output is untied, as
transformers saves peft's merged model. Shapes are checked against the base by the validator;
an edit that still does not fit fails while merging (``shape_mismatch``; the output is staged,
so nothing is left). Replaying the edits on ``meta`` tensors first was dropped: the first meta
operation imports ``torch._dynamo`` (1.3 s), thirty times the merge of a small model.
The sparse methods (SPARSE_DELTA, SHIRA, SUPERTUNING, TRAINABLE_TOKENS) are checked and turned
into scatter edits by :mod:`registry.maths.sparse`; the bias-only methods (BITFIT, BEFT) into
bias additions by :mod:`registry.maths.bias`.

Errors: :class:`~registry.errors.NotMergeable` (``context["peft_type"]``; ``reason`` for a LoRA
variant or a convolution layer), :class:`~registry.errors.IncompatibleAdapters` reasons
``module_not_in_base`` and ``shape_mismatch``; the validation package's
:class:`~registry.errors.AdapterInvalid` errors propagate.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

from registry.errors import IncompatibleAdapters, IncompatibleBase, NotMergeable
from registry.maths.bias import BIAS_MERGEABLE, bias_edits
from registry.maths.deltas import (
    AdaLoraDelta,
    AddScaled,
    DoraMerge,
    Edit,
    Ia3Bias,
    Ia3Scale,
    LohaDelta,
    LokrDelta,
    LoraDelta,
    Replace,
)
from registry.maths.sparse import SPARSE_MERGEABLE, RowCopy, sparse_edits
from registry.maths.st_stream import FLOAT_DTYPES, StFile
from registry.validation.checks_base import base_key, check_against_base, is_conv1d
from registry.validation.checks_lora import check_module, configured_rank
from registry.validation.config import LORA_LIKE_PEFT_TYPES, AdapterConfig
from registry.validation.layout import ModuleTensors, classify
from registry.validation.manifest import BaseManifest
from registry.validation.matching import pattern_lookup

#: LoRA config fields that select a variant whose forward is not ``W + BA`` (peft's
#: ``is_lora_variant`` fields other than DoRA), or that change the model's structure.
LORA_VARIANT_FIELDS = (
    "alora_invocation_tokens",
    "arrow_config",
    "use_bdlora",
    "velora_config",
    "monteclora_config",
    "kasa_config",
    "layer_replication",
)
_BASE_REASONS = {"missing_modules": "module_not_in_base"}


@dataclass
class MergePlan:
    """Edits per base key (in order), tensors to add, and whether the output is untied."""

    peft_type: str
    edits: dict[str, list[Edit]] = field(default_factory=dict)
    #: new key -> (base key whose file, dtype and shape it takes, its edits)
    added: dict[str, tuple[str, list[Edit]]] = field(default_factory=dict)
    untie: bool = False
    modules: int = 0

    _ranked: dict[str, list[tuple[int, int, Edit]]] = field(default_factory=dict, repr=False)

    def add(self, target: str, edit: Edit, redirected: bool = False) -> None:
        """Queue ``edit`` on ``target``: saved copies first (they are the loaded state), then
        the module's own deltas, then those of a tied lm_head (peft merges it after the
        embedding, in module order)."""
        ranked = self._ranked.setdefault(target, [])
        ranked.append((0 if edit.replaces else 2 if redirected else 1, len(ranked), edit))
        self.edits[target] = [e for _, _, e in sorted(ranked, key=lambda t: t[:2])]


def refuse_unmergeable(cfg: AdapterConfig) -> None:
    """Raise ``NotMergeable`` for a method (or LoRA variant) with no weight delta to merge."""
    if cfg.peft_type in SPARSE_MERGEABLE | BIAS_MERGEABLE:
        return
    if cfg.peft_type not in LORA_LIKE_PEFT_TYPES:
        raise NotMergeable(
            f"{cfg.peft_type} adapters have no weight delta to merge into the base",
            context={"peft_type": cfg.peft_type},
        )
    variants = [name for name in LORA_VARIANT_FIELDS if cfg.raw.get(name)]
    if cfg.raw.get("init_lora_weights") == "mica":
        variants.append("init_lora_weights")
    if cfg.peft_type == "LORA" and variants:
        raise NotMergeable(
            f"LoRA variant {variants[0]} cannot be merged as W + BA",
            context={"peft_type": cfg.peft_type, "reason": "lora_variant", "field": variants[0]},
        )


def refuse_quantized(cfg: AdapterConfig, manifest: BaseManifest) -> None:
    """A pre-quantized base (QLoRA) cannot be merged into: merge into the unquantized base."""
    quant = manifest.quantization
    if quant is not None:
        raise NotMergeable(
            f"the base is quantized ({quant['method']}, {quant.get('bits')}-bit): merge into the"
            " unquantized base it was made from",
            context={"peft_type": cfg.peft_type, "reason": "quantized_base", **quant},
        )


def _missing(detail: str, **context: Any) -> NoReturn:
    raise IncompatibleAdapters(detail, context={"reason": "module_not_in_base", **context})


def _unsupported(cfg: AdapterConfig, module: str, what: str) -> NoReturn:
    raise NotMergeable(
        f"{module}: {what} cannot be merged by this implementation",
        context={"peft_type": cfg.peft_type, "reason": "unsupported_layer", "module": module},
    )


def plan_merge(cfg: AdapterConfig, adapter: StFile, manifest: BaseManifest) -> MergePlan:
    """Check the adapter against the base and return the merge's edits (nothing is loaded).

    Raises:
        NotMergeable, IncompatibleAdapters: see the module docstring.
        AdapterInvalid: the adapter is inconsistent with itself (validation errors).
    """
    refuse_unmergeable(cfg)
    refuse_quantized(cfg, manifest)
    if cfg.peft_type in SPARSE_MERGEABLE:
        return _edits_plan(cfg, *sparse_edits(cfg, adapter, manifest), manifest)
    if cfg.peft_type in BIAS_MERGEABLE:
        return _edits_plan(cfg, *bias_edits(cfg, adapter, manifest), manifest)
    layout = classify(adapter.tensors, cfg)
    for group in layout.modules.values():
        check_module(cfg, group)
    try:
        check_against_base(cfg, layout, manifest)
    except IncompatibleBase as exc:
        reason = _BASE_REASONS.get(exc.reason, "shape_mismatch")
        raise IncompatibleAdapters(exc.detail, context={**exc.context, "reason": reason}) from exc
    plan = MergePlan(peft_type=cfg.peft_type, modules=len(layout.modules))
    for extra in layout.extras:
        target = base_key(manifest, extra.base_key)
        if target is None:
            _missing(f"{extra.base_key} is not in the base", module=extra.module)
        edit: Edit = Replace(extra.module, extra.tensor.name)
        if extra.kind == "token_delta":  # trainable_token_indices: those rows become the saved
            edit = RowCopy(extra.module, extra.tensor.name, extra.rows)
        if extra.kind == "modules_to_save" and target != extra.base_key:
            plan.added[extra.base_key] = (target, [edit])  # a tied lm_head trained in full
            plan.untie = True
        else:
            plan.add(target, edit)
    for group in layout.modules.values():
        _plan_module(cfg, manifest, group, plan)
    check_dtypes(plan, manifest)
    return plan


def _edits_plan(
    cfg: AdapterConfig, edits: list[tuple[str, Edit]], modules: int, manifest: BaseManifest
) -> MergePlan:
    """The sparse (:mod:`registry.maths.sparse`) and bias-only (:mod:`registry.maths.bias`)
    methods: edits their own modules checked."""
    plan = MergePlan(peft_type=cfg.peft_type, modules=modules)
    for target, edit in edits:
        plan.add(target, edit)
    check_dtypes(plan, manifest)
    return plan


def _plan_module(
    cfg: AdapterConfig, manifest: BaseManifest, group: ModuleTensors, plan: MergePlan
) -> None:
    module = group.module
    target = base_key(manifest, module + ".weight")
    if target is None:
        _missing(f"{module}.weight is not in the base", module=module)
    redirected = target != module + ".weight"
    if len(manifest.tensors[target][1]) != 2:
        _unsupported(cfg, module, "a convolution layer")
    names = {role: info.name for role, info in group.parts.items()}
    fifo = is_conv1d(cfg, manifest, module)
    builder = _BUILDERS[cfg.peft_type]
    for key, edit in builder(cfg, module, names, fifo):
        if key == "weight":
            plan.add(target, edit, redirected)
            continue
        bias = base_key(manifest, f"{module}.bias")
        if bias is None and isinstance(edit, AddScaled):
            _missing(f"{module} has no bias for lora_bias", module=module, tensor=f"{module}.bias")
        if bias is not None:
            plan.add(bias, edit, redirected)


EditList = list[tuple[str, Edit]]


def _lora_scaling(cfg: AdapterConfig, module: str, alpha_default: float) -> float:
    r = configured_rank(cfg, module)
    alpha = pattern_lookup(cfg, cfg.alpha_pattern, module)
    alpha = alpha_default if alpha is None else alpha
    return float(alpha / math.sqrt(r) if cfg.use_rslora else alpha / r)


def _lora(cfg: AdapterConfig, module: str, names: dict[str, str], fifo: bool) -> EditList:
    scaling = _lora_scaling(cfg, module, cfg.lora_alpha)
    embedding = "emb_A" in names
    a, b = (names["emb_A"], names["emb_B"]) if embedding else (names["A"], names["B"])
    transpose = embedding or fifo
    edits: EditList = []
    if "magnitude" in names:
        edits.append(("weight", DoraMerge(module, a, b, names["magnitude"], scaling, transpose)))
    else:
        edits.append(("weight", LoraDelta(module, a, b, scaling, transpose)))
    if "B_bias" in names:
        edits.append(("bias", AddScaled(module, names["B_bias"], scaling)))
    return edits


def _adalora(cfg: AdapterConfig, module: str, names: dict[str, str], fifo: bool) -> EditList:
    scaling = cfg.lora_alpha if cfg.lora_alpha > 0 else float(cfg.init_r)
    edit = AdaLoraDelta(
        module, names["A"], names["B"], names["E"], scaling, float(cfg.init_r), fifo
    )
    return [("weight", edit)]


def _ia3_feedforward(cfg: AdapterConfig, module: str) -> bool:
    # peft's IA3Model._check_target_module_feedforward: fullmatch, or a plain endswith.
    spec = cfg.feedforward_modules
    if isinstance(spec, str):
        return cfg.patterns.fullmatch(spec, module)
    return any(module.endswith(t) for t in spec or ())


def _ia3(cfg: AdapterConfig, module: str, names: dict[str, str], fifo: bool) -> EditList:
    vector = names["ia3_l"]
    edits: EditList = [("weight", Ia3Scale(module, vector, fifo))]
    if not _ia3_feedforward(cfg, module):
        edits.append(("bias", Ia3Bias(module, vector)))
    return edits


def _loha(cfg: AdapterConfig, module: str, names: dict[str, str], fifo: bool) -> EditList:
    if "hada_t1" in names or "hada_t2" in names or fifo:
        _unsupported(cfg, module, "an effective-conv or Conv1D LoHa")
    scaling = _lora_scaling(cfg, module, cfg.alpha)
    edit = LohaDelta(
        module,
        names["hada_w1_a"],
        names["hada_w1_b"],
        names["hada_w2_a"],
        names["hada_w2_b"],
        scaling,
    )
    return [("weight", edit)]


def _lokr(cfg: AdapterConfig, module: str, names: dict[str, str], fifo: bool) -> EditList:
    if "lokr_t2" in names or fifo:
        _unsupported(cfg, module, "an effective-conv or Conv1D LoKr")

    def factor(which: str) -> tuple[str, ...]:
        full = names.get(f"lokr_{which}")
        return (full,) if full else (names[f"lokr_{which}_a"], names[f"lokr_{which}_b"])

    scaling = _lora_scaling(cfg, module, cfg.alpha)
    return [("weight", LokrDelta(module, factor("w1"), factor("w2"), scaling))]


_BUILDERS: dict[str, Callable[[AdapterConfig, str, dict[str, str], bool], EditList]] = {
    "LORA": _lora,
    "ADALORA": _adalora,
    "IA3": _ia3,
    "LOHA": _loha,
    "LOKR": _lokr,
}


def check_dtypes(plan: MergePlan, manifest: BaseManifest) -> None:
    """Every base tensor an edit writes is floating point (a quantised base cannot be merged
    into). Shapes were checked against the base by the validator (``check_against_base``);
    what it cannot see surfaces while merging as ``shape_mismatch`` (the output is staged, so
    nothing is left)."""
    hosts = [(key, key) for key in plan.edits]
    hosts += [(key, host) for key, (host, _) in plan.added.items()]
    for key, host in hosts:
        base_dtype, _ = manifest.tensors[host]
        if base_dtype not in FLOAT_DTYPES:
            raise NotMergeable(
                f"{key} is {base_dtype}: only floating-point base tensors can be merged into",
                context={"peft_type": plan.peft_type, "reason": "quantized_base", "tensor": key},
            )
