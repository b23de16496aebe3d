"""An aggregate job end to end: sample-count weights, exact stacking run by one worker step,
registered with ``aggregated_from`` lineage; the registered ΔW is the weighted mean of the
sites' ΔW."""

from __future__ import annotations

from pathlib import Path

from registry.jobs.worker import run_one
from registry.maths.lora import load_lora
from tests.jobs.conftest import World


def _pull(world: World, ref: str, to: Path) -> Path:
    name, version = ref.split("@")
    to.mkdir(parents=True)
    for file_name in ("adapter_config.json", "adapter_model.safetensors"):
        r = world.client.get(
            f"/api/v1/adapters/{name}/versions/{version}/files/{file_name}",
            headers=world.dev.headers,
        )
        assert r.status_code == 200, r.text
        (to / file_name).write_bytes(r.content)
    return to


def test_an_aggregate_job_registers_the_exact_weighted_mean(world: World, tmp_path: Path) -> None:
    body = world.compose(kind="aggregate", method="stack")
    body["inputs"] = [
        {"ref": world.inputs[0], "weight": 1200},
        {"ref": world.inputs[1], "weight": 800},
    ]
    r = world.submit(body)
    assert r.status_code == 202, r.text
    job = r.json()
    assert str(run_one(world.env)) == job["id"]
    done = world.job(job["id"])
    assert done["state"] == "succeeded", done
    ref = done["result"]["ref"]

    lineage = world.client.get(
        f"/api/v1/adapters/{ref.split('@')[0]}/versions/1/lineage", headers=world.dev.headers
    ).json()
    parents = {e["parent"]: e["recipe"] for e in lineage if e["relation"] == "aggregated_from"}
    assert {p: parents[p]["weight"] for p in parents} == {
        world.inputs[0]: 1200,
        world.inputs[1]: 800,
    }

    out = load_lora(_pull(world, ref, tmp_path / "out"))
    sites = [load_lora(_pull(world, i, tmp_path / f"in{n}")) for n, i in enumerate(world.inputs)]
    for name, module in out.modules.items():
        parts = [w * s.modules[name].delta() for w, s in zip((0.6, 0.4), sites, strict=True)]
        expected = parts[0] + parts[1]
        assert float((module.delta() - expected).abs().max()) <= 1e-5 * float(expected.abs().max())
