"""Tables of peft 0.21's methods beyond the LoRA family (one :class:`Method` each).

Each entry was written from peft's ``tuners/<method>/{config,layer}.py`` (``source``) and is
tested against adapters peft itself saves (``tests/validation/methods/``). To add a method: add
its table here (or in a sibling module listed in :mod:`registry.validation.methods`), then a test
that builds a real adapter and one broken variant per failure reason.
"""

from __future__ import annotations

from registry.validation.methods.spec import Method, Role

BEFT = Method(
    peft_type="BEFT",
    title="Bias-efficient fine-tuning (BEFT, BitFit-style bias offsets)",
    family="bias",
    roles=(Role("beft_bias", "1, out"),),
    source="peft/tuners/beft/layer.py: beft_bias = Parameter(zeros(1, out_features))",
)

VERA = Method(
    peft_type="VERA",
    title="Vector-based Random Matrix Adaptation (VeRA)",
    family="vector",
    roles=(Role("vera_lambda_b", "out"), Role("vera_lambda_d", "r")),
    shared=(
        Role("vera_A", "r, max_in", required="save_projection", buffer=True),
        Role("vera_B", "max_out, r", required="save_projection", buffer=True),
    ),
    dims={"r": 256, "save_projection": True},
    source="peft/tuners/vera/{config,layer,model}.py: vera_A [r, max in], vera_B [max out, r] "
    "(BufferDict(persistent=save_projection), model.py)",
)

TABLES: tuple[Method, ...] = (BEFT, VERA)
