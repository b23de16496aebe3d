"""Structural compatibility of a LoRA-like adapter with a base weights manifest.

The base weight of a module is ``<module>.weight``; for a ``modules_to_save`` parameter or a saved
bias it is the same key as saved. Lookups tolerate the two real-world key variants: a tied
``lm_head`` absent from the checkpoint (``tie_word_embeddings``: the input embedding is used) and a
checkpoint saved from the bare backbone (the adapter's first path component, e.g. ``transformer.``,
is missing from the base keys, as in the original GPT-2 checkpoint).

Layouts: ``nn.Linear`` weights are ``[out, in]``; transformers ``Conv1D`` (GPT-2 family, or
``fan_in_fan_out``) ``[in, out]``; ``nn.Embedding`` ``[num_embeddings, dim]``; Conv2d
``[out, in, kh, kw]``.

Errors: :class:`~registry.errors.IncompatibleBase` reasons ``missing_modules`` (context
``module``: the first missing, ``missing``: all of them), ``shape_mismatch`` and
``vocab_mismatch`` (a vocabulary-sized dimension differs; context ``tensor``, ``module``,
``expected``, ``actual``).
"""

from __future__ import annotations

from typing import Any, NoReturn

from registry.errors import IncompatibleBase
from registry.validation.checks_lora import lokr_factor
from registry.validation.config import AdapterConfig
from registry.validation.layout import INPUT_EMBEDDING_LEAVES, AdapterLayout, Extra, ModuleTensors
from registry.validation.manifest import BaseManifest, TensorSpec
from registry.validation.matching import spec_matches

CONV1D_LEAVES = frozenset({"c_attn", "c_proj", "c_fc", "q_attn"})
EMBED_LEAVES = frozenset(
    {"embed_tokens", "wte", "lm_head", "embed_in", "embed_out", "word_embeddings", "shared"}
)
#: Heads that peft adds to ``modules_to_save`` for these tasks; a causal-LM base lacks them.
HEAD_TASKS = frozenset({"SEQ_CLS", "TOKEN_CLS", "QUESTION_ANS"})
_INPUT_EMBEDDING_SUFFIXES = tuple(f"{leaf}.weight" for leaf in INPUT_EMBEDDING_LEAVES)


def _leaf(module: str) -> str:
    return module.rsplit(".", 1)[-1]


def _input_embedding(manifest: BaseManifest) -> str | None:
    for suffix in _INPUT_EMBEDDING_SUFFIXES:
        for name in manifest.tensors:
            if name == suffix or name.endswith("." + suffix):
                return name
    return None


def is_tied_lm_head(manifest: BaseManifest, key: str) -> bool:
    """True for an ``lm_head`` weight the checkpoint leaves out because it is tied."""
    return (
        (key == "lm_head.weight" or key.endswith(".lm_head.weight"))
        and key not in manifest.tensors
        and manifest.tie_word_embeddings
    )


def base_key(manifest: BaseManifest, key: str) -> str | None:
    """The base checkpoint key holding an adapter-side key (see the module docstring), or None;
    a tied ``lm_head`` resolves to the input embedding."""
    if key in manifest.tensors:
        return key
    _, _, rest = key.partition(".")
    if rest and rest in manifest.tensors:
        return rest
    if is_tied_lm_head(manifest, key):
        return _input_embedding(manifest)
    return None


def base_tensor(manifest: BaseManifest, key: str) -> TensorSpec | None:
    """Find the base tensor for an adapter-side key (see the module docstring), or None."""
    name = base_key(manifest, key)
    return None if name is None else manifest.tensors[name]


def is_conv1d(cfg: AdapterConfig, manifest: BaseManifest, module: str) -> bool:
    """True when ``module``'s 2-D weight is a transformers ``Conv1D`` stored ``[in, out]``
    (peft then merges with ``fan_in_fan_out``, whatever the saved config says)."""
    return _leaf(module) in CONV1D_LEAVES and (manifest.uses_conv1d or cfg.fan_in_fan_out)


class _Checker:
    def __init__(self, cfg: AdapterConfig, manifest: BaseManifest) -> None:
        self.cfg = cfg
        self.manifest = manifest

    def vocab_like(self, module: str, expected: int) -> bool:
        vocab = self.manifest.vocab_size
        return _leaf(module) in EMBED_LEAVES and (vocab is None or expected == vocab)

    def fail(
        self, module: str, tensor: str, expected: Any, actual: Any, what: str, vocab: bool = False
    ) -> NoReturn:
        reason = "vocab_mismatch" if vocab else "shape_mismatch"
        raise IncompatibleBase(
            f"{what}: expected {expected}, got {actual}",
            reason=reason,
            context={"tensor": tensor, "module": module, "expected": expected, "actual": actual},
        )

    def dim(self, group: ModuleTensors, role: str, axis: int, expected: int, what: str) -> None:
        info = group.parts[role]
        actual = info.shape[axis] if len(info.shape) > axis else None
        if actual != expected:
            vocab = self.vocab_like(group.module, expected)
            self.fail(group.module, info.name, expected, actual, what, vocab)

    def in_out(self, module: str, weight: tuple[int, ...]) -> tuple[int, int] | None:
        """(in_features, out_features) of a module's base weight, None if not Linear-like."""
        if len(weight) == 2:
            conv1d = is_conv1d(self.cfg, self.manifest, module)
            return (weight[0], weight[1]) if conv1d else (weight[1], weight[0])
        if len(weight) == 4:  # Conv2d: in is per-group input channels
            return weight[1], weight[0]
        return None

    def module(self, group: ModuleTensors, weight: tuple[int, ...]) -> list[str]:
        parts = group.parts
        if "emb_A" in parts:
            if len(weight) != 2:
                return [f"{group.module}: base weight is not an embedding; shapes not checked"]
            self.dim(group, "emb_A", 1, weight[0], "lora_embedding_A num_embeddings")
            self.dim(group, "emb_B", 0, weight[1], "lora_embedding_B embedding_dim")
            return []
        io = self.in_out(group.module, weight)
        if io is None:
            return [
                f"{group.module}: base weight {list(weight)} not Linear-like; shapes not checked"
            ]
        fin, fout = io
        kind = self.cfg.peft_type
        if kind in ("LORA", "ADALORA"):
            self.dim(group, "A", 1, fin, "lora_A in_features")
            self.dim(group, "B", 0, fout, "lora_B out_features")
            for role in ("magnitude", "B_bias"):
                info = parts.get(role)
                if info is not None and info.numel != fout:
                    self.fail(group.module, info.name, fout, info.numel, f"{role} length")
        elif kind == "IA3":
            feedforward = spec_matches(self.cfg, group.module, self.cfg.feedforward_modules)
            expected = (1, fin) if feedforward else (fout, 1)
            info = parts["ia3_l"]
            if info.shape != expected:
                self.fail(group.module, info.name, list(expected), list(info.shape), "ia3_l shape")
        elif kind == "LOHA":
            self._loha(group, weight, fin, fout)
        elif kind == "LOKR":
            self._lokr(group, weight, fin, fout)
        return []

    def _loha(self, group: ModuleTensors, weight: tuple[int, ...], fin: int, fout: int) -> None:
        if "hada_t1" in group.parts:  # effective conv: w*_a [r, out], w*_b [r, in]
            a_axis, b_in = 1, fin
        else:  # w*_a [out, r], w*_b [r, in * kh * kw]
            a_axis, b_in = 0, fin * (weight[2] * weight[3] if len(weight) == 4 else 1)
        for which in ("w1", "w2"):
            self.dim(group, f"hada_{which}_a", a_axis, fout, f"hada_{which}_a out_features")
            self.dim(group, f"hada_{which}_b", 1, b_in, f"hada_{which}_b in_features")

    def _lokr(self, group: ModuleTensors, weight: tuple[int, ...], fin: int, fout: int) -> None:
        w1, w2 = lokr_factor(group, "w1"), lokr_factor(group, "w2")
        some = next(iter(group.parts.values())).name
        if w1 is None or w2 is None:
            return
        if w1[0] * w2[0] != fout:
            self.fail(group.module, some, fout, w1[0] * w2[0], "LoKr out_features product")
        if len(weight) == 2 and w1[1] * w2[1] != fin:
            self.fail(group.module, some, fin, w1[1] * w2[1], "LoKr in_features product")


def check_against_base(
    cfg: AdapterConfig, layout: AdapterLayout, manifest: BaseManifest
) -> list[str]:
    """Check every targeted module and saved extra against the base; return warnings.

    Raises:
        IncompatibleBase: ``missing_modules``, ``shape_mismatch``, ``vocab_mismatch``.
    """
    warnings: list[str] = []
    weights = base_weights(cfg, layout, manifest, warnings)
    checker = _Checker(cfg, manifest)
    for module, group in sorted(layout.modules.items()):
        warnings.extend(checker.module(group, weights[module][1]))
    check_extras(cfg, layout, manifest)
    return warnings


def base_weights(
    cfg: AdapterConfig, layout: AdapterLayout, manifest: BaseManifest, warnings: list[str]
) -> dict[str, TensorSpec]:
    """Each targeted module's base weight; a saved extra must exist in the base too (a task head
    the causal-LM base lacks is only a warning).

    Raises:
        IncompatibleBase: ``missing_modules``.
    """
    missing: list[str] = []
    weights: dict[str, TensorSpec] = {}
    for module in layout.modules:
        spec = base_tensor(manifest, module + ".weight")
        if spec is None:
            missing.append(module)
        else:
            weights[module] = spec
    for extra in layout.extras:
        if base_tensor(manifest, extra.base_key) is not None:
            continue
        if extra.kind == "modules_to_save" and cfg.task_type in HEAD_TASKS:
            warnings.append(f"{extra.base_key}: task head not in the base checkpoint")
        else:
            missing.append(extra.module)
    if missing:
        unique = sorted(set(missing))
        raise IncompatibleBase(
            f"{len(unique)} module(s) not found in the base model, e.g. {unique[0]}",
            reason="missing_modules",
            context={"module": unique[0], "missing": unique[:100], "count": len(unique)},
        )
    return weights


def check_extras(cfg: AdapterConfig, layout: AdapterLayout, manifest: BaseManifest) -> None:
    """Every saved copy has its base tensor's shape.

    Raises:
        IncompatibleBase: ``shape_mismatch``, ``vocab_mismatch``.
    """
    checker = _Checker(cfg, manifest)
    for extra in layout.extras:
        found = base_tensor(manifest, extra.base_key)
        if found is None:
            continue  # a task head, warned about by base_weights
        shape = found[1]
        actual = extra.tensor.shape
        if extra.kind == "token_delta":
            _check_token_rows(extra, shape)
            continue
        if actual != shape:
            vocab = (
                len(actual) == len(shape)
                and actual[1:] == shape[1:]
                and checker.vocab_like(extra.module, shape[0])
            )
            checker.fail(
                extra.module, extra.tensor.name, list(shape), list(actual), "saved copy", vocab
            )


def _check_token_rows(extra: Extra, shape: tuple[int, ...]) -> None:
    """``trainable_token_indices`` rows: the embedding's width, indices within its vocabulary."""
    name = extra.tensor.name
    if len(shape) != 2 or extra.tensor.shape[1] != shape[1]:
        raise IncompatibleBase(
            f"{name}: rows of {extra.base_key} are {list(shape[1:])} wide, "
            f"got {list(extra.tensor.shape[1:])}",
            reason="shape_mismatch",
            context={
                "tensor": name,
                "expected": list(shape[1:]),
                "actual": list(extra.tensor.shape),
            },
        )
    for position, index in enumerate(extra.rows):
        if index >= shape[0]:
            raise IncompatibleBase(
                f"trainable_token_indices: token {index} is past {extra.base_key}'s "
                f"{shape[0]} rows",
                reason="index_out_of_range",
                context={"tensor": name, "position": position, "index": index, "bound": shape[0]},
            )
