"""Tables of peft 0.21's other methods: Poly, LLaMA-Adapter's adaption prompt, FRoD, AdaMSS.

Written from peft's ``tuners/<method>/{config,layer,model}.py`` (``source``); tested against
adapters peft itself saves (``tests/validation/methods/test_peft_misc.py``).
"""

from __future__ import annotations

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

TABLES: tuple[Method, ...] = (POLY, ADAPTION_PROMPT)
