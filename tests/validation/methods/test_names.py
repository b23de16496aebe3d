"""Methods named in words and families (``registry/validation/methods/names.py``)."""

from __future__ import annotations

import re

import pytest

from registry.validation.adapterhub import HUB_TYPES
from registry.validation.config import KNOWN_PEFT_TYPES
from registry.validation.methods import METHODS
from registry.validation.methods import names as n


class TestTitlesAndFamilies:
    def test_every_accepted_type_has_a_title_and_a_known_family(self) -> None:
        assert set(n.accepted_types()) == KNOWN_PEFT_TYPES | set(METHODS) | HUB_TYPES
        for peft_type in n.accepted_types():
            assert n.method_title(peft_type) != peft_type, f"{peft_type} has no title"
            assert n.method_family(peft_type) in n.known_families()
            assert n.method_family(peft_type) != n.FALLBACK_FAMILY, peft_type

    def test_table_methods_are_named_by_their_table(self) -> None:
        for peft_type, method in METHODS.items():
            assert n.method_title(peft_type) == method.title
            assert n.method_family(peft_type) == method.family

    @pytest.mark.parametrize(
        ("config", "word"),
        [
            ({}, "(LoRA)"),
            ({"use_dora": True}, "DoRA"),
            ({"use_rslora": True}, "rsLoRA"),
            ({"use_dora": True, "use_rslora": True}, "DoRA + rsLoRA"),
            ({"init_lora_weights": "pissa_niter_4"}, "PiSSA"),
            ({"init_lora_weights": True, "use_dora": False}, "(LoRA)"),
        ],
    )
    def test_lora_variant_is_read_from_the_config(
        self, config: dict[str, object], word: str
    ) -> None:
        assert word in n.method_title("LORA", config)
        assert n.method_family("LORA") == "lora"

    def test_adalora_is_a_lora_method(self) -> None:
        assert "AdaLoRA" in n.method_title("ADALORA", {"use_dora": True})
        assert n.method_family("ADALORA") == "lora"

    def test_unknown_type_falls_back_to_its_name(self) -> None:
        assert n.method_title("SUPER_LORA") == "SUPER_LORA"
        assert n.method_family("SUPER_LORA") == "other"

    def test_adapterhub_types_are_bottleneck_adapters_by_prefix(self) -> None:
        assert n.method_family("ADAPTERHUB_DOUBLE_SEQ_BN") == "bottleneck"
        assert "Houlsby" in n.method_title("ADAPTERHUB_DOUBLE_SEQ_BN")
        assert n.method_family("ADAPTERHUB_FUTURE_KIND") == "bottleneck"


class TestSelectMethods:
    @pytest.mark.parametrize(
        ("term", "selector"),
        [
            ("lora", n.MethodSelector(("LORA",))),
            (" Lo-RA ", None),
            ("p-tuning", n.MethodSelector(("P_TUNING",))),
            ("p tuning", None),
            ("lora ", None),
            ("\u0131a3", None),  # dotless i upper-cases to I: not ASCII, not a name
            ("family:\u212aoo", None),
            ("dora", n.MethodSelector(("LORA",), flag="use_dora")),
            ("RSLORA", n.MethodSelector(("LORA",), flag="use_rslora")),
            ("adapterhub_seq_bn", n.MethodSelector(("ADAPTERHUB_SEQ_BN",))),
            (
                "family:bottleneck",
                n.MethodSelector(tuple(sorted(HUB_TYPES)), prefixes=("ADAPTERHUB_",)),
            ),
            ("nope", None),
            ("family:nope", None),
        ],
    )
    def test_terms(self, term: str, selector: n.MethodSelector | None) -> None:
        assert n.select_methods(term) == selector

    def test_family_lists_every_member_of_the_tables(self) -> None:
        for method in METHODS.values():
            selector = n.select_methods(f"family:{method.family}")
            assert selector is not None
            assert method.peft_type in selector.peft_types

    def test_family_lora_holds_the_low_rank_methods(self) -> None:
        selector = n.select_methods("Family:LoRA")
        assert selector is not None
        assert {"LORA", "ADALORA", "LOHA", "LOKR"} <= set(selector.peft_types)
        assert "IA3" not in selector.peft_types


class TestSearchPattern:
    """The API document's pattern for ``peft_type`` is exactly what the service accepts."""

    @pytest.mark.parametrize(
        "term",
        [
            "lora",
            "LoRa",
            "dora",
            "rs-lora",
            "rslora",
            "P-Tuning",
            "p_tuning",
            "xlora",
            "vera",
            "Adapterhub-seq_bn",
            "adapterhub_",
            "family:lora",
            "FAMILY:Orthogonal",
            "family:bottleneck",
            "family:",
            "family:nope",
            "family: lora",
            "lora ",
            " lora",
            "lora\n",
            "",
            "super_lora",
            "lora2",
            "\u0131a3",
            "adapterhub.x",
        ],
    )
    def test_pattern_matches_exactly_the_accepted_terms(self, term: str) -> None:
        matched = re.fullmatch(n.search_pattern(), term) is not None
        assert matched == (n.select_methods(term) is not None), term
