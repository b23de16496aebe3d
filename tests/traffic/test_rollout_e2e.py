"""End to end on real server processes: promotion → canary → healthy reports → steps → stable
→ next candidate → bad reports → automatic rollback; "what served at T" before, during and
after; the audit chain verifies. On PostgreSQL with two replicas (one controller acts per round,
a change is visible on the other replica within a second); on SQLite with one server.
Also: two operators moving traffic at once → exactly one wins."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from registry.canary.hashing import arm as arm_of
from registry.db import migrate
from registry.validation.manifest import read_base_dir
from tests.factories.catalog import sha256_hex, unique
from tests.factories.governance import DATASET, auth
from tests.factories.rollouts import FAST_PLANS
from tests.fixtures.app import bootstrap
from tests.fixtures.db import dialect, drop_database, new_database_url
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import server_env, start_server, stop_server

INTERVAL_S = 0.5


@dataclass
class Cluster:
    urls: list[str]
    admin: str


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    url = new_database_url(tmp_path, "registry_e2e")
    procs = []
    try:
        migrate.upgrade(url)
        admin = bootstrap(url, "admin")
        replicas = 2 if dialect() == "postgresql" else 1
        urls = []
        for i in range(replicas):
            env = server_env(
                url,
                tmp_path / "artifacts",  # shared, like a shared bucket
                REGISTRY_CONTROLLER__INTERVAL_S=str(INTERVAL_S),
                REGISTRY_ROLLOUT__ROUTING_POLL_S="0.2",
                REGISTRY_AUTH__TOKEN_CACHE_S="0",
            )
            env["REGISTRY_AUDIT__SIGNING_KEY_PATH"] = str(tmp_path / "audit.key")
            proc, base = start_server(env, tmp_path / f"replica-{i}.log")
            procs.append(proc)
            urls.append(base)
        yield Cluster(urls, admin)
    finally:
        for proc in procs:
            stop_server(proc)
        drop_database(url)


def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout_s} s")


class World:
    def __init__(self, c: httpx.Client, admin: str) -> None:
        self.c = c
        self.ns = _ok(c.post("/api/v1/namespaces", json={"name": unique("ns")}), 201)["name"]
        manifest = read_base_dir(PEFT_FIXTURES / "bases" / "tiny-gpt2").to_json()
        name = unique("gpt2")
        _ok(
            c.post(
                "/api/v1/base-models",
                json={
                    "name": name,
                    "revision": "main",
                    "config": manifest["config"],
                    "tensors": manifest["tensors"],
                },
            ),
            201,
        )
        self.base = f"{name}@main"
        self.tokens = {r: self.principal(r) for r in ("developer", "approver", "operator")}
        self.pushed = 0

    def principal(self, role: str) -> str:
        name = unique(role)
        _ok(
            self.c.post(
                "/api/v1/principals", json={"name": name, "role": role, "namespaces": [self.ns]}
            ),
            201,
        )
        return str(_ok(self.c.post("/api/v1/tokens", json={"principal": name}), 201)["token"])

    def h(self, role: str) -> dict[str, str]:
        return auth(self.tokens[role])

    def push(self, score: float) -> str:
        self.pushed += 1
        upload = _ok(self.c.post("/api/v1/uploads", json={}, headers=self.h("developer")), 201)[
            "id"
        ]
        src = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
        for path in sorted(src.iterdir()):
            data = path.read_bytes() if path.name != "README.md" else f"v{self.pushed}\n".encode()
            _ok(
                self.c.put(
                    f"/api/v1/uploads/{upload}/files/{path.name}",
                    content=data,
                    headers={
                        **self.h("developer"),
                        "X-Content-Digest": f"sha256:{sha256_hex(data)}",
                    },
                ),
                201,
            )
        v = _ok(
            self.c.post(
                f"/api/v1/adapters/{self.ns}/bot/versions",
                json={"base": self.base, "upload_id": upload},
                headers=self.h("developer"),
            ),
            201,
        )["version"]
        ref = f"{self.ns}/bot@v{v}"
        _ok(
            self.c.post(
                f"/api/v1/adapters/{self.ns}/bot/versions/v{v}/evaluations",
                json={"suite": "qa", "metric": "acc", "value": score, "dataset_digest": DATASET},
                headers=self.h("developer"),
            ),
            201,
        )
        return ref

    def promote(self, ref: str, dep: str, plan: str = "fast") -> dict[str, Any]:
        req = _ok(
            self.c.post(
                "/api/v1/promotions",
                json={"ref": ref, "deployment": dep, "plan": plan},
                headers=self.h("developer"),
            ),
            201,
        )
        assert req["state"] == "pending", req
        return _ok(
            self.c.post(f"/api/v1/promotions/{req['id']}/approve", headers=self.h("approver"))
        )

    def report(self, dep: str, revision: int, arm: str, requests: int, errors: int) -> None:
        end = datetime.now(UTC)
        _ok(
            self.c.post(
                f"/api/v1/deployments/{dep}/reports",
                json={
                    "revision": revision,
                    "arm": arm,
                    "window_start": (end - timedelta(seconds=30)).isoformat(),
                    "window_end": end.isoformat(),
                    "requests": requests,
                    "errors": errors,
                },
                headers=self.h("operator"),
            ),
            201,
        )


def test_canary_steps_then_automatic_rollback_and_served_history(cluster: Cluster) -> None:
    a = cluster.urls[0]
    b = cluster.urls[-1]  # the second replica on PostgreSQL, the same server on SQLite
    with (
        httpx.Client(base_url=a, headers=auth(cluster.admin), timeout=60) as c,
        httpx.Client(base_url=b, headers=auth(cluster.admin), timeout=60) as other,
    ):
        w = World(c, cluster.admin)
        _apply_fast_plans(c)
        v1 = w.push(0.80)
        dep = unique("dep")
        _ok(
            c.post(
                "/api/v1/deployments",
                json={"name": dep, "base": w.base, "adapter": f"{w.ns}/bot"},
                headers=w.h("operator"),
            ),
            201,
        )
        assert w.promote(v1, dep)["state"] == "completed"
        t_v1_stable = datetime.now(UTC)

        def status(client: httpx.Client = c) -> dict[str, Any]:
            return _ok(client.get(f"/api/v1/deployments/{dep}"))

        # v2: canary at 5 %, visible on the other replica's resolve path within a second.
        v2 = w.push(0.85)
        assert w.promote(v2, dep)["state"] == "rolling_out"
        t_v2_canary = datetime.now(UTC)
        canary = status()
        assert canary["share_bp"] == 500
        table = _ok(c.get(f"/api/v1/deployments/{dep}/routing-table"))

        def replica_sees(revision: int) -> bool:
            r = other.get(f"/api/v1/deployments/{dep}/resolve", params={"key": "probe"})
            return r.status_code == 200 and r.json()["revision"] == revision

        _wait(lambda: replica_sees(canary["revision"]), 1.0, "canary on the other replica")
        # Healthy reports step it to 50 %, then to 100 % (the candidate becomes stable).
        for share in (500, 5000, 10000):
            rev = status()["revision"]
            assert status()["share_bp"] == share
            if share < 10000:  # at 100 % the stable arm serves nothing
                w.report(dep, rev, "stable", 2000, 20)
            w.report(dep, rev, "candidate", 400, 4)

            def moved(rev: int = rev) -> bool:
                return bool(status()["revision"] > rev)

            _wait(moved, 10 * INTERVAL_S + 5, f"step from {share}")
        _wait(
            lambda: status()["candidate"] is None and status()["stable"]["ref"] == v2,
            10,
            "completion",
        )
        t_v2_stable = datetime.now(UTC)
        # v3 is bad: the controller rolls it back within one interval of the evidence.
        v3 = w.push(0.90)
        assert w.promote(v3, dep)["state"] == "rolling_out"
        t_v3_canary = datetime.now(UTC)
        rev = status()["revision"]
        w.report(dep, rev, "stable", 2000, 20)
        w.report(dep, rev, "candidate", 400, 200)
        took = _wait(
            lambda: status()["candidate"] is None, 10 * INTERVAL_S + 5, "automatic rollback"
        )
        t_rolled_back = datetime.now(UTC)
        final = status(other)
        assert final["stable"]["ref"] == v2
        _check_one_move_per_round(c, dep)
        assert took < 10 * INTERVAL_S + 5

        times = {
            "v1 stable": t_v1_stable,
            "v2 canary": t_v2_canary,
            "v2 stable": t_v2_stable,
            "v3 canary": t_v3_canary,
            "rolled back": t_rolled_back,
        }
        _check_served_history(c, dep, table["salt"], times, (v1, v2, v3))


def _check_one_move_per_round(c: httpx.Client, dep: str) -> None:
    history = _ok(c.get(f"/api/v1/deployments/{dep}/history", params={"limit": 50}))["items"]
    reasons = [h["reason"] for h in reversed(history)]
    # One controller acted per round: no step appears twice.
    assert reasons == [
        "created",
        "promotion",
        "promotion",
        "step",
        "step",
        "step",
        "promotion",
        "automatic_rollback",
    ], reasons


def _apply_fast_plans(c: httpx.Client) -> None:
    current = _ok(c.get("/api/v1/policies"))
    _ok(
        c.post(
            "/api/v1/policies",
            json={
                "schema_text": current["schema_text"],
                "policies_text": current["policies_text"],
                "gates_text": current["gates_text"],
                "rollout_text": FAST_PLANS,
            },
        ),
        201,
    )


def _check_served_history(
    c: httpx.Client,
    dep: str,
    salt: str,
    times: dict[str, datetime],
    refs: tuple[str, str, str],
) -> None:
    """What served when (v1 stable, v2's canary then stable, v3's canary rolled back), the
    audit chain intact, and the rollback's decision with its evidence."""
    v1, v2, v3 = refs

    def served(at: datetime, key: str | None = None) -> dict[str, Any]:
        params = {"deployment": dep, "at": at.isoformat()}
        if key:
            params["key"] = key
        return _ok(c.get("/api/v1/audit/served", params=params))

    key = next(f"t{i}" for i in range(20_000) if arm_of(salt, f"t{i}", 500) == "candidate")
    before = served(times["v1 stable"], key)
    assert before["stable"]["ref"] == v1
    assert before["candidate"] is None
    assert before["arm"] == "stable"
    during = served(times["v2 canary"], key)
    assert during["stable"]["ref"] == v1
    assert during["candidate"]["ref"] == v2
    assert during["share_bp"] == 500
    assert during["arm"] == "candidate"
    assert during["promotion"]["approvers"]
    after = served(times["v2 stable"], key)
    assert after["stable"]["ref"] == v2
    assert after["candidate"] is None
    bad = served(times["v3 canary"])
    assert bad["candidate"]["ref"] == v3
    gone = served(times["rolled back"], key)
    assert gone["stable"]["ref"] == v2
    assert gone["candidate"] is None
    assert gone["reason"] == "automatic_rollback"
    verified = _ok(c.get("/api/v1/audit/verify"))
    assert verified["ok"], verified
    decisions = c.get(f"/api/v1/deployments/{dep}/decisions").json()["items"]
    assert decisions[0]["action"] == "rollback"
    assert decisions[0]["evidence"]["candidate"]["report_ids"]


def test_two_operators_at_once_exactly_one_wins(cluster: Cluster) -> None:
    with httpx.Client(base_url=cluster.urls[0], headers=auth(cluster.admin), timeout=60) as c:
        w = World(c, cluster.admin)
        first = w.push(0.8)
        dep = unique("dep")
        _ok(
            c.post(
                "/api/v1/deployments", json={"name": dep, "base": w.base, "adapter": f"{w.ns}/bot"}
            ),
            201,
        )
        w.promote(first, dep, plan="canary")
        w.promote(w.push(0.9), dep, plan="canary")
        revision = _ok(c.get(f"/api/v1/deployments/{dep}"))["revision"]
        ops = [w.principal("operator") for _ in range(2)]
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(2)
    moves = [("rollout", {"share_bp": 2500}), ("rollback", {})]

    def move(token: str, verb: str, body: dict[str, Any], url: str) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            barrier.wait(timeout=30)
            r = client.post(
                f"/api/v1/deployments/{dep}/{verb}",
                json=body,
                headers={**auth(token), "If-Match": f'"{revision}"'},
            )
        with lock:
            results.append((r.status_code, verb))

    threads = [
        threading.Thread(target=move, args=(ops[i], *moves[i], cluster.urls[i % len(cluster.urls)]))
        for i in range(2)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(s for s, _ in results) == [200, 412], results
    with httpx.Client(base_url=cluster.urls[0], headers=auth(cluster.admin), timeout=60) as c:
        history = _ok(c.get(f"/api/v1/deployments/{dep}/history"))["items"]
        assert history[0]["revision"] == revision + 1
        assert [h["revision"] for h in history] == list(range(revision + 1, 0, -1))
