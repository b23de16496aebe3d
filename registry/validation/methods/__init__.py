"""Declarative tables of adaptation methods, and the engine that checks adapters against them.

:data:`METHODS` maps a ``peft_type`` to its :class:`~registry.validation.methods.spec.Method`.
The LoRA family (LoRA, DoRA, rsLoRA, AdaLoRA, IA3, LoHa, LoKr) and prompt learning keep their
hand-written checks (``checks_lora``, ``checks_prompt``); every other method the registry accepts
is a table here. peft methods in neither are refused as ``unknown_peft_type``.
"""

from __future__ import annotations

from registry.validation.methods.peft_tables import TABLES as PEFT_TABLES
from registry.validation.methods.registry_tables import TABLES as REGISTRY_TABLES
from registry.validation.methods.spec import Method, Role

METHODS: dict[str, Method] = {m.peft_type: m for m in (*PEFT_TABLES, *REGISTRY_TABLES)}

__all__ = ["METHODS", "Method", "Role"]
