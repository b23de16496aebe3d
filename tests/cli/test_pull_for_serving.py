"""``adapters pull --for-serving``: a directory vLLM's filesystem resolver and LoRAX's local
source accept as is (canonical ``base_model_name_or_path``), weights byte-identical and
verified, the original digests recorded next to them."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from tests.cli.test_cli_e2e import ADAPTERS, cli, ready  # noqa: F401 - fixture
from tests.fixtures.server import LiveServer


def vllm_filesystem_resolver_accepts(directory: Path, served_base: str) -> bool:
    """vLLM's lora_filesystem_resolver rule (peft-formats.md §3.1): peft_type LORA and
    base_model_name_or_path equal to the served model name."""
    config = json.loads((directory / "adapter_config.json").read_text())
    return bool(
        config.get("peft_type") == "LORA"
        and config.get("base_model_name_or_path") == served_base
        and (directory / "adapter_model.safetensors").is_file()
    )


def test_pull_for_serving(ready: tuple[LiveServer, str, str], tmp_path: Path) -> None:  # noqa: F811
    server, ns, base = ready
    src = ADAPTERS / "llama-lora-rank-pattern"
    code, pushed, err = cli(
        server, "adapters", "push", str(src), "--adapter", f"{ns}/bot", "--base", base
    )
    assert code == 0, err
    plain = tmp_path / "plain"
    assert cli(server, "adapters", "pull", f"{ns}/bot@v1", "--to", str(plain))[0] == 0
    assert not vllm_filesystem_resolver_accepts(plain, base.split("@")[0])  # the trainer's path
    serving = tmp_path / "serving"
    code, body, err = cli(
        server, "adapters", "pull", f"{ns}/bot@v1", "--to", str(serving), "--for-serving"
    )
    assert code == 0, err
    name, revision = base.split("@")
    assert body["serving"] == {"base_model_name_or_path": name, "revision": revision}
    assert vllm_filesystem_resolver_accepts(serving, name)
    weights = (serving / "adapter_model.safetensors").read_bytes()
    assert weights == (src / "adapter_model.safetensors").read_bytes()
    record = json.loads((serving / "registry-pull.json").read_text())
    assert record["digest"] == pushed["digest"]
    recorded = {f["name"]: f["digest"] for f in record["files"]}
    assert recorded["adapter_model.safetensors"] == "sha256:" + hashlib.sha256(weights).hexdigest()
    # Everything but the config is unchanged; the config keeps every other key.
    original = json.loads((src / "adapter_config.json").read_text())
    rewritten = json.loads((serving / "adapter_config.json").read_text())
    assert {
        k: v for k, v in rewritten.items() if k not in ("base_model_name_or_path", "revision")
    } == {k: v for k, v in original.items() if k not in ("base_model_name_or_path", "revision")}
    served_as = tmp_path / "served-as"
    code, body, _ = cli(
        server,
        "adapters",
        "pull",
        f"{ns}/bot@v1",
        "--to",
        str(served_as),
        "--for-serving",
        "--base-name",
        "llama-prod",
    )
    assert code == 0
    assert vllm_filesystem_resolver_accepts(served_as, "llama-prod")
