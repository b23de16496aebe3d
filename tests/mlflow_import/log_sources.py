"""Log the MLflow sources the import tests read, with the real ``mlflow`` client (run as a
subprocess: ``python -m tests.mlflow_import.log_sources URL OUT.json``; keeps mlflow, torch
and transformers out of the test process).

- ``peft``: a PEFT model (tiny gpt2 + the gpt2-lora-r4-cattn fixture) logged with
  ``mlflow.transformers.log_model`` (a logged model whose ``peft/`` folder holds the adapter),
  registered as model ``NAME`` version 1 with alias ``champion``; run metrics logged;
- ``plain``: ``log_artifacts`` of a plain adapter folder (``adapter/``, with a pickle decoy next
  to it) and of Trainer checkpoints (``trainer/checkpoint-5``, ``trainer/checkpoint-20``, each
  with ``optimizer.pt`` / ``training_args.bin`` decoys);
- ``truncated``, ``llama`` (a valid llama adapter: a base mismatch for a gpt2 base) and
  ``empty`` (no adapter at all).
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

import mlflow
import peft
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

from tests.fixtures.peft import PEFT_FIXTURES as F

PICKLE = b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00K\x01."


def _peft_run(name: str) -> dict[str, Any]:
    base = AutoModelForCausalLM.from_pretrained(F / "bases" / "tiny-gpt2")
    model = peft.PeftModel.from_pretrained(base, F / "adapters" / "gpt2-lora-r4-cattn")
    vocab = {f"t{i}": i for i in range(base.config.vocab_size)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tok = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tk, unk_token="t0", pad_token="t0"
    )
    with mlflow.start_run() as run:
        mlflow.log_metric("eval_loss", 2.5, step=1)
        mlflow.log_metric("eval_loss", 1.25, step=10)
        mlflow.log_metric("accuracy", 0.75, step=10)
        mlflow.log_metric("eval loss", 1.0, step=10)
        info = mlflow.transformers.log_model(
            transformers_model={"model": model, "tokenizer": tok},
            name="model",
            task="text-generation",
            pip_requirements=["transformers", "peft"],
            registered_model_name=name,
        )
    mlflow.MlflowClient().set_registered_model_alias(name, "champion", "1")
    return {"run_id": run.info.run_id, "model_id": info.model_id, "name": name}


def _folder(root: Path, src: Path, readme: str | None = None) -> Path:
    shutil.copytree(src, root)
    if readme is not None:
        (root / "README.md").write_text(readme)
    return root


def _plain_run(tmp: Path) -> str:
    adapter = _folder(tmp / "adapter", F / "adapters" / "gpt2-lora-r4-cattn", "plain\n")
    (adapter / "training_args.bin").write_bytes(PICKLE)
    trainer = tmp / "trainer"
    for step, fixture in ((5, "gpt2-lora-r4-cattn"), (20, "gpt2-lora-r8-attn-mlp")):
        ckpt = _folder(trainer / f"checkpoint-{step}", F / "adapters" / fixture, f"step {step}\n")
        (ckpt / "optimizer.pt").write_bytes(PICKLE)
        (ckpt / "training_args.bin").write_bytes(PICKLE)
    with mlflow.start_run() as run:
        mlflow.log_metric("train_loss", 0.5, step=20)
        mlflow.log_artifacts(str(adapter), "adapter")
        mlflow.log_artifacts(str(trainer), "trainer")
    return str(run.info.run_id)


def _artifacts_run(src: Path) -> str:
    with mlflow.start_run() as run:
        mlflow.log_artifacts(str(src), "adapter")
    return str(run.info.run_id)


def main(url: str, out: Path) -> None:
    mlflow.set_tracking_uri(url)
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty"
        empty.mkdir()
        (empty / "notes.txt").write_text("no adapter here\n")
        result = {
            "peft": _peft_run(f"lora-{uuid.uuid4().hex[:8]}"),
            "plain": _plain_run(Path(tmp)),
            "truncated": _artifacts_run(F / "broken" / "truncated-safetensors"),
            "llama": _artifacts_run(F / "adapters" / "llama-lora-r2-qv-notask"),
            "empty": _artifacts_run(empty),
        }
    out.write_text(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
