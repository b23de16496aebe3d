"""Map adapter tensor names to (module path, role), per PEFT method (peft-formats §1.4).

peft saves ``base_model.model.<module path>.<suffix>`` with the adapter name removed. This module
strips the prefix and the method's suffix to get the module path (the base checkpoint key minus
``.weight``), and sorts the rest into *extras*: full copies saved next to the adapter
(``modules_to_save`` parameters, biases saved by ``bias="all"|"lora_only"``, and the full base
embedding saved as ``<module>.base_layer.weight``).

Errors: :class:`~registry.errors.InconsistentAdapter` reason ``unexpected_tensor`` for a key
without the ``base_model.model.`` prefix, with a suffix the method does not produce, or for a
module that ``target_modules``/``exclude_modules``/``layers_to_transform`` do not select (peft
would silently drop such weights on load).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NoReturn

from registry.errors import InconsistentAdapter
from registry.validation.config import AdapterConfig
from registry.validation.matching import module_is_targeted, spec_matches
from registry.validation.safetensors import TensorInfo

PEFT_PREFIX = "base_model.model."

#: suffix -> role, per method. Roles are the suffix with its ``.weight`` dropped, except that
#: LoRA's ``lora_A.weight``/``lora_B.weight`` and AdaLoRA's ``lora_A``/``lora_B`` share A/B roles.
SUFFIXES: dict[str, dict[str, str]] = {
    "LORA": {
        "lora_A.weight": "A",
        "lora_B.weight": "B",
        "lora_embedding_A": "emb_A",
        "lora_embedding_B": "emb_B",
        "lora_magnitude_vector": "magnitude",
        "lora_B.bias": "B_bias",
    },
    "ADALORA": {"lora_A": "A", "lora_B": "B", "lora_E": "E"},
    "IA3": {"ia3_l": "ia3_l"},
    "LOHA": {
        name: name
        for name in ("hada_w1_a", "hada_w1_b", "hada_w2_a", "hada_w2_b", "hada_t1", "hada_t2")
    },
    "LOKR": {
        name: name
        for name in (
            "lokr_w1",
            "lokr_w1_a",
            "lokr_w1_b",
            "lokr_w2",
            "lokr_w2_a",
            "lokr_w2_b",
            "lokr_t2",
        )
    },
}
#: Extras any LoRA-like method may carry: base biases and the full saved embedding.
EXTRA_SUFFIXES: dict[str, str] = {
    "base_layer.bias": "base_bias",
    "base_layer.weight": "base_weight",
}


@dataclass
class ModuleTensors:
    """The adapter tensors of one targeted module, by role."""

    module: str
    parts: dict[str, TensorInfo] = field(default_factory=dict)


#: Where LoRA's ``trainable_token_indices`` rows are saved, after the embedding's path.
TOKEN_DELTA = ".token_adapter.trainable_tokens_delta"
#: The names an input embedding goes by (peft puts a plain list of token indices on it).
INPUT_EMBEDDING_LEAVES = ("embed_tokens", "wte", "word_embeddings", "embed_in", "shared")


class TokenRows:
    """The embedding rows ``trainable_token_indices`` gives each module. An object of names is
    looked up by the module path's dotted suffixes (``module == name`` or ``.name`` at its end,
    the first name the config lists winning), so a config naming many modules costs one pass,
    not one per saved tensor."""

    def __init__(self, cfg: AdapterConfig) -> None:
        spec = cfg.trainable_token_indices
        self._all = spec if isinstance(spec, tuple) else None
        named = spec.items() if isinstance(spec, dict) else ()
        self._named = {name: (i, rows) for i, (name, rows) in enumerate(named)}

    def of(self, module: str) -> tuple[int, ...] | None:
        """``module``'s rows (None: the config names no such embedding)."""
        if self._named:
            parts = module.split(".")
            suffixes = (".".join(parts[i:]) for i in range(len(parts)))
            hits = [self._named[s] for s in suffixes if s in self._named]
            return min(hits)[1] if hits else None
        if self._all is not None and module.rsplit(".", 1)[-1] in INPUT_EMBEDDING_LEAVES:
            return self._all
        return None


@dataclass(frozen=True)
class Extra:
    """A tensor saved in full; ``base_key`` is the base checkpoint key it must match."""

    kind: str  # "modules_to_save" | "bias" | "base_bias" | "base_weight" | "token_delta"
    module: str
    base_key: str
    tensor: TensorInfo
    #: ``token_delta``: the embedding rows the tensor holds, in order.
    rows: tuple[int, ...] = ()


@dataclass
class AdapterLayout:
    modules: dict[str, ModuleTensors] = field(default_factory=dict)
    extras: list[Extra] = field(default_factory=list)


def _unexpected(tensor: str, detail: str, **context: str) -> NoReturn:
    raise InconsistentAdapter(
        detail, reason="unexpected_tensor", context={"tensor": tensor, **context}
    )


def in_modules_to_save(path: str, cfg: AdapterConfig) -> str | None:
    """Return the saved module's path when ``path`` (a parameter key) lies inside one."""
    if not cfg.modules_to_save:
        return None
    parts = path.split(".")
    for end in range(len(parts) - 1, 0, -1):
        module = ".".join(parts[:end])
        if spec_matches(cfg, module, cfg.modules_to_save):
            return module
    return None


def classify(
    tensors: Mapping[str, TensorInfo],
    cfg: AdapterConfig,
    suffixes: Mapping[str, str] | None = None,
) -> AdapterLayout:
    """Sort an adapter's tensors into targeted modules and extras; ``suffixes`` (saved suffix ->
    role) defaults to the LoRA-like method's own (:data:`SUFFIXES`).

    Raises:
        InconsistentAdapter: ``unexpected_tensor``.
    """
    suffixes = SUFFIXES[cfg.peft_type] if suffixes is None else suffixes
    own, extra = _SuffixTable(suffixes), _EXTRA_TABLE
    targeted: dict[str, bool] = {}  # per module: several tensors share one
    tokens: TokenRows | None = None
    layout = AdapterLayout()
    modules = layout.modules
    for name, info in tensors.items():
        if not name.startswith(PEFT_PREFIX):
            _unexpected(name, f"tensor name does not start with {PEFT_PREFIX!r}")
        path = name[len(PEFT_PREFIX) :]
        role, module = own.match(path)
        if role is not None:
            selected = targeted.get(module)
            if selected is None:
                selected = targeted[module] = module_is_targeted(module, cfg)
            if not selected:
                _unexpected(name, "module not selected by the config's targeting", module=module)
            group = modules.get(module)
            if group is None:
                group = modules[module] = ModuleTensors(module)
            group.parts[role] = info
            continue
        if path.endswith(TOKEN_DELTA):
            tokens = tokens or TokenRows(cfg)
            module = path.removesuffix(TOKEN_DELTA)
            layout.extras.append(_token_delta(tokens.of(module), name, module, info))
            continue
        extra_role, module = extra.match(path)
        if extra_role is not None:
            base_key = module + "." + extra_role.removeprefix("base_")
            layout.extras.append(Extra(extra_role, module, base_key, info))
            continue
        saved = in_modules_to_save(path, cfg)
        if saved is not None:
            layout.extras.append(Extra("modules_to_save", saved, path, info))
        elif cfg.bias == "all" and path.endswith(".bias"):
            layout.extras.append(Extra("bias", path.removesuffix(".bias"), path, info))
        else:
            _unexpected(name, f"tensor is not part of a {cfg.peft_type} adapter")
    return layout


def _token_delta(rows: tuple[int, ...] | None, name: str, module: str, info: TensorInfo) -> Extra:
    """The rows ``trainable_token_indices`` trains in ``module``: ``[len(rows), dim]``."""
    if rows is None:
        _unexpected(name, "trainable_token_indices names no such embedding", module=module)
    if len(info.shape) != 2 or info.shape[0] != len(rows):
        raise InconsistentAdapter(
            f"{name}: one row per trainable token index ({len(rows)}), got {list(info.shape)}",
            reason="shape_mismatch",
            context={"tensor": name, "expected_rows": len(rows), "actual": list(info.shape)},
        )
    return Extra("token_delta", module, module + ".weight", info, rows)


class _SuffixTable:
    """A method's suffixes by their number of dotted components, so that a path finds its role
    with a dict lookup per component count instead of an ``endswith`` per suffix.

    Same answer as trying every suffix longest first (``"lora_B.bias"`` must not be read as a
    module named ``"...lora_B"``): the suffixes a path ends with all end at its end and start
    after a dot, so the longest has the most components.
    """

    def __init__(self, suffixes: Mapping[str, str]) -> None:
        by_count: dict[int, dict[str, str]] = {}
        for suffix, role in suffixes.items():
            by_count.setdefault(suffix.count(".") + 1, {})[suffix] = role
        self.counts = sorted(by_count.items(), reverse=True)
        self.most = self.counts[0][0] if self.counts else 0

    def match(self, path: str) -> tuple[str | None, str]:
        """(role, module path), or (None, path) when no suffix with a module before it fits."""
        parts = path.rsplit(".", self.most)
        for count, table in self.counts:
            if len(parts) <= count:
                continue
            role = table.get(parts[-1] if count == 1 else ".".join(parts[-count:]))
            module = ".".join(parts[:-count]) if role is not None else ""
            if module:
                return role, module
        return None, path


_EXTRA_TABLE = _SuffixTable(EXTRA_SUFFIXES)
