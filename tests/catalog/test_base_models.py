"""Base models: register from a manifest, or from uploaded (sharded) weights read server-side."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from safetensors.numpy import load_file, save_file

from registry.validation.manifest import read_base_dir
from tests.factories.catalog import create_namespace, push, register_base, unique, upload_dir
from tests.fixtures.peft import PEFT_FIXTURES

LLAMA = PEFT_FIXTURES / "bases" / "tiny-llama"


def _sharded_copy(src: Path, dest: Path) -> Path:
    """Split a single-file checkpoint into two shards with an index (as transformers writes)."""
    dest.mkdir()
    shutil.copy(src / "config.json", dest / "config.json")
    tensors = load_file(str(src / "model.safetensors"))
    names = sorted(tensors)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves, start=1):
        shard = f"model-{i:05d}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(dest / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    (dest / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {"total_size": 0}, "weight_map": weight_map})
    )
    return dest


class TestRegisterBase:
    def test_register_and_show(self, client: TestClient) -> None:
        ref = register_base(client, LLAMA, name=unique("org") + "/Tiny-Llama.v1", revision="abc123")
        name, rev = ref.split("@")
        shown = client.get(f"/api/v1/base-models/{name}/revisions/{rev}").json()
        assert shown["architecture"] == "LlamaForCausalLM"
        assert shown["tensor_count"] == 21
        assert shown["manifest_digest"] == read_base_dir(LLAMA).digest
        manifest = client.get(f"/api/v1/base-models/{name}/revisions/{rev}/manifest")
        assert manifest.json()["tensors"]["lm_head.weight"]["shape"] == [256, 64]
        listed = client.get("/api/v1/base-models", params={"limit": 500}).json()["items"]
        assert any(m["name"] == name and m["revisions"] == [rev] for m in listed)

    def test_duplicate_revision_is_conflict(self, client: TestClient) -> None:
        ref = register_base(client, LLAMA)
        name, rev = ref.split("@")
        manifest = read_base_dir(LLAMA).to_json()
        r = client.post(
            "/api/v1/base-models",
            json={
                "name": name,
                "revision": rev,
                "config": manifest["config"],
                "tensors": manifest["tensors"],
            },
        )
        assert r.status_code == 409
        assert r.json()["error"] == "base_model_version_exists"

    @pytest.mark.parametrize(
        "tensors",
        [
            {},
            {"w": {"dtype": "F99", "shape": [1]}},
            {"w": {"dtype": "F32", "shape": [-1]}},
        ],
    )
    def test_malformed_manifest_is_refused(
        self, client: TestClient, tensors: dict[str, object]
    ) -> None:
        r = client.post(
            "/api/v1/base-models",
            json={
                "name": unique("b"),
                "revision": "r",
                "config": {"model_type": "llama"},
                "tensors": tensors,
            },
        )
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_base_model"

    def test_nul_in_a_tensor_name_is_refused_by_the_body_parser(self, client: TestClient) -> None:
        # No JSON body may carry a NUL (no text column or audit record can hold one): the
        # strict parser refuses it before the manifest is looked at.
        r = client.post(
            "/api/v1/base-models",
            json={
                "name": unique("b"),
                "revision": "r",
                "config": {"model_type": "llama"},
                "tensors": {"a\x00b": {"dtype": "F32", "shape": [1]}},
            },
        )
        assert r.status_code == 422
        assert r.json()["context"]["errors"][0]["type"] == "json_invalid"

    @pytest.mark.parametrize("name", ["../x", "a/b/c", "a//b", "%2e%2e", "x@y", ""])
    def test_hostile_base_name_is_refused(self, client: TestClient, name: str) -> None:
        r = client.post(
            "/api/v1/base-models",
            json={
                "name": name,
                "revision": "r",
                "config": {"a": 1},
                "tensors": {"w": {"dtype": "F32", "shape": [1]}},
            },
        )
        assert r.status_code in (400, 422)


class TestUploadWeights:
    def test_sharded_weights_are_read_server_side(self, client: TestClient, tmp_path: Path) -> None:
        sharded = _sharded_copy(LLAMA, tmp_path / "sharded")
        upload_id = upload_dir(client, sharded, purpose="base_model")
        name = unique("sharded")
        r = client.post(
            "/api/v1/base-models", json={"name": name, "revision": "main", "upload_id": upload_id}
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["tensor_count"] == 21
        assert body["manifest_digest"] == read_base_dir(LLAMA).digest
        assert sorted(f["name"] for f in body["files"]) == sorted(p.name for p in sharded.iterdir())
        ns = create_namespace(client)
        pushed = push(
            client, ns, "dora", PEFT_FIXTURES / "adapters" / "llama-dora-r4", f"{name}@main"
        )
        assert pushed.status_code == 201, pushed.text

    def test_missing_shard_is_refused(self, client: TestClient, tmp_path: Path) -> None:
        sharded = _sharded_copy(LLAMA, tmp_path / "sharded")
        (sharded / "model-00002-of-00002.safetensors").unlink()
        upload_id = upload_dir(client, sharded, purpose="base_model")
        r = client.post(
            "/api/v1/base-models",
            json={"name": unique("b"), "revision": "main", "upload_id": upload_id},
        )
        assert r.status_code == 400
        assert r.json()["error"] == "invalid_base_model"

    def test_pickle_weights_are_refused(self, client: TestClient) -> None:
        from tests.factories.catalog import open_upload, put_file

        upload_id = open_upload(client, purpose="base_model")
        r = put_file(client, upload_id, "pytorch_model.bin", b"\x80\x04" + b"\x00" * 600)
        assert r.status_code == 400
        assert r.json()["error"] == "forbidden_file"
        r = put_file(client, upload_id, "model.safetensors", b"PK\x03\x04" + b"\x00" * 600)
        assert r.status_code == 400
        assert r.json()["error"] == "forbidden_file"

    def test_adapter_upload_cannot_register_a_base(self, client: TestClient) -> None:
        upload_id = upload_dir(client, PEFT_FIXTURES / "adapters" / "gpt2-ia3")
        r = client.post(
            "/api/v1/base-models",
            json={"name": unique("b"), "revision": "main", "upload_id": upload_id},
        )
        assert r.status_code == 409
        assert r.json()["error"] == "upload_state_conflict"
