"""A compose job end to end through the real HTTP app: queued (202, ``Location``), run by one
worker step, its result registered as the target's next version with ``composed_from``
lineage to both inputs carrying their weights and the recipe; cancelled before it ran, or
while it runs (through the database flag its progress callback reads)."""

from __future__ import annotations

from pathlib import Path

import pytest
from safetensors.torch import load_file

from registry.jobs.worker import claim, execute, run_one
from tests.factories.catalog import error_of
from tests.jobs.conftest import World


def test_a_compose_job_registers_the_next_version_with_its_lineage(
    world: World, tmp_path: Path
) -> None:
    body = world.compose()
    r = world.submit(body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert r.headers["Location"] == f"/api/v1/jobs/{job['id']}"
    assert (job["state"], job["kind"], job["target"]) == ("queued", "compose", body["target"])
    assert job["created_by"] == world.dev.name
    assert [i["ref"] for i in job["params"]["inputs"]] == world.inputs

    assert str(run_one(world.env)) == job["id"]
    done = world.job(job["id"])
    assert done["state"] == "succeeded", done
    assert done["progress_done"] == done["progress_total"] == 2  # two modules composed
    ref = done["result"]["ref"]
    assert ref == f"{body['target']}@v1"
    version = world.client.get(f"/api/v1/adapters/{body['target']}/versions/1").json()
    assert version["digest"] == done["result"]["digest"]
    assert version["registered_by"] == world.dev.name
    assert version["base"] == world.base
    assert version["r"] == 6  # cat: the ranks 4 and 2 concatenated

    lineage = world.client.get(f"/api/v1/adapters/{body['target']}/versions/1/lineage").json()
    parents = {e["parent"]: e for e in lineage if e["relation"] == "composed_from"}
    assert set(parents) == set(world.inputs)
    for position, (ref_in, weight) in enumerate(zip(world.inputs, (0.7, 0.3), strict=True)):
        recipe = parents[ref_in]["recipe"]
        assert (recipe["weight"], recipe["method"], recipe["position"]) == (weight, "cat", position)
        assert recipe["job"] == job["id"]
        assert recipe["operation"] == "compose"
        assert recipe["parameters"]["seed"] is None
        assert recipe["seed"] is None
    assert any(e["relation"] == "trained_on" and e["parent"] == world.base for e in lineage)

    # The registered bytes are the composed adapter: ranks concatenated, A scaled by w·s.
    pulled = load_file(str(_pull(world, ref, tmp_path)))
    a = pulled["base_model.model.transformer.h.0.attn.c_attn.lora_A.weight"]
    assert tuple(a.shape) == (6, 64)


def _pull(world: World, ref: str, tmp_path: Path) -> Path:
    namespace_name, version = ref.split("@")
    r = world.client.get(
        f"/api/v1/adapters/{namespace_name}/versions/{version}/files/adapter_model.safetensors"
    )
    assert r.status_code == 200, r.text
    path = tmp_path / "pulled.safetensors"
    path.write_bytes(r.content)
    return path


def test_a_queued_job_is_cancelled_at_once_and_never_runs(world: World) -> None:
    job = world.submit(world.compose()).json()
    r = world.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=world.dev.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["cancel_requested"]) == ("cancelled", True)
    assert r.json()["finished_at"] is not None
    assert run_one(world.env) is None  # nothing queued any more
    target = job["target"]
    assert world.client.get(f"/api/v1/adapters/{target}").status_code == 404


def test_a_running_job_asked_to_cancel_ends_cancelled_and_registers_nothing(world: World) -> None:
    job = world.submit(world.compose()).json()
    claimed = claim(world.env)
    assert claimed is not None
    assert str(claimed.id) == job["id"]
    assert world.job(job["id"])["state"] == "running"

    r = world.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=world.dev.headers)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["cancel_requested"]) == ("running", True)
    again = world.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=world.dev.headers)
    assert (again.status_code, again.json()["state"]) == (200, "running")

    execute(world.env, claimed)  # its first progress report sees the flag
    ended = world.job(job["id"])
    assert (ended["state"], ended["result"], ended["error"]) == ("cancelled", None, None)
    assert world.client.get(f"/api/v1/adapters/{job['target']}").status_code == 404


@pytest.mark.parametrize("finished", ["succeeded", "cancelled"])
def test_cancelling_a_finished_job_is_a_state_conflict(world: World, finished: str) -> None:
    job = world.submit(world.compose()).json()
    if finished == "succeeded":
        run_one(world.env)
    else:
        world.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=world.dev.headers)
    r = world.client.post(f"/api/v1/jobs/{job['id']}/cancel", headers=world.dev.headers)
    assert r.status_code == 409
    assert error_of(r)[0] == "job_state_conflict"
    assert r.json()["context"]["state"] == finished
    assert world.job(job["id"])["state"] == finished
