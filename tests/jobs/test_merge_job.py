"""A merge job end to end through the real HTTP app: an adapter on a base whose weights are
stored is folded into them by one worker step; the checkpoint is registered as a new base
revision with ``merged_from`` lineage and the recipe, and its stored weights are exactly what
the client-side merge of the same files gives. Refused when the base has no stored weights."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from registry.client import RegistryClient
from registry.jobs.worker import run_one
from registry.maths.merge import merge
from tests.factories.catalog import error_of, push, unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.jobs.conftest import World

BASE_DIR = PEFT_FIXTURES / "bases" / "tiny-gpt2"
ADAPTER_DIR = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"


def _stored_base(client: TestClient, token: str) -> str:
    """tiny-gpt2 registered with its weights uploaded (``--upload-weights``)."""
    transport = client._transport  # the app in this process, through the registry's own client
    name = unique("gpt2w")
    with RegistryClient("http://testserver", token, transport=transport) as api:
        api.push_base(name, "main", BASE_DIR, upload_weights=True)
    return f"{name}@main"


def test_a_merge_job_registers_a_base_revision_equal_to_the_local_merge(
    world: World, tmp_path: Path
) -> None:
    base = _stored_base(world.client, world.admin.token)
    adapter = unique("lora")
    r = push(world.client, world.namespace, adapter, ADAPTER_DIR, base)
    assert r.status_code == 201, r.text
    ref, merged = f"{world.namespace}/{adapter}@v1", unique("merged")
    body = {"kind": "merge", "inputs": [{"ref": ref}], "register_as": merged, "revision": "r1"}
    r = world.submit(body, world.admin)
    assert r.status_code == 202, r.text
    job = r.json()
    assert (job["kind"], job["target"], job["state"]) == ("merge", f"{merged}@r1", "queued")

    assert str(run_one(world.env)) == job["id"]
    done = world.job(job["id"], world.admin)
    assert done["state"] == "succeeded", done
    assert done["progress_done"] == done["progress_total"] > 0
    assert done["result"]["ref"] == f"{merged}@r1"

    r = world.client.get(f"/api/v1/base-models/{merged}/revisions/r1/files/model.safetensors")
    assert r.status_code == 200, r.text
    merge(ADAPTER_DIR, BASE_DIR, tmp_path / "local")
    assert r.content == (tmp_path / "local" / "model.safetensors").read_bytes()
    assert r.content != (BASE_DIR / "model.safetensors").read_bytes()

    r = world.client.get(f"/api/v1/base-models/{merged}/revisions/r1/lineage")
    assert r.status_code == 200, r.text
    edges = [e for e in r.json() if e["relation"] == "merged_from"]
    assert {e["parent"] for e in edges} == {ref, base}  # as a client-side merge records it
    recipe = next(e["recipe"] for e in edges if e["parent"] == ref)
    assert (recipe["operation"], recipe["job"]) == ("merge", job["id"])
    assert recipe["tensors"]["rewritten"] == 2  # c_attn of both layers


def test_a_merge_into_a_base_without_stored_weights_is_refused(world: World) -> None:
    body = {"kind": "merge", "inputs": [{"ref": world.inputs[0]}], "register_as": unique("m")}
    r = world.submit(body, world.admin)
    assert r.status_code == 400, r.text
    assert error_of(r) == ("bad_request", "base_weights_not_stored")
    assert run_one(world.env) is None
