"""A deployment with two validated versions and a promotion request, made through the real
HTTP API once per test module; the state-machine tests then arrange rows around it."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select

from registry.catalog.models import AdapterVersion
from registry.db.session import Sessions, unit_of_work
from registry.deployments.models import Deployment
from tests.factories.catalog import create_namespace, register_base, unique
from tests.factories.governance import Who, create_deployment, push_version, request_promotion
from tests.fixtures.peft import PEFT_FIXTURES


@dataclass(frozen=True)
class World:
    sessions: Sessions
    deployment_id: uuid.UUID
    v1: uuid.UUID
    v2: uuid.UUID
    promotion_id: uuid.UUID

    def new_deployment(self) -> Deployment:
        """A copy of the world's deployment under a new name, with no revision yet (not
        added to any session)."""
        with unit_of_work(self.sessions.write) as session:
            model = session.get_one(Deployment, self.deployment_id)
            return Deployment(
                id=uuid.uuid4(),
                name=unique("dep"),
                namespace_id=model.namespace_id,
                adapter_id=model.adapter_id,
                base_model_version_id=model.base_model_version_id,
                current_revision=0,
                created_by_id=model.created_by_id,
            )


def build_world(client: TestClient, admin_token: str, tmp: Path) -> World:
    admin = Who("admin", admin_token)
    client.headers["Authorization"] = f"Bearer {admin_token}"
    try:
        namespace = create_namespace(client)
        base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
        adapter = unique("bot")
        refs = [push_version(client, admin, namespace, adapter, base, n, tmp) for n in (1, 2)]
        name = create_deployment(client, admin, base, f"{namespace}/{adapter}")
        requested = request_promotion(client, admin, refs[0], name)
        assert requested.status_code == 201, requested.text
    finally:
        client.headers.pop("Authorization", None)
    sessions: Sessions = client.app.state.sessions  # type: ignore[attr-defined]
    with unit_of_work(sessions.read) as session:
        deployment = session.scalars(select(Deployment).where(Deployment.name == name)).one()
        versions = dict(
            session.execute(
                select(AdapterVersion.version, AdapterVersion.id).where(
                    AdapterVersion.adapter_id == deployment.adapter_id
                )
            ).all()
        )
    return World(
        sessions=sessions,
        deployment_id=deployment.id,
        v1=versions[1],
        v2=versions[2],
        promotion_id=uuid.UUID(requested.json()["id"]),
    )
