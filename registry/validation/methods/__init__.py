"""Declarative tables of adaptation methods, and the engine that checks adapters against them.

:data:`METHODS` maps a ``peft_type`` to its :class:`~registry.validation.methods.spec.Method`.
The LoRA family (LoRA, DoRA, rsLoRA, AdaLoRA, IA3, LoHa, LoKr) and prompt learning keep their
hand-written checks (``checks_lora``, ``checks_prompt``); every other method the registry accepts
is a table here. peft methods in neither are refused as ``unknown_peft_type``.
"""

from __future__ import annotations

from registry.validation.methods.peft_frequency import TABLES as FREQUENCY_TABLES
from registry.validation.methods.peft_misc import TABLES as MISC_TABLES
from registry.validation.methods.peft_orthogonal import TABLES as ORTHOGONAL_TABLES
from registry.validation.methods.peft_orthogonal_blocks import TABLES as BLOCK_TABLES
from registry.validation.methods.peft_projection import TABLES as PROJECTION_TABLES
from registry.validation.methods.peft_sparse import TABLES as SPARSE_TABLES
from registry.validation.methods.peft_svd import TABLES as SVD_TABLES
from registry.validation.methods.peft_tables import TABLES as PEFT_TABLES
from registry.validation.methods.registry_tables import TABLES as REGISTRY_TABLES
from registry.validation.methods.spec import Method, Role

TABLES: tuple[Method, ...] = (
    *PEFT_TABLES,
    *PROJECTION_TABLES,
    *FREQUENCY_TABLES,
    *ORTHOGONAL_TABLES,
    *BLOCK_TABLES,
    *SPARSE_TABLES,
    *SVD_TABLES,
    *MISC_TABLES,
    *REGISTRY_TABLES,
)
METHODS: dict[str, Method] = {m.peft_type: m for m in TABLES}
assert len(METHODS) == len(TABLES), "two tables for one peft_type"

__all__ = ["METHODS", "Method", "Role"]
