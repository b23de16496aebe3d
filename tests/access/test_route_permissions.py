"""Every route refuses a caller without the permission (enumerated over ``app.routes``): an
authenticated principal that belongs to no namespace gets 404 for what it cannot see and 403 for
what it may see but not do; the few routes any principal may use are listed explicitly.
Nothing answers 500."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.api.routes_index import all_routes
from registry.app import create_app
from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.factories.governance import Who, auth, make_principal
from tests.fixtures.peft import PEFT_FIXTURES

PUBLIC = {"/healthz", "/readyz"}

# Routes any authenticated principal may call; their answers are filtered or self-scoped.
ANY_PRINCIPAL: dict[tuple[str, str], int] = {
    ("GET", "/openapi.json"): 200,
    ("GET", "/api/v1/namespaces"): 200,
    ("GET", "/api/v1/adapters"): 200,
    ("GET", "/api/v1/deployments"): 200,
    ("GET", "/api/v1/promotions"): 200,
    ("GET", "/api/v1/base-models"): 200,
    ("GET", "/api/v1/base-models/{name:path}/revisions/{revision}"): 200,
    ("GET", "/api/v1/base-models/{name:path}/revisions/{revision}/manifest"): 200,
    # Edges through versions the caller may not read are left out.
    ("GET", "/api/v1/base-models/{name:path}/revisions/{revision}/lineage"): 200,
    # Readable by anyone; the world's base has no stored weights.
    ("GET", "/api/v1/base-models/{name:path}/revisions/{revision}/files/{file_name}"): 404,
    ("GET", "/api/v1/tokens"): 200,  # the caller's own tokens
    ("POST", "/api/v1/tokens"): 201,  # a token for the caller itself
    ("POST", "/api/v1/oidc/token"): 400,  # only a CI OIDC bearer can exchange
    ("GET", "/metrics"): 200,  # process counters (policy metrics-readable)
    ("GET", "/api/v1/jobs"): 200,  # the caller's own jobs
    ("GET", "/api/v1/webhooks"): 200,  # the caller's own webhooks
}


@dataclass
class World:
    admin: str
    namespace: str
    adapter: str
    base_name: str
    deployment: str
    promotion: str
    upload: str
    token_id: str
    job: str
    webhook: str
    outsider: Who
    member: Who


@pytest.fixture(scope="module")
def world(anon_client: TestClient, admin_token: str) -> Iterator[World]:
    c = anon_client
    c.headers["Authorization"] = f"Bearer {admin_token}"
    try:
        ns = create_namespace(c)
        base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
        r = push(c, ns, "bot", PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", base)
        assert r.status_code == 201, r.text
        dep = unique("dep")
        r = c.post("/api/v1/deployments", json={"name": dep, "base": base, "adapter": f"{ns}/bot"})
        assert r.status_code == 201, r.text
        r = c.post(
            "/api/v1/promotions",
            json={"ref": f"{ns}/bot@v1", "deployment": dep, "override_reason": "route test"},
        )
        assert r.status_code == 201, r.text
        promotion = r.json()["id"]
        upload = c.post("/api/v1/uploads", json={}).json()["id"]
        token_id = c.get("/api/v1/tokens").json()["items"][0]["id"]
        r = c.post("/api/v1/jobs", json=_compose(ns))
        assert r.status_code == 202, r.text
        # Cancelled at once: a queued job would be claimed by another test's worker step.
        job = c.post(f"/api/v1/jobs/{r.json()['id']}/cancel").json()["id"]
        r = c.post("/api/v1/webhooks", json=_webhook(ns))
        assert r.status_code == 201, r.text
        webhook = r.json()["id"]
        outsider = make_principal(c, "viewer", [])
        member = make_principal(c, "viewer", [ns])
        yield World(
            admin=admin_token,
            namespace=ns,
            adapter="bot",
            base_name=base.split("@")[0],
            deployment=dep,
            promotion=promotion,
            upload=upload,
            token_id=token_id,
            job=job,
            webhook=webhook,
            outsider=outsider,
            member=member,
        )
    finally:
        c.headers.pop("Authorization", None)


def _compose(namespace: str) -> dict[str, object]:
    return {
        "kind": "compose",
        "target": f"{namespace}/mix",
        "inputs": [{"ref": f"{namespace}/bot@v1", "weight": 1.0}],
        "method": "cat",
    }


def _webhook(namespace: str) -> dict[str, object]:
    # A public address literal (no DNS); nothing is sent: the test app runs no webhook worker.
    return {
        "url": "https://93.184.215.14/hook",
        "event_types": ["version.registered"],
        "namespace": namespace,
    }


def _routes() -> list[tuple[str, str]]:
    return [
        (method, route.path)
        for route in all_routes(create_app())
        for method in sorted(route.methods - {"HEAD"})
        if route.path not in PUBLIC
        # The web console calls these routes' services with a session's Actor: its refusals
        # are tested in tests/console/ (bearer tokens do not sign a console page in).
        and not route.path.startswith(("/console", "/docs", "/redoc"))
    ]


ROUTES = _routes()


def _concrete(path: str, w: World) -> str:
    values = {
        "namespace": w.namespace,
        "name": w.adapter,
        "selector": "v1",
        "file_name": "adapter_config.json",
        "upload_id": w.upload,
        "revision": "main",
        "promotion_id": w.promotion,
        "token_id": w.token_id,
        "job_id": w.job,
        "webhook_id": w.webhook,
        "delivery_id": "00000000-0000-4000-8000-000000000000",
        "direct_id": "d" + "0" * 32,
    }

    def fill(m: re.Match[str]) -> str:
        key = m.group(1).split(":")[0]
        if key == "name" and path.startswith("/api/v1/base-models"):
            return w.base_name
        if key == "name" and path.startswith("/api/v1/deployments"):
            return w.deployment
        if key == "name" and path.startswith("/api/v1/principals"):
            return w.member.name
        return values[key]

    return re.sub(r"\{([^}]+)\}", fill, path)


def _body(method: str, path: str, w: World) -> tuple[object, dict[str, str], dict[str, str]]:
    """A well-formed body (and query / headers) per route, so that authorization, not input
    validation, is what refuses the outsider."""
    ns = w.namespace
    bodies: dict[tuple[str, str], object] = {
        ("POST", "/api/v1/namespaces"): {"name": unique("ns")},
        ("POST", "/api/v1/base-models"): {
            "name": unique("b"),
            "revision": "main",
            "config": {"model_type": "gpt2"},
            "tensors": {},
        },
        ("POST", "/api/v1/adapters/{namespace}/{name}/versions"): {
            "base": f"{w.base_name}@main",
            "upload_id": w.upload,
        },
        ("POST", "/api/v1/adapters/{namespace}/{name}/mlflow-imports"): {
            "source_uri": "runs:/0123456789abcdef/adapter",
            "tracking_server": "http://mlflow.example:5000",
            "base": f"{w.base_name}@main",
        },
        ("POST", "/api/v1/adapters/{namespace}/{name}/versions/{selector}/evaluations"): {
            "suite": "s",
            "metric": "m",
            "value": 1.0,
        },
        ("POST", "/api/v1/principals"): {"name": unique("p"), "role": "admin"},
        ("POST", "/api/v1/principals/{name}/namespaces"): {"namespaces": [ns]},
        ("POST", "/api/v1/principals/{name}/namespaces/remove"): {"namespaces": [ns]},
        ("POST", "/api/v1/principals/{name}/role"): {"role": "admin"},
        ("POST", "/api/v1/uploads/{upload_id}/direct"): {
            "adapter": f"{ns}/bot",
            "name": "adapter_model.safetensors",
            "size": 1,
            "digest": "sha256:" + "0" * 64,
        },
        ("POST", "/api/v1/uploads/{upload_id}/direct/{direct_id}/complete"): {
            "s3_upload_id": "x",
            "parts": [{"part_number": 1, "etag": "e"}],
        },
        ("POST", "/api/v1/principals/{name}/logins"): {
            "subject": "someone",
            "issuer": "https://id.example.com",
        },
        ("POST", "/api/v1/publishers"): {
            "name": unique("pub"),
            "issuer": "https://token.actions.githubusercontent.com",
            "audience": "a",
            "repository": "acme/x",
            "repository_owner_id": "1",
            "workflow_ref": "acme/x/.github/workflows/t.yml",
            "principal": unique("ci"),
            "namespaces": [ns],
        },
        ("POST", "/api/v1/policies"): {
            "schema_text": "",
            "policies_text": "permit(principal, action, resource);",
            "gates_text": "",
        },
        ("POST", "/api/v1/deployments"): {
            "name": unique("d"),
            "base": f"{w.base_name}@main",
            "adapter": f"{ns}/bot",
        },
        ("POST", "/api/v1/promotions"): {"ref": f"{ns}/bot@v1", "deployment": w.deployment},
        ("POST", "/api/v1/promotions/{promotion_id}/reject"): {"reason": "no"},
        ("POST", "/api/v1/jobs"): _compose(ns),
        ("POST", "/api/v1/webhooks"): _webhook(ns),
        ("PUT", "/api/v1/deployments/{name}/mlflow-mirror"): {"model": "m"},
        ("POST", "/api/v1/deployments/{name}/rollout"): {"share_bp": 100, "expected_revision": 1},
        ("POST", "/api/v1/deployments/{name}/rollback"): {"expected_revision": 1},
        ("POST", "/api/v1/deployments/{name}/reports"): {
            "revision": 1,
            "arm": "stable",
            "window_start": "2026-01-01T00:00:00Z",
            "window_end": "2026-01-01T00:01:00Z",
            "requests": 10,
            "errors": 0,
        },
    }
    params: dict[str, str] = {}
    headers: dict[str, str] = {}
    if path == "/api/v1/evaluations/compare":
        params = {"a": f"{ns}/bot@v1", "b": f"{ns}/bot@v1"}
    if path.endswith("/resolve"):
        params = {"key": "tenant-1"}
    if path == "/api/v1/principals/{name}/logins" and method == "DELETE":
        params = {"subject": "someone", "issuer": "https://id.example.com"}
    if path == "/api/v1/audit/served":
        params = {"deployment": w.deployment, "at": "2030-01-01T00:00:00Z"}
    if method == "PUT":
        headers = {"X-Content-Digest": "sha256:" + "0" * 64}
    return bodies.get((method, path), {}), params, headers


def test_every_route_is_classified() -> None:
    assert set(ANY_PRINCIPAL) <= set(ROUTES)
    assert len(ROUTES) > 30


@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{m} {p}" for m, p in ROUTES])
def test_outsider_is_refused(
    anon_client: TestClient, world: World, method: str, path: str, tmp_path: Path
) -> None:
    url = _concrete(path, world)
    body, params, headers = _body(method, path, world)
    r = anon_client.request(
        method, url, json=body, params=params, headers={**auth(world.outsider.token), **headers}
    )
    assert r.status_code < 500, r.text
    expected = ANY_PRINCIPAL.get((method, path))
    if expected is not None:
        assert r.status_code == expected, r.text
        is_json = r.headers.get("content-type", "").startswith("application/json")
        if r.status_code == 200 and is_json and isinstance(r.json(), dict) and "items" in r.json():
            shown = str(r.json()["items"])
            assert world.namespace not in shown
            assert world.deployment not in shown
        return
    assert r.status_code in (403, 404), r.text
    assert r.json()["error"] in (
        "policy_denied",
        "namespace_not_found",
        "adapter_not_found",
        "deployment_not_found",
        "promotion_not_found",
        "upload_not_found",
        "principal_not_found",
        "token_not_found",
        "job_not_found",
        "webhook_not_found",
    ), r.text


MEMBER_WRITES = [
    ("POST", "/api/v1/adapters/{ns}/bot/versions/v1/tags", {"add": ["x"], "remove": []}),
    ("POST", "/api/v1/adapters/{ns}/bot/versions/v1/archive", {}),
    (
        "POST",
        "/api/v1/adapters/{ns}/bot/versions/v1/evaluations",
        {"suite": "s", "metric": "m", "value": 1.0},
    ),
    ("POST", "/api/v1/adapters/{ns}/bot/mlflow-imports", None),
    ("POST", "/api/v1/promotions", None),
    ("POST", "/api/v1/deployments", None),
    ("POST", "/api/v1/jobs", None),
]


@pytest.mark.parametrize(("method", "path", "body"), MEMBER_WRITES)
def test_member_viewer_sees_but_may_not_change(
    anon_client: TestClient, world: World, method: str, path: str, body: dict[str, object] | None
) -> None:
    """A viewer of the namespace can read it, so a write is 403 (not 404), with the policy
    named, and the refusal is in the audit log."""
    if path == "/api/v1/promotions":
        body = {"ref": f"{world.namespace}/bot@v1", "deployment": world.deployment}
    if path == "/api/v1/deployments":
        body = {
            "name": unique("d"),
            "base": f"{world.base_name}@main",
            "adapter": f"{world.namespace}/bot",
        }
    if path == "/api/v1/jobs":
        body = _compose(world.namespace)
    if path.endswith("/mlflow-imports"):
        body = {"source_uri": "runs:/0123456789abcdef/adapter", "base": f"{world.base_name}@main"}
    url = path.replace("{ns}", world.namespace)
    assert (
        anon_client.get(
            f"/api/v1/adapters/{world.namespace}/bot", headers=auth(world.member.token)
        ).status_code
        == 200
    )
    r = anon_client.request(method, url, json=body, headers=auth(world.member.token))
    assert r.status_code == 403, r.text
    assert r.json()["error"] == "policy_denied"
    assert r.json()["context"]["policy"] == "default-deny"
    events = anon_client.get(
        "/api/v1/audit/events",
        params={"action": "authz.denied", "actor": world.member.name},
        headers=auth(world.admin),
    ).json()["items"]
    assert any(e["decision"]["action"] == r.json()["context"]["action"] for e in events)
