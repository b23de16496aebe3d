"""Helpers for governance tests: principals with tokens, deployments, evaluations, promotions
(all through the real HTTP API)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi.testclient import TestClient

from tests.factories.catalog import push, unique
from tests.fixtures.peft import PEFT_FIXTURES

DATASET = "sha256:" + "ab" * 32


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass(frozen=True)
class Who:
    name: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return auth(self.token)


def make_principal(
    client: TestClient,
    role: str,
    namespaces: Sequence[str] = (),
    *,
    kind: str = "human",
    ci_identity: str | None = None,
) -> Who:
    """A new principal (created by the admin ``client``) and a token for it."""
    name = unique(role)
    body: dict[str, Any] = {
        "name": name,
        "role": role,
        "kind": kind,
        "namespaces": list(namespaces),
    }
    if ci_identity is not None:
        body["ci_identity"] = ci_identity
    r = client.post("/api/v1/principals", json=body)
    assert r.status_code == 201, r.text
    r = client.post("/api/v1/tokens", json={"principal": name})
    assert r.status_code == 201, r.text
    return Who(name, r.json()["token"])


def push_version(
    client: TestClient, who: Who, namespace: str, adapter: str, base: str, n: int, tmp: Path
) -> str:
    """Push a distinct valid gpt2 LoRA as ``who``; returns ``NS/NAME@vN``."""
    import shutil

    target = tmp / f"{adapter}-{n}-{unique()}"
    shutil.copytree(PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", target)
    (target / "README.md").write_text(f"variant {n}\n")
    previous = client.headers.get("Authorization")
    client.headers["Authorization"] = f"Bearer {who.token}"
    try:
        r = push(client, namespace, adapter, target, base)
    finally:
        if previous is None:
            client.headers.pop("Authorization", None)
        else:
            client.headers["Authorization"] = previous
    assert r.status_code == 201, r.text
    return f"{namespace}/{adapter}@v{r.json()['version']}"


def record_eval(
    client: TestClient,
    who: Who,
    ref: str,
    value: float,
    *,
    suite: str = "support-qa",
    metric: str = "accuracy",
    dataset_digest: str | None = DATASET,
) -> httpx.Response:
    ns_name, version = ref.split("@")
    r: httpx.Response = client.post(
        f"/api/v1/adapters/{ns_name}/versions/{version}/evaluations",
        json={"suite": suite, "metric": metric, "value": value, "dataset_digest": dataset_digest},
        headers=who.headers,
    )
    return r


def create_deployment(client: TestClient, who: Who, base: str, adapter: str) -> str:
    name = unique("dep")
    r = client.post(
        "/api/v1/deployments",
        json={"name": name, "base": base, "adapter": adapter},
        headers=who.headers,
    )
    assert r.status_code == 201, r.text
    return name


def request_promotion(
    client: TestClient, who: Who, ref: str, deployment: str, **extra: Any
) -> httpx.Response:
    r: httpx.Response = client.post(
        "/api/v1/promotions",
        json={"ref": ref, "deployment": deployment, **extra},
        headers=who.headers,
    )
    return r


def decide(
    client: TestClient, who: Who, promotion_id: str, verb: str, **body: Any
) -> httpx.Response:
    r: httpx.Response = client.post(
        f"/api/v1/promotions/{promotion_id}/{verb}", json=body or None, headers=who.headers
    )
    return r
