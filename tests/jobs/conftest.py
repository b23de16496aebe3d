"""A namespace with a developer, a tiny gpt2 base and two LoRA adapters of it built from small
random tensors (``registry.maths.lora.save_lora``), pushed through the real HTTP API; the
app's own job worker environment, driven step by step (the worker threads are off in tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from registry.db.session import unit_of_work
from registry.jobs.env import WorkerEnv
from registry.jobs.models import Job, JobState
from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.factories.governance import Who, make_principal
from tests.factories.jobs import lora_dir
from tests.fixtures.peft import PEFT_FIXTURES


@dataclass
class World:
    client: TestClient
    namespace: str
    base: str
    dev: Who
    admin: Who
    inputs: list[str]  # NS/NAME@vN of the two adapters
    env: WorkerEnv

    def submit(self, body: dict[str, Any], who: Who | None = None) -> httpx.Response:
        headers = (who or self.dev).headers
        response: httpx.Response = self.client.post("/api/v1/jobs", json=body, headers=headers)
        return response

    def compose(self, target: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {
            "kind": "compose",
            "target": target or f"{self.namespace}/{unique('mix')}",
            "inputs": [
                {"ref": self.inputs[0], "weight": 0.7},
                {"ref": self.inputs[1], "weight": 0.3},
            ],
            "method": "cat",
            **extra,
        }
        return body

    def job(self, job_id: str, who: Who | None = None) -> dict[str, Any]:
        r = self.client.get(f"/api/v1/jobs/{job_id}", headers=(who or self.dev).headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def worker_env(client: TestClient) -> WorkerEnv:
    state = client.app.state  # type: ignore[attr-defined]
    return WorkerEnv(
        sessions=state.sessions,
        store=state.store,
        manifests=state.manifests,
        policies=state.policies,
        settings=state.settings,
    )


def build_world(client: TestClient, tmp_path: Path) -> World:
    """The world, made through ``client`` (an admin's)."""
    namespace = create_namespace(client)
    base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    dev = make_principal(client, "developer", [namespace])
    inputs = []
    for n, rank in enumerate((4, 2)):
        directory = lora_dir(tmp_path / f"in-{n}", rank=rank, seed=n)
        adapter = unique(f"in{n}")
        r = push(client, namespace, adapter, directory, base)
        assert r.status_code == 201, r.text
        inputs.append(f"{namespace}/{adapter}@v1")
    admin = Who("admin", str(client.headers["Authorization"]).removeprefix("Bearer "))
    return World(client, namespace, base, dev, admin, inputs, worker_env(client))


@pytest.fixture
def world(client: TestClient, tmp_path: Path) -> World:
    return build_world(client, tmp_path)


@pytest.fixture(scope="module")
def shared_world(
    anon_client: TestClient, admin_token: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """One world for a module whose tests leave it as they found it."""
    anon_client.headers["Authorization"] = f"Bearer {admin_token}"
    try:
        yield build_world(anon_client, tmp_path_factory.mktemp("jobs"))
    finally:
        anon_client.headers.pop("Authorization", None)


@pytest.fixture(autouse=True)
def no_job_left_queued(anon_client: TestClient) -> Iterator[None]:
    """Every test starts and ends with no queued or running job (a worker step claims the
    oldest queued job of the whole database): what is left is cancelled (written directly:
    the tests' housekeeping, not a move of the machine)."""
    sessions = worker_env(anon_client).sessions

    def cancel_all() -> None:
        with unit_of_work(sessions.write) as session:
            session.execute(
                update(Job)
                .where(Job.state.in_([JobState.queued, JobState.running]))
                .values(state=JobState.cancelled)
            )

    cancel_all()
    yield
    cancel_all()
