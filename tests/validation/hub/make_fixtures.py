"""Make the AdapterHub fixtures in ``fixtures/`` with the real ``adapters`` library.

``adapters`` pins transformers 4.x, so it runs in its own environment, not the test venv::

    python3.11 -m venv /tmp/hub-venv
    /tmp/hub-venv/bin/pip install adapters==1.3.0 torch==2.13.0 accelerate
    /tmp/hub-venv/bin/python tests/validation/hub/make_fixtures.py

Writes a tiny random BERT base (``fixtures/bert-base``: config.json + model.safetensors) and, on
it, a Pfeiffer (``seq_bn``, with a classification head), a Houlsby (``double_seq_bn``) and a
parallel (``par_bn``) adapter saved with ``use_safetensors=True``, plus one default (pickle)
save, ``seq_pickle``, for the refusal and ``adapters convert``.
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


if __name__ == "__main__":
    main()
