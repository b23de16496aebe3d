"""ADAPTION_PROMPT (LLaMA-Adapter): the check its table hooks in (:data:`MethodCheck`).

peft (``tuners/adaption_prompt/{config,layer,model}.py``) wraps the *last* ``adapter_layers``
attention modules whose name ends with ``.<target_modules>`` (a plain name, not a regex:
``self_attn`` for llama/mistral, ``attn`` for gpt2) and saves, per wrapped module,
``base_model.model.<module>.adaption_prompt`` ``[1, adapter_len, hidden_size]`` and
``...adaption_gate`` ``[1]``. The module is a container (no ``.weight`` of its own), so the
table engine's per-weight checks do not apply: this hook is the whole check.

Errors: :class:`~registry.errors.InvalidAdapterConfig` ``schema`` (``adapter_len``/
``adapter_layers`` not positive integers, ``target_modules`` not a name);
:class:`~registry.errors.InconsistentAdapter` ``unexpected_tensor``, ``missing_tensor``,
``shape_mismatch``, ``config_mismatch`` (not ``adapter_layers`` modules);
:class:`~registry.errors.IncompatibleBase` ``unsupported_model`` (a model type peft's adaption
prompt does not know), ``missing_modules`` (not the base's last ``adapter_layers`` attention
modules), ``shape_mismatch`` (prompt width != the base hidden size).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NoReturn

from registry.errors import IncompatibleBase, InconsistentAdapter, InvalidAdapterConfig
from registry.validation.module_order import module_order

if TYPE_CHECKING:
    from registry.validation.config import AdapterConfig
    from registry.validation.manifest import BaseManifest
    from registry.validation.safetensors import TensorInfo

PREFIX = "base_model.model."
PROMPT, GATE = "adaption_prompt", "adaption_gate"
#: peft's ``TRANSFORMERS_MODEL_CONFIG``: model type -> default attention module name.
MODEL_TYPES: dict[str, str] = {"llama": "self_attn", "mistral": "self_attn", "gpt2": "attn"}


def _config_int(cfg: AdapterConfig, key: str) -> int:
    value = cfg.raw.get(key)
    if type(value) is not int or value <= 0:
        raise InvalidAdapterConfig(
            f"{key} must be a positive integer",
            reason="schema",
            context={"file": "adapter_config.json", "field": key},
        )
    return value


def _target(cfg: AdapterConfig, base: BaseManifest | None) -> str | None:
    value = cfg.raw.get("target_modules")
    if value is None:  # peft fills it from the model type when it loads
        model_type = base.model_type if base is not None else None
        return MODEL_TYPES.get(model_type or "")
    if not isinstance(value, str) or not value:
        raise InvalidAdapterConfig(
            "target_modules must be the attention module's name",
            reason="schema",
            context={"file": "adapter_config.json", "field": "target_modules"},
        )
    return value


def _inconsistent(reason: str, detail: str, **context: Any) -> NoReturn:
    raise InconsistentAdapter(detail, reason=reason, context=context)


def _incompatible(reason: str, detail: str, **context: Any) -> NoReturn:
    raise IncompatibleBase(detail, reason=reason, context=context)


def _modules(
    tensors: Mapping[str, TensorInfo], target: str | None
) -> dict[str, dict[str, TensorInfo]]:
    """Module path -> {suffix: tensor}; refuses a name peft would not save."""
    modules: dict[str, dict[str, TensorInfo]] = {}
    for name, info in tensors.items():
        path, _, suffix = name.removeprefix(PREFIX).rpartition(".")
        ok = name.startswith(PREFIX) and suffix in (PROMPT, GATE) and bool(path)
        if not ok:
            _inconsistent("unexpected_tensor", "not an adaption prompt tensor", tensor=name)
        if target is not None and not path.endswith("." + target):
            detail = f"module is not an attention module named {target!r}"
            _inconsistent("unexpected_tensor", detail, tensor=name, module=path)
        modules.setdefault(path, {})[suffix] = info
    return modules


def _check_shapes(module: str, parts: Mapping[str, TensorInfo], env: dict[str, int]) -> None:
    for suffix in (PROMPT, GATE):
        if suffix not in parts:
            name = f"{PREFIX}{module}.{suffix}"
            _inconsistent("missing_tensor", f"{suffix} missing", tensor=name, module=module)
    prompt, gate = parts[PROMPT], parts[GATE]
    hidden = prompt.shape[2] if len(prompt.shape) == 3 else -1
    env.setdefault("hidden", hidden)
    expected = (1, env["adapter_len"], env["hidden"])
    for info, want in ((prompt, expected), (gate, (1,))):
        if info.shape != want:
            detail = (
                f"{info.name.rpartition('.')[2]}: expected {list(want)}, got {list(info.shape)}"
            )
            _inconsistent(
                "shape_mismatch",
                detail,
                tensor=info.name,
                module=module,
                expected=list(want),
                actual=list(info.shape),
            )


def check_adaption_prompt(
    cfg: AdapterConfig, tensors: Mapping[str, TensorInfo], base: BaseManifest | None, found: Any
) -> None:
    """The ADAPTION_PROMPT check (see the module docstring); fills ``found``'s targets."""
    length, layers = _config_int(cfg, "adapter_len"), _config_int(cfg, "adapter_layers")
    target = _target(cfg, base)
    modules = _modules(tensors, target)
    env = {"adapter_len": length}
    for module, parts in sorted(modules.items()):
        _check_shapes(module, parts, env)
    if len(modules) != layers:
        _inconsistent(
            "config_mismatch",
            f"adapter_layers is {layers} but {len(modules)} attention modules are adapted",
            field="adapter_layers",
            expected=layers,
            actual=len(modules),
        )
    found.targets = sorted(modules)
    if base is not None:
        _check_base(base, target, sorted(modules), layers, env["hidden"])
        found.checked = True


def _base_attention(base: BaseManifest, target: str) -> list[str]:
    """The base's modules named ``.<target>``, in layer order (as ``named_modules`` walks them)."""
    found: set[str] = set()
    for key in base.tensors:
        parts = key.split(".")
        for end in range(1, len(parts)):
            path = ".".join(parts[:end])
            if path.endswith("." + target):
                found.add(path)
    return sorted(found, key=module_order)


def _check_base(
    base: BaseManifest, target: str | None, modules: list[str], layers: int, hidden: int
) -> None:
    model_type = base.model_type
    if model_type is not None and model_type not in MODEL_TYPES:
        detail = f"peft's adaption prompt supports {sorted(MODEL_TYPES)}, not {model_type!r}"
        _incompatible("unsupported_model", detail, model_type=model_type)
    if base.hidden_size is not None and hidden != base.hidden_size:
        _incompatible(
            "shape_mismatch",
            f"adaption_prompt width {hidden} != base hidden size {base.hidden_size}",
            tensor=f"{PREFIX}{modules[0]}.{PROMPT}",
            field="hidden_size",
            expected=base.hidden_size,
            actual=hidden,
        )
    candidates = _base_attention(base, target) if target is not None else []
    wanted = candidates[-layers:] if len(candidates) >= layers else []
    # A base saved without the top-level prefix (``layers.1.self_attn``) names them one shorter.
    missing = [m for m in modules if m not in wanted and m.partition(".")[2] not in wanted]
    if missing or not wanted:
        _incompatible(
            "missing_modules",
            f"peft adapts the base's last {layers} {target!r} modules: {wanted or 'too few'}",
            modules=missing or modules,
            expected=wanted,
        )
