"""``adapter-registry jobs``: submit a compose job and wait for it on a real server whose
worker runs it; show, list, and the exit codes of a refused cancel and an unknown job."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from registry.cli._output import EXIT_CONFLICT, EXIT_INVALID, EXIT_NOT_FOUND
from tests.cli.test_cli_e2e import cli
from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.factories.jobs import lora_dir
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import serving


def test_submit_wait_show_list_and_cancel(database_url: str, tmp_path: Path) -> None:
    with serving(
        database_url, tmp_path, REGISTRY_JOBS__ENABLED="true", REGISTRY_JOBS__POLL_S="0.1"
    ) as server:
        api = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})
        ns = create_namespace(api)
        base = register_base(api, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
        inputs = []
        for n in range(2):
            name = unique("in")
            r = push(api, ns, name, lora_dir(tmp_path / f"in{n}", rank=2, seed=n), base)
            assert r.status_code == 201, r.text
            inputs.append({"ref": f"{ns}/{name}@v1", "weight": 0.5})
        body = {"kind": "compose", "target": f"{ns}/mix", "inputs": inputs, "method": "cat"}
        (tmp_path / "job.json").write_text(json.dumps(body))

        code, job, err = cli(
            server, "jobs", "submit", str(tmp_path / "job.json"), "--wait", "--poll", "0.2"
        )
        assert code == 0, err
        assert (job["state"], job["result"]["ref"]) == ("succeeded", f"{ns}/mix@v1")

        code, shown, _ = cli(server, "jobs", "show", job["id"])
        assert (code, shown["id"], shown["state"]) == (0, job["id"], "succeeded")
        code, listed, _ = cli(server, "jobs", "list")
        assert code == 0
        assert job["id"] in [j["id"] for j in listed["items"]]
        code, refused, _ = cli(server, "jobs", "cancel", job["id"])
        assert (code, refused["error"]) == (EXIT_CONFLICT, "job_state_conflict")
        code, missing, _ = cli(server, "jobs", "show", "00000000-0000-4000-8000-000000000000")
        assert (code, missing["error"]) == (EXIT_NOT_FOUND, "job_not_found")

        (tmp_path / "bad.json").write_text(json.dumps(body | {"method": "average"}))
        code, bad, _ = cli(server, "jobs", "submit", str(tmp_path / "bad.json"))
        assert (code, bad["error"]) == (EXIT_INVALID, "incompatible_adapters")
