"""Make the AdapterHub fixtures in ``fixtures/`` with the real ``adapters`` library.

``adapters`` pins transformers 4.x, so it runs in its own environment, not the test venv::

    python3.11 -m venv /tmp/hub-venv
    /tmp/hub-venv/bin/pip install adapters==1.3.0 torch==2.13.0 accelerate
    /tmp/hub-venv/bin/python tests/validation/hub/make_fixtures.py

Writes a tiny random BERT base (``fixtures/bert-base``: config.json + model.safetensors) and, on
it, a Pfeiffer (``seq_bn``, with a classification head), a Houlsby (``double_seq_bn``) and a
parallel (``par_bn``) adapter saved with ``use_safetensors=True``, plus one default (pickle)
save, ``seq_pickle``, for the refusal and ``adapters convert``.

``--more`` adds, without touching those (same base, loaded from ``fixtures/bert-base``): a
Compacter (``cp``: Houlsby PHM, shared rule), a Compacter++ (``cpp``: Pfeiffer PHM, phm_dim 2), a
PHM variant with shared factorized W and per-layer factorized rules and no bias (``cp_shared``),
an AdapterFusion of two Pfeiffer adapters (``fusion``: query/key/value), a dense-only fusion
(``fusion_dense``), and prefix tuning saved the only way ``adapters`` can (a pickle:
``prefix_pickle``, bottleneck MLP, and ``prefix_flat_pickle``), and, pickle-only too since their
``ln_before`` norm is shared, ``ln_before_pickle`` (Pfeiffer) and ``cpp_ln_pickle`` (Compacter++
with ``ln_before`` and ``ln_after``), and with ``use_gating`` a Houlsby adapter (``gated``) and,
pickle-only, prefix tuning (``prefix_gated_pickle``). Run ``main`` first: it deletes
``fixtures/``; ``--more`` rewrites its own fixtures byte for byte and adds the new ones.
"""
# mypy: disable-error-code="import-not-found"

from __future__ import annotations

import shutil
import sys
from pathlib import Path

OUT = Path(__file__).parent / "fixtures"


def main() -> None:
    import adapters
    import torch
    import transformers
    from adapters import AutoAdapterModel, DoubleSeqBnConfig, ParBnConfig, SeqBnConfig

    shutil.rmtree(OUT, ignore_errors=True)
    config = transformers.BertConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        vocab_size=128,
        max_position_embeddings=64,
    )
    torch.manual_seed(0)
    base = transformers.BertModel(config)
    base.save_pretrained(OUT / "bert-base", safe_serialization=True)
    model = AutoAdapterModel.from_pretrained(OUT / "bert-base")
    for name, cfg in (
        ("hub_seq", SeqBnConfig(reduction_factor=4)),
        ("hub_double", DoubleSeqBnConfig(reduction_factor=8)),
        ("hub_par", ParBnConfig(reduction_factor=2)),
    ):
        model.add_adapter(name, config=cfg)
    model.add_classification_head("hub_seq", num_labels=3)
    for name in ("hub_seq", "hub_double", "hub_par"):
        with torch.no_grad():  # trained-looking weights (adapters initialises up to zero)
            for key, param in model.named_parameters():
                if f".{name}." in key:
                    param.add_(torch.randn_like(param) * 0.01)
        model.save_adapter(OUT / name.removeprefix("hub_"), name, use_safetensors=True)
    model.save_adapter(OUT / "seq_pickle", "hub_seq", with_head=False)
    sys.stdout.write(f"adapters {adapters.__version__} -> {OUT}\n")


def more() -> None:
    import adapters
    import torch
    from adapters import (
        AdapterFusionConfig,
        AutoAdapterModel,
        CompacterConfig,
        CompacterPlusPlusConfig,
        DoubleSeqBnConfig,
        Fuse,
        PrefixTuningConfig,
        SeqBnConfig,
    )

    torch.manual_seed(1)
    model = AutoAdapterModel.from_pretrained(OUT / "bert-base")
    phm = {
        "cp": CompacterConfig(reduction_factor=4),
        "cpp": CompacterPlusPlusConfig(reduction_factor=4, phm_dim=2),
        "cp_shared": CompacterPlusPlusConfig(
            reduction_factor=4,
            phm_dim=2,
            phm_rank=2,
            shared_W_phm=True,
            shared_phm_rule=False,
            factorized_phm_rule=True,
            phm_bias=False,
        ),
    }
    for name, cfg in phm.items():
        model.add_adapter(name, config=cfg)
        model.save_adapter(OUT / name, name, use_safetensors=True)
    for name in ("fa", "fb"):
        model.add_adapter(name, config=SeqBnConfig(reduction_factor=4))
    model.add_adapter_fusion(Fuse("fa", "fb"))
    model.save_adapter_fusion(OUT / "fusion", "fa,fb", use_safetensors=True)
    dense = AdapterFusionConfig.load("static", query=False, key=False, value=False)
    model.add_adapter("fc", config=SeqBnConfig(reduction_factor=4))
    model.add_adapter_fusion(Fuse("fb", "fc"), config=dense)
    model.save_adapter_fusion(OUT / "fusion_dense", "fb,fc", use_safetensors=True)
    model.add_adapter("pt", config=PrefixTuningConfig(prefix_length=5, bottleneck_size=16))
    model.save_adapter(OUT / "prefix_pickle", "pt")
    model.add_adapter("ptflat", config=PrefixTuningConfig(prefix_length=3, flat=True))
    model.save_adapter(OUT / "prefix_flat_pickle", "ptflat")
    # ln_before: the norm is both adapter_norm_before and adapter_down.0 (shared: pickle only)
    model.add_adapter("lnb", config=SeqBnConfig(reduction_factor=4, ln_before=True))
    model.save_adapter(OUT / "ln_before_pickle", "lnb")
    ln_phm = CompacterPlusPlusConfig(reduction_factor=4, ln_before=True, ln_after=True)
    model.add_adapter("cpp_ln", config=ln_phm)
    model.save_adapter(OUT / "cpp_ln_pickle", "cpp_ln")
    # use_gating: a scalar gate (Linear(hidden, 1)) per position, and per layer for the prefix
    model.add_adapter("gated", config=DoubleSeqBnConfig(reduction_factor=8, use_gating=True))
    model.save_adapter(OUT / "gated", "gated", use_safetensors=True)
    gated_prefix = PrefixTuningConfig(prefix_length=4, bottleneck_size=8, use_gating=True)
    model.add_adapter("ptgate", config=gated_prefix)
    model.save_adapter(OUT / "prefix_gated_pickle", "ptgate")
    sys.stdout.write(f"adapters {adapters.__version__} (more) -> {OUT}\n")


if __name__ == "__main__":
    more() if "--more" in sys.argv[1:] else main()
