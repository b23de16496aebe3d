"""Concurrent approvals against a real server process: a one-approval request promoted by
several approvers at once gives exactly one promotion (one revision), the others a 409, and the
audit chain stays linear and verifiable."""

from __future__ import annotations

import threading
from pathlib import Path

import httpx

from registry.validation.manifest import read_base_dir
from tests.factories.catalog import sha256_hex, unique
from tests.factories.governance import DATASET, auth
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer


def _push(c: httpx.Client, token: str, ns: str, base: str) -> str:
    h = auth(token)
    upload = c.post("/api/v1/uploads", json={}, headers=h).json()["id"]
    for path in sorted((PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn").iterdir()):
        data = path.read_bytes()
        r = c.put(
            f"/api/v1/uploads/{upload}/files/{path.name}",
            content=data,
            headers={**h, "X-Content-Digest": f"sha256:{sha256_hex(data)}"},
        )
        assert r.status_code == 201, r.text
    r = c.post(
        f"/api/v1/adapters/{ns}/bot/versions", json={"base": base, "upload_id": upload}, headers=h
    )
    assert r.status_code == 201, r.text
    return f"{ns}/bot@v{r.json()['version']}"


def _principal(c: httpx.Client, role: str, ns: str) -> str:
    name = unique(role)
    assert (
        c.post(
            "/api/v1/principals", json={"name": name, "role": role, "namespaces": [ns]}
        ).status_code
        == 201
    )
    return str(c.post("/api/v1/tokens", json={"principal": name}).json()["token"])


def test_parallel_approvals_promote_once(live_server: LiveServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=live_server.url, headers=auth(live_server.token), timeout=60) as c:
        ns = c.post("/api/v1/namespaces", json={"name": unique("ns")}).json()["name"]
        manifest = read_base_dir(PEFT_FIXTURES / "bases" / "tiny-gpt2").to_json()
        base_name = unique("gpt2")
        r = c.post(
            "/api/v1/base-models",
            json={
                "name": base_name,
                "revision": "main",
                "config": manifest["config"],
                "tensors": manifest["tensors"],
            },
        )
        assert r.status_code == 201, r.text
        base = f"{base_name}@main"
        dev = _principal(c, "developer", ns)
        approvers = [_principal(c, "approver", ns) for _ in range(8)]
        ref = _push(c, dev, ns, base)
        r = c.post(
            f"/api/v1/adapters/{ref.replace('@', '/versions/')}/evaluations",
            json={"suite": "qa", "metric": "acc", "value": 0.9, "dataset_digest": DATASET},
            headers=auth(dev),
        )
        assert r.status_code == 201, r.text
        dep = unique("dep")
        assert (
            c.post(
                "/api/v1/deployments", json={"name": dep, "base": base, "adapter": f"{ns}/bot"}
            ).status_code
            == 201
        )
        req = c.post(
            "/api/v1/promotions", json={"ref": ref, "deployment": dep}, headers=auth(dev)
        ).json()
        assert req["state"] == "pending"

    results: list[tuple[int, dict[str, object]]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(len(approvers))

    def approve(token: str) -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as c:
            barrier.wait(timeout=30)
            resp = c.post(f"/api/v1/promotions/{req['id']}/approve", headers=auth(token))
        with lock:
            results.append((resp.status_code, resp.json()))

    threads = [threading.Thread(target=approve, args=(t,)) for t in approvers]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)

    statuses = sorted(s for s, _ in results)
    assert len(results) == len(approvers)
    assert statuses.count(200) == 1, results
    assert all(body["error"] == "promotion_state_conflict" for s, body in results if s != 200)
    with httpx.Client(base_url=live_server.url, headers=auth(live_server.token), timeout=60) as c:
        history = c.get(f"/api/v1/deployments/{dep}/history").json()["items"]
        assert [h["reason"] for h in history] == ["promotion", "created"]
        assert [h["revision"] for h in history] == [2, 1]
        shown = c.get(f"/api/v1/promotions/{req['id']}").json()
        assert shown["state"] == "completed"
        assert len(shown["approvals"]) == 1
        verified = c.get("/api/v1/audit/verify").json()
        assert verified["ok"], verified
