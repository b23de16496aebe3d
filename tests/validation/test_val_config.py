"""adapter_config.json parsing, typing and peft's module matching."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry.errors import InvalidAdapterConfig, UnknownPeftType
from registry.validation import AdapterConfig, config_from_dict, parse_config
from registry.validation.config import KNOWN_PEFT_TYPES, PEFT_TYPES
from registry.validation.matching import module_is_targeted, pattern_lookup
from registry.validation.methods.registry_tables import TABLES as REGISTRY_TABLES


def _cfg(**fields: Any) -> AdapterConfig:
    return config_from_dict({"peft_type": "LORA", **fields})


def _schema_field(raw: dict[str, Any]) -> str:
    with pytest.raises(InvalidAdapterConfig) as info:
        config_from_dict(raw)
    assert info.value.reason == "schema"
    field: str = info.value.context["field"]
    return field


def test_parse_config_fixture_lora(fixtures_dir: Path) -> None:
    data = (fixtures_dir / "adapters/llama-lora-rank-pattern/adapter_config.json").read_bytes()
    cfg = parse_config(data)
    assert cfg.peft_type == "LORA"
    assert cfg.r == 4
    assert cfg.rank_pattern == {"v_proj": 8}
    assert cfg.alpha_pattern == {"v_proj": 32}
    assert cfg.target_modules == ("v_proj", "o_proj", "q_proj")
    assert cfg.base_model_name_or_path == "peft-fixtures/tiny-llama"
    assert cfg.raw["peft_version"] == "0.21.2"


def test_parse_config_defaults_follow_peft() -> None:
    cfg = _cfg(r=None, target_modules=None)
    assert (cfg.r, cfg.lora_alpha, cfg.use_dora, cfg.bias, cfg.init_r) == (8, 8, False, "none", 12)


def test_parse_config_ignores_unknown_keys() -> None:
    cfg = _cfg(eva_config={"x": 1}, alora_invocation_tokens="anything", r=16)
    assert cfg.r == 16


def test_parse_config_rejects_duplicate_keys() -> None:
    with pytest.raises(InvalidAdapterConfig) as info:
        parse_config(b'{"peft_type": "LORA", "r": 4, "r": 64}')
    assert info.value.reason == "duplicate_key"
    assert info.value.context["field"] == "r"


@pytest.mark.parametrize(
    "data", [b"", b"not json", b"[1]", b'"LORA"', b"\xff\xfe", b'{"r": NaN, "peft_type": "LORA"}']
)
def test_parse_config_malformed_json(data: bytes) -> None:
    with pytest.raises(InvalidAdapterConfig) as info:
        parse_config(data)
    assert info.value.reason == "malformed_json"


def test_parse_config_size_cap() -> None:
    data = json.dumps({"peft_type": "LORA", "pad": "x" * 100}).encode()
    with pytest.raises(InvalidAdapterConfig) as info:
        parse_config(data, max_bytes=50)
    assert info.value.reason == "too_large"


@pytest.mark.parametrize("raw", [{}, {"peft_type": None, "r": 8}])
def test_parse_config_missing_peft_type(raw: dict[str, Any]) -> None:
    with pytest.raises(InvalidAdapterConfig) as info:
        config_from_dict(raw)
    assert info.value.reason == "missing_peft_type"


@pytest.mark.parametrize("value", ["SUPER_LORA", "lora", "DORA", ""])
def test_parse_config_unknown_peft_type(value: str) -> None:
    with pytest.raises(UnknownPeftType) as info:
        config_from_dict({"peft_type": value})
    assert info.value.reason == value


@pytest.mark.parametrize("value", sorted(PEFT_TYPES - KNOWN_PEFT_TYPES))
def test_real_peft_types_without_checks_are_refused_not_accepted_unchecked(value: str) -> None:
    with pytest.raises(UnknownPeftType) as info:
        config_from_dict({"peft_type": value, "r": 8})
    assert info.value.reason == "not_validated"
    assert info.value.context["peft_type"] == value
    assert "refused rather than stored unchecked" in info.value.detail
    assert info.value.context["why"] in info.value.detail


def test_every_refused_peft_type_says_why() -> None:
    from registry.validation.refused_methods import REFUSED_WHY

    assert set(REFUSED_WHY) == PEFT_TYPES - KNOWN_PEFT_TYPES


#: Registry-native kinds (docs/formats.md): never a peft name, so never shadowing one.
REGISTRY_NATIVE_TYPES = frozenset({"SPARSE_DELTA", *(m.peft_type for m in REGISTRY_TABLES)})


def test_every_known_type_is_a_peft_type() -> None:
    assert KNOWN_PEFT_TYPES - REGISTRY_NATIVE_TYPES <= PEFT_TYPES
    assert REGISTRY_NATIVE_TYPES <= KNOWN_PEFT_TYPES
    assert not REGISTRY_NATIVE_TYPES & PEFT_TYPES
    assert {"BEFT", "VERA", "BITFIT"} <= KNOWN_PEFT_TYPES


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"peft_type": 5}, "peft_type"),
        ({"peft_type": "LORA", "r": 0}, "r"),
        ({"peft_type": "LORA", "r": -4}, "r"),
        ({"peft_type": "LORA", "r": "8"}, "r"),
        ({"peft_type": "LORA", "r": True}, "r"),
        ({"peft_type": "LORA", "r": 4.0}, "r"),
        ({"peft_type": "LORA", "lora_alpha": "8"}, "lora_alpha"),
        ({"peft_type": "LORA", "target_modules": 5}, "target_modules"),
        ({"peft_type": "LORA", "target_modules": ["q", 1]}, "target_modules"),
        ({"peft_type": "LORA", "target_modules": "(unclosed"}, "target_modules"),
        ({"peft_type": "LORA", "rank_pattern": {"v_proj": "8"}}, "rank_pattern"),
        ({"peft_type": "LORA", "rank_pattern": ["v_proj"]}, "rank_pattern"),
        ({"peft_type": "LORA", "use_dora": "yes"}, "use_dora"),
        ({"peft_type": "LORA", "modules_to_save": "lm_head"}, "modules_to_save"),
        ({"peft_type": "LORA", "layers_to_transform": [1, "2"]}, "layers_to_transform"),
        ({"peft_type": "LORA", "task_type": 3}, "task_type"),
        ({"peft_type": "ADALORA", "init_r": 0}, "init_r"),
        ({"peft_type": "ADALORA", "rank_pattern": {"m.lora_E": [1, 0]}}, "rank_pattern"),
        ({"peft_type": "IA3", "feedforward_modules": {"a": 1}}, "feedforward_modules"),
        ({"peft_type": "LOKR", "alpha": [8]}, "alpha"),
        ({"peft_type": "PREFIX_TUNING", "num_virtual_tokens": 0}, "num_virtual_tokens"),
        ({"peft_type": "PROMPT_TUNING", "token_dim": "64"}, "token_dim"),
    ],
)
def test_parse_config_schema_errors_name_the_field(raw: dict[str, Any], field: str) -> None:
    assert _schema_field(raw) == field


def test_parse_config_fields_of_other_methods_are_not_checked() -> None:
    # peft drops keys its config class does not know; so do we (no type check either).
    cfg = config_from_dict({"peft_type": "PROMPT_TUNING", "r": "x", "num_virtual_tokens": 4})
    assert cfg.num_virtual_tokens == 4


def test_parse_config_regex_target_modules_kept_as_string() -> None:
    cfg = _cfg(target_modules=r".*\.(q|v)_proj")
    assert cfg.target_modules == r".*\.(q|v)_proj"


def test_module_is_targeted_list_matches_exact_or_dotted_suffix() -> None:
    cfg = _cfg(target_modules=["q_proj", "mlp.c_proj"])
    assert module_is_targeted("model.layers.0.self_attn.q_proj", cfg)
    assert module_is_targeted("q_proj", cfg)
    assert module_is_targeted("transformer.h.0.mlp.c_proj", cfg)
    assert not module_is_targeted("transformer.h.0.attn.c_proj", cfg)
    assert not module_is_targeted("model.layers.0.self_attn.xq_proj", cfg)


def test_module_is_targeted_regex_is_fullmatched() -> None:
    cfg = _cfg(target_modules=r".*\.q_proj")
    assert module_is_targeted("model.layers.0.self_attn.q_proj", cfg)
    assert not module_is_targeted("model.layers.0.self_attn.q_proj.extra", cfg)


def test_module_is_targeted_exclude_and_layers() -> None:
    cfg = _cfg(
        target_modules=["q_proj", "k_proj"],
        exclude_modules=["model.layers.1.self_attn.k_proj"],
        layers_to_transform=[1],
        layers_pattern="layers",
    )
    assert module_is_targeted("model.layers.1.self_attn.q_proj", cfg)
    assert not module_is_targeted("model.layers.0.self_attn.q_proj", cfg)
    assert not module_is_targeted("model.layers.1.self_attn.k_proj", cfg)


def test_pattern_lookup_matches_like_peft() -> None:
    pattern = {"v_proj": 8, r"model\.layers\.1\..*o_proj": 2}
    cfg = _cfg(rank_pattern=pattern)
    assert pattern_lookup(cfg, pattern, "model.layers.0.self_attn.v_proj") == 8
    assert pattern_lookup(cfg, pattern, "model.layers.1.self_attn.o_proj") == 2
    assert pattern_lookup(cfg, pattern, "model.layers.0.self_attn.o_proj") is None
    assert pattern_lookup(cfg, pattern, "model.layers.0.self_attn.xv_proj") is None


_TARGETING = [
    "target_modules",
    "exclude_modules",
    "modules_to_save",
    "layers_to_transform",
    "layers_pattern",
]
_LORA = [
    *_TARGETING,
    "r",
    "lora_alpha",
    "rank_pattern",
    "alpha_pattern",
    "use_dora",
    "use_rslora",
    "fan_in_fan_out",
    "bias",
    "lora_bias",
]
_LYCORIS = [*_TARGETING, "r", "alpha", "rank_pattern", "alpha_pattern", "use_effective_conv2d"]


@pytest.mark.parametrize(
    ("peft_type", "checked"),
    [
        ("LORA", _LORA),
        ("ADALORA", [*_LORA, "init_r", "target_r"]),
        ("LOHA", _LYCORIS),
        ("LOKR", [*_LYCORIS, "decompose_both", "decompose_factor"]),
    ],
)
def test_schema_errors_come_in_a_fixed_field_order(peft_type: str, checked: list[str]) -> None:
    """With every field wrong, the error names the first in checking order (the common fields,
    then the method's); fixing fields one at a time walks the whole order."""
    names = ["task_type", "base_model_name_or_path", "revision", *_LORA, *_LYCORIS]
    names += ["init_r", "target_r", "decompose_both", "decompose_factor", "feedforward_modules"]
    raw: dict[str, Any] = {"peft_type": peft_type, **{name: [{}] for name in names}}
    seen: list[str] = []
    while True:
        try:
            config_from_dict(raw)
        except InvalidAdapterConfig as exc:
            seen.append(exc.context["field"])
            del raw[seen[-1]]
        else:
            break
    assert seen == ["task_type", "base_model_name_or_path", "revision", *checked]
