"""Approvals racing a change of the stable version, against a real server process (real
threads; PostgreSQL on its leg, row locks and all): an approval never starts a canary against
a stable version its request was not evaluated against, and nothing deadlocks.

Set-up: v1 stable, v2's canary running, v3..v8 each requested (gates computed against v1) and
each approved by its own approver at the very moment an operator completes v2's canary (v2
becomes stable). Whichever order the server serialises them in, every approval either starts
its canary while v1 is still stable (200) or is refused because v2 became stable first (409
stable_changed, the request expired); the operator's completion either lands first (200) or
finds the revision moved on (412); and the audit chain verifies.
"""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from registry.validation.manifest import read_base_dir
from tests.factories.catalog import sha256_hex, unique
from tests.factories.governance import DATASET, auth
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer
from tests.promotions.test_concurrency import _principal

RACERS = 6


def _push(c: httpx.Client, token: str, ns: str, base: str, n: int) -> str:
    """A distinct version of ``NS/bot`` (README varied) with one evaluation; its REF."""
    h = auth(token)
    upload = c.post("/api/v1/uploads", json={}, headers=h).json()["id"]
    for path in sorted((PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn").iterdir()):
        data = path.read_bytes() if path.name != "README.md" else f"v{n}\n".encode()
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
    ref = f"{ns}/bot@v{r.json()['version']}"
    r = c.post(
        f"/api/v1/adapters/{ref.replace('@', '/versions/')}/evaluations",
        json={"suite": "qa", "metric": "acc", "value": 0.8 + n / 100, "dataset_digest": DATASET},
        headers=h,
    )
    assert r.status_code == 201, r.text
    return ref


def test_approvals_racing_a_new_stable_version(live_server: LiveServer, tmp_path: Path) -> None:
    with httpx.Client(base_url=live_server.url, headers=auth(live_server.token), timeout=60) as c:
        ns = c.post("/api/v1/namespaces", json={"name": unique("ns")}).json()["name"]
        manifest = read_base_dir(PEFT_FIXTURES / "bases" / "tiny-gpt2").to_json()
        base_name = unique("gpt2")
        r = c.post(
            "/api/v1/base-models",
            json={"name": base_name, "revision": "main"}
            | {"config": manifest["config"], "tensors": manifest["tensors"]},
        )
        assert r.status_code == 201, r.text
        base = f"{base_name}@main"
        dev = _principal(c, "developer", ns)
        operator = _principal(c, "operator", ns)
        approvers = [_principal(c, "approver", ns) for _ in range(RACERS)]
        dep = unique("dep")
        refs = [_push(c, dev, ns, base, 1)]
        r = c.post("/api/v1/deployments", json={"name": dep, "base": base, "adapter": f"{ns}/bot"})
        assert r.status_code == 201, r.text
        refs += [_push(c, dev, ns, base, n) for n in range(2, RACERS + 3)]

        def request(ref: str) -> str:
            made = c.post(
                "/api/v1/promotions",
                json={"ref": ref, "deployment": dep, "plan": "canary"},
                headers=auth(dev),
            ).json()
            assert made["state"] == "pending", made
            return str(made["id"])

        def approve(promotion_id: str, token: str) -> dict[str, Any]:
            r = c.post(f"/api/v1/promotions/{promotion_id}/approve", headers=auth(token))
            assert r.status_code == 200, r.text
            body: dict[str, Any] = r.json()
            return body

        assert approve(request(refs[0]), approvers[0])["state"] == "completed"  # v1 stable
        assert approve(request(refs[1]), approvers[0])["state"] == "rolling_out"  # v2 canary
        racing = [request(ref) for ref in refs[2:]]  # v3.. against v1
        revision = c.get(f"/api/v1/deployments/{dep}").json()["revision"]

    results: dict[str, tuple[int, dict[str, Any]]] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(RACERS + 1)

    def run(key: str, path: str, token: str, headers: dict[str, str], body: Any) -> None:
        with httpx.Client(base_url=live_server.url, timeout=60) as client:
            barrier.wait(timeout=30)
            # Approvals start at random within 200 ms: the operator's completion lands
            # before, between or after them on different runs (no timing is asserted, only the
            # invariants below hold whatever the order).
            if key != "operator":
                time.sleep(random.uniform(0, 0.2))
            r = client.post(path, json=body, headers={**auth(token), **headers})
        with lock:
            results[key] = (r.status_code, r.json())

    threads = [
        threading.Thread(
            target=run,
            args=(
                "operator",
                f"/api/v1/deployments/{dep}/rollout",
                operator,
                {"If-Match": f'"{revision}"'},
                {"share_bp": 10_000},
            ),
        )
    ] + [
        threading.Thread(
            target=run, args=(pid, f"/api/v1/promotions/{pid}/approve", token, {}, None)
        )
        for pid, token in zip(racing, approvers, strict=True)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(results) == RACERS + 1, results

    op_status, _ = results.pop("operator")
    assert op_status in (200, 412), results
    with httpx.Client(base_url=live_server.url, headers=auth(live_server.token), timeout=60) as c:
        history = c.get(f"/api/v1/deployments/{dep}/history", params={"limit": 100}).json()
        by_promotion = {h["promotion_id"]: h for h in history["items"] if h["promotion_id"]}
        for pid, (code, body) in results.items():
            shown = c.get(f"/api/v1/promotions/{pid}").json()
            if code == 200:
                # Its canary started while v1, the version it was evaluated against, was stable.
                started = by_promotion[pid]
                assert started["stable_version"] == 1, (pid, started)
                assert shown["state"] in ("rolling_out", "rolled_back"), shown
            else:
                assert (code, body["error"]) == (409, "stable_changed"), (pid, code, body)
                assert shown["state"] == "expired", shown
        approved = [pid for pid, (code, _) in results.items() if code == 200]
        if op_status == 200:
            # v2 became stable before any racer got through: every racer expired.
            assert approved == [], results
            assert c.get(f"/api/v1/deployments/{dep}").json()["stable"]["ref"] == refs[1]
        else:
            assert approved, results  # the revision moved: some approval came first
        verified = c.get("/api/v1/audit/verify").json()
        assert verified["ok"], verified
