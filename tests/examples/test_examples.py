"""examples/: the README walk-through's base model and adapters, made by examples/make_examples.py.

The committed files must be exactly what the script writes (run here without torch, peft or
transformers importable, under two hash seeds), small, judged by the validator as the README
says, and indistinguishable in format from what peft and transformers write themselves.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.numpy import load, save

from registry.errors import AdapterInvalid, CorruptSafetensors
from registry.validation import FileSource, read_base_dir, validate_adapter

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GENERATED = ("bases", "adapters", "broken")
BASE = EXAMPLES / "bases" / "tiny-llama"
VALID = {  # folder -> (use_dora, use_rslora, trainable parameters)
    "adapters/support-bot-v1": (False, False, 1792),
    "adapters/support-bot-v2": (True, False, 992),
    "adapters/billing-bot": (False, True, 3584),
}
TRUNCATED = "broken/truncated-safetensors"
# The script must not need these: importing any of them fails in its process.
BLOCK_HEAVY = (
    "import runpy, sys\n"
    "for name in ('torch', 'peft', 'transformers'): sys.modules[name] = None\n"
    "sys.argv = [sys.argv[1], *sys.argv[2:]]\n"
    "runpy.run_path(sys.argv[0], run_name='__main__')\n"
)


def files_under(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for name in GENERATED
        for p in sorted((root / name).rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("hash_seed", ["0", "4242"])
def test_script_reproduces_the_committed_files_byte_for_byte(
    tmp_path: Path, hash_seed: str
) -> None:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    script = str(EXAMPLES / "make_examples.py")
    done = subprocess.run(
        [sys.executable, "-c", BLOCK_HEAVY, script, "--out", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    made, committed = files_under(tmp_path), files_under(EXAMPLES)
    assert sorted(made) == sorted(committed)
    changed = [name for name in made if made[name] != committed[name]]
    assert changed == [], "rerun examples/make_examples.py and commit its output"


def test_examples_are_small() -> None:
    assert sum(len(data) for data in files_under(EXAMPLES).values()) < 1_000_000


def _files(folder: str) -> dict[str, FileSource]:
    return {p.name: FileSource(p) for p in sorted((EXAMPLES / folder).iterdir())}


@pytest.mark.parametrize("folder", sorted(VALID))
def test_validator_accepts_the_walkthrough_adapters(folder: str) -> None:
    use_dora, use_rslora, params = VALID[folder]
    report = validate_adapter(_files(folder), base=read_base_dir(BASE))
    assert report.checked_against_base
    assert report.peft_type == "LORA"
    assert (report.use_dora, report.use_rslora) == (use_dora, use_rslora)
    assert report.trainable_params == params
    assert report.base_model_name_or_path == "peft-fixtures/tiny-llama"
    assert report.warnings == []


def test_validator_refuses_the_truncated_adapter_as_the_readme_says() -> None:
    for base in (read_base_dir(BASE), None):
        with pytest.raises(CorruptSafetensors) as info:
            validate_adapter(_files(TRUNCATED), base=base)
        assert info.value.context["reason"] == "truncated"


def test_validator_refuses_an_example_adapter_on_another_base(tmp_path: Path) -> None:
    """The base's shapes matter: the same adapter on a base with a wider v_proj is refused."""
    header = (BASE / "model.safetensors").read_bytes()
    other = tmp_path / "base"
    other.mkdir()
    (other / "config.json").write_bytes((BASE / "config.json").read_bytes())
    tensors = load(header)
    for layer in (0, 1):
        tensors[f"model.layers.{layer}.self_attn.v_proj.weight"] = tensors[
            f"model.layers.{layer}.self_attn.q_proj.weight"
        ]
    (other / "model.safetensors").write_bytes(save(tensors, metadata={"format": "pt"}))
    with pytest.raises(AdapterInvalid) as info:
        validate_adapter(_files("adapters/support-bot-v1"), base=read_base_dir(other))
    assert info.value.code == "incompatible_base"
    assert info.value.context["reason"] == "shape_mismatch"


def test_peft_and_transformers_read_and_write_the_same_files(tmp_path: Path) -> None:
    """The format oracle: transformers loads the base and saves it back to the same bytes; peft
    loads each adapter onto it with exactly the stored tensors and writes the same config;
    safetensors itself refuses the truncated file."""
    import torch
    from peft import LoraConfig, PeftModel
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(BASE)
    base.save_pretrained(tmp_path / "base")
    saved = tmp_path / "base" / "model.safetensors"
    assert saved.read_bytes() == (BASE / "model.safetensors").read_bytes()
    theirs = json.loads((tmp_path / "base" / "config.json").read_text())
    ours = json.loads((BASE / "config.json").read_text())
    assert {**theirs, "transformers_version": None} == {**ours, "transformers_version": None}

    for folder in sorted(VALID):
        model = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(BASE), EXAMPLES / folder
        )
        state = model.state_dict()
        stored = load_file(EXAMPLES / folder / "adapter_model.safetensors")
        for key, tensor in stored.items():
            if key.endswith("lora_magnitude_vector"):
                loaded = f"{key}.default.weight"
            else:
                loaded = key.removesuffix(".weight") + ".default.weight"
            assert torch.equal(state[loaded], tensor), key

        config = json.loads((EXAMPLES / folder / "adapter_config.json").read_text())
        wanted = {k: config[k] for k in ("r", "lora_alpha", "target_modules", "task_type")}
        flags = ("rank_pattern", "alpha_pattern", "use_dora", "use_rslora")
        peft_config = LoraConfig(**wanted, **{k: config[k] for k in flags})
        peft_config.base_model_name_or_path = config["base_model_name_or_path"]
        peft_config.inference_mode = True
        peft_config.save_pretrained(str(tmp_path / folder))
        written = (tmp_path / folder / "adapter_config.json").read_bytes()
        assert not written.endswith(b"\n")  # peft's json.dumps, no final newline: ours too
        assert not (EXAMPLES / folder / "adapter_config.json").read_bytes().endswith(b"\n")
        peft_dict = json.loads(written)
        for entry in (peft_dict, config):  # peft keeps target_modules as a set
            entry["target_modules"] = sorted(entry["target_modules"])
        assert peft_dict == config

    with pytest.raises(SafetensorError, match="incomplete metadata"):
        load_file(EXAMPLES / TRUNCATED / "adapter_model.safetensors")
