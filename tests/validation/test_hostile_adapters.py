"""Hostile adapters over the real HTTP app (issue 11, points 4 and 5): a 400 with a stable code,
nothing registered."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from tests.factories.catalog import error_of, push
from tests.fixtures.peft import PEFT_FIXTURES

GPT2_LORA = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "adapter"
    shutil.copytree(GPT2_LORA, target)
    return target


def _versions(client: TestClient, namespace: str, name: str) -> int:
    r = client.get(f"/api/v1/adapters/{namespace}/{name}/versions")
    return len(r.json()["items"]) if r.status_code == 200 else 0


class TestHostileAdapters:
    def test_redos_target_modules_is_refused(
        self, client: TestClient, namespace: str, gpt2_base: str, tmp_path: Path
    ) -> None:
        directory = _copy(tmp_path)
        config = json.loads((directory / "adapter_config.json").read_text())
        # 2^27 paths over "transformer.h.0.attn.c_attn" for a backtracking engine (main: ~40 s,
        # then unexpected_tensor); inside a lookahead, so only the step-budgeted matcher runs it.
        config["target_modules"] = r"(?=(.|.)*y).*"
        (directory / "adapter_config.json").write_text(json.dumps(config))
        r = push(client, namespace, "redos", directory, gpt2_base)
        assert r.status_code == 400, r.text
        assert error_of(r) == ("invalid_adapter_config", "pattern_too_complex")
        assert _versions(client, namespace, "redos") == 0

    def test_metadata_flood_is_refused(
        self, client: TestClient, namespace: str, gpt2_base: str, tmp_path: Path
    ) -> None:
        directory = _copy(tmp_path)
        weights = (directory / "adapter_model.safetensors").read_bytes()
        length = int.from_bytes(weights[:8], "little")
        header = json.loads(weights[8 : 8 + length])
        header["__metadata__"] = {f"k{i}": "v" for i in range(5000)}
        body = json.dumps(header).encode()
        (directory / "adapter_model.safetensors").write_bytes(
            len(body).to_bytes(8, "little") + body + weights[8 + length :]
        )
        r = push(client, namespace, "flood", directory, gpt2_base)
        assert r.status_code == 400, r.text
        assert error_of(r) == ("corrupt_safetensors", "too_many_metadata_entries")
        assert _versions(client, namespace, "flood") == 0
