"""The mirror against a real MLflow server: aliases and tags follow promotions, canaries,
rollbacks and completions; a hand-moved alias is put back and recorded as drift; MLflow down
is survived and converged from; bindings are refused for servers off the allow-list."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from registry.db.session import unit_of_work
from registry.mlflow_mirror import rounds
from registry.mlflow_mirror import worker as worker_module
from registry.mlflow_mirror.rest import MirrorRest
from registry.mlflow_mirror.sync import Outcome
from registry.mlflow_mirror.worker import MirrorWorker
from registry.mlflow_settings import MlflowSettings
from tests.factories.catalog import create_namespace, error_of, unique
from tests.factories.governance import create_deployment, decide, record_eval, request_promotion
from tests.fixtures.governance import Team
from tests.fixtures.server import free_port
from tests.mlflow_import.conftest import MlflowServer, mlflow_env
from tests.mlflow_mirror.conftest import REASSERT_S

API = "/api/2.0/mlflow"


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Rig:
    team: Team
    server: MlflowServer
    model: str
    dep: str
    v1: str
    v2: str
    clock: Clock
    worker: MirrorWorker

    def tick(self) -> dict[str, Any]:
        return dict(self.worker.tick())

    def alias(self, alias: str) -> str | None:
        r = httpx.get(
            f"{self.server.url}{API}/registered-models/alias",
            params={"name": self.model, "alias": alias},
        )
        if r.status_code in (400, 404) and "not found" in r.text:  # MLflow 3: 400, not 404
            return None
        assert r.status_code == 200, r.text
        return str(r.json()["model_version"]["version"])

    def tags(self, version: str) -> dict[str, str]:
        r = httpx.get(
            f"{self.server.url}{API}/model-versions/get",
            params={"name": self.model, "version": version},
        )
        return {t["key"]: t["value"] for t in r.json()["model_version"].get("tags", [])}

    def revision(self) -> int:
        return int(self.team.client.get(f"/api/v1/deployments/{self.dep}").json()["revision"])

    def binding(self) -> dict[str, Any]:
        r = self.team.client.get(f"/api/v1/deployments/{self.dep}/mlflow-mirror")
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


def _model_versions(server: MlflowServer) -> str:
    """A registered model whose versions 1 and 2 are two different adapters of one run."""
    name = unique("mirror")
    run = server.sources["plain"]
    r = httpx.post(f"{server.url}{API}/registered-models/create", json={"name": name})
    assert r.status_code == 200, r.text
    for path in ("adapter", "trainer/checkpoint-20"):
        body = {"name": name, "source": f"runs:/{run}/{path}", "run_id": run}
        r = httpx.post(f"{server.url}{API}/model-versions/create", json=body)
        assert r.status_code == 200, r.text
    return name


def _import(team: Team, server: MlflowServer, uri: str) -> str:
    body = {"source_uri": uri, "tracking_server": server.url, "base": team.base}
    r = team.client.post(f"/api/v1/adapters/{team.adapter_ref}/mlflow-imports", json=body)
    assert r.status_code == 201, r.text
    ref = f"{team.adapter_ref}@v{r.json()['version']['version']}"
    assert record_eval(team.client, team.dev, ref, 0.8).status_code == 201
    return ref


def _promote(team: Team, ref: str, dep: str, state: str) -> None:
    r = request_promotion(team.client, team.dev, ref, dep)
    assert r.status_code == 201, r.text
    decided = decide(team.client, team.approver, r.json()["id"], "approve").json()
    assert decided["state"] == state, decided


@pytest.fixture
def rig(
    mirror_team: Team, mlflow_server: MlflowServer, mirror_settings: MlflowSettings
) -> Iterator[Rig]:
    team = mirror_team
    model = _model_versions(mlflow_server)
    v1 = _import(team, mlflow_server, f"models:/{model}/1")
    v2 = _import(team, mlflow_server, f"models:/{model}/2")
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = team.client.put(
        f"/api/v1/deployments/{dep}/mlflow-mirror",
        json={"tracking_server": mlflow_server.url, "model": model},
        headers=team.operator.headers,
    )
    assert r.status_code == 201, r.text
    clock = Clock()
    sessions = team.client.app.state.sessions  # type: ignore[attr-defined]
    worker = MirrorWorker(sessions, mirror_settings, clock=clock)
    yield Rig(team, mlflow_server, model, dep, v1, v2, clock, worker)
    # The database is shared by the module's tests: a binding left behind (its MLflow server
    # gone with its test) would be due in every later test's rounds.
    r = team.client.delete(
        f"/api/v1/deployments/{dep}/mlflow-mirror", headers=team.operator.headers
    )
    assert r.status_code == 204, r.text


def _move_by_hand(rig: Rig, alias: str, version: str) -> None:
    code = (
        "import sys, mlflow; mlflow.MlflowClient(sys.argv[1])"
        ".set_registered_model_alias(sys.argv[2], sys.argv[3], sys.argv[4])"
    )
    cmd = [sys.executable, "-c", code, rig.server.url, rig.model, alias, version]
    subprocess.run(cmd, env=mlflow_env(), check=True, timeout=120)


def test_aliases_follow_promotion_canary_rollback_and_completion(rig: Rig) -> None:
    team, dep = rig.team, rig.dep
    assert rig.tick()[dep].error is None  # bound: asserted once, nothing to set yet
    assert (rig.alias("prod-stable"), rig.alias("prod-candidate")) == (None, None)

    _promote(team, rig.v1, dep, "completed")
    assert rig.tick()[dep].error is None
    assert rig.alias("prod-stable") == "1"
    assert rig.alias("prod-candidate") is None
    tags = rig.tags("1")
    assert tags["registry.deployment"] == dep
    assert tags["registry.role"] == "stable"
    assert tags["registry.revision"] == str(rig.revision())
    assert dep not in rig.tick()  # nothing new: not asserted again

    _promote(team, rig.v2, dep, "rolling_out")
    rig.tick()
    assert (rig.alias("prod-stable"), rig.alias("prod-candidate")) == ("1", "2")
    assert rig.tags("2")["registry.role"] == "candidate"

    r = team.client.post(
        f"/api/v1/deployments/{dep}/rollback",
        json={"expected_revision": rig.revision()},
        headers=team.operator.headers,
    )
    assert r.status_code == 200, r.text
    rig.tick()
    assert (rig.alias("prod-stable"), rig.alias("prod-candidate")) == ("1", None)
    assert rig.tags("2")["registry.role"] == "retired"

    _promote(team, rig.v2, dep, "rolling_out")
    rig.tick()
    assert rig.alias("prod-candidate") == "2"
    r = team.client.post(
        f"/api/v1/deployments/{dep}/rollout",
        json={"share_bp": 10000, "expected_revision": rig.revision()},
        headers=team.operator.headers,
    )
    assert r.status_code == 200, r.text
    rig.tick()
    assert (rig.alias("prod-stable"), rig.alias("prod-candidate")) == ("2", None)
    assert rig.tags("2")["registry.role"] == "stable"
    assert rig.tags("1")["registry.role"] == "retired"
    binding = rig.binding()
    assert binding["last_set"] == {"prod-stable": "2", "prod-candidate": None}
    assert (binding["last_error"], binding["last_drift"]) == (None, None)


def test_hand_moved_alias_is_put_back_and_recorded_as_drift(rig: Rig) -> None:
    _promote(rig.team, rig.v1, rig.dep, "completed")
    _promote(rig.team, rig.v2, rig.dep, "rolling_out")
    rig.tick()
    assert rig.alias("prod-candidate") == "2"
    _move_by_hand(rig, "prod-candidate", "1")
    assert dep_not_due(rig)  # no event: nothing until the re-assert period has passed
    rig.clock.advance(REASSERT_S + 1)
    assert rig.tick()[rig.dep].error is None
    assert rig.alias("prod-candidate") == "2"
    drift = rig.binding()["last_drift"]
    assert drift["drifts"] == [
        {"reason": "alias_moved", "alias": "prod-candidate", "expected": "2", "found": "1"}
    ]
    params = {"action": "mlflow_mirror.drift", "resource": f"deployment:{rig.dep}"}
    events = rig.team.client.get("/api/v1/audit/events", params=params).json()["items"]
    assert [e["after"]["drifts"] for e in events] == [drift["drifts"]]


def dep_not_due(rig: Rig) -> bool:
    return rig.dep not in rig.tick()


def test_mlflow_down_is_survived_and_converged_from(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    down = f"http://127.0.0.1:{free_port()}"

    class Down(MirrorRest):
        def __init__(self, server: str, limits: MlflowSettings) -> None:
            super().__init__(down, limits)

    rig.tick()
    monkeypatch.setattr(worker_module, "MirrorRest", Down)
    _promote(rig.team, rig.v1, rig.dep, "completed")
    outcome = rig.tick()[rig.dep]
    assert outcome.error is not None
    assert "mlflow_unavailable" in outcome.error
    assert rig.binding()["last_error"] == outcome.error
    assert rig.tick()[rig.dep].error is not None  # retried every round, never crashes
    assert rig.alias("prod-stable") is None
    monkeypatch.undo()
    assert rig.tick()[rig.dep].error is None
    assert rig.alias("prod-stable") == "1"
    assert rig.binding()["last_error"] is None
    assert rig.binding()["last_drift"] is None


def test_version_not_from_the_model_is_drift_and_skipped(rig: Rig) -> None:
    pushed = rig.team.push()
    record_eval(rig.team.client, rig.team.dev, pushed, 0.8)
    _promote(rig.team, pushed, rig.dep, "completed")
    rig.tick()
    assert rig.alias("prod-stable") is None
    drift = rig.binding()["last_drift"]
    version = int(pushed.rsplit("@v", 1)[1])
    assert drift["drifts"] == [
        {
            "reason": "no_mlflow_version",
            "alias": "prod-stable",
            "role": "stable",
            "adapter_version": version,
        }
    ]


def test_binding_api_codes(mirror_team: Team, mlflow_server: MlflowServer) -> None:
    team = mirror_team
    team.push()
    dep = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    url = f"/api/v1/deployments/{dep}/mlflow-mirror"
    assert error_of(team.client.get(url))[0] == "mlflow_mirror_not_found"
    assert error_of(team.client.delete(url))[0] == "mlflow_mirror_not_found"
    elsewhere = f"http://127.0.0.1:{free_port()}"
    r = team.client.put(url, json={"tracking_server": elsewhere, "model": "m"})
    assert (r.status_code, error_of(r)[0]) == (403, "mlflow_server_not_allowed")
    r = team.client.put(url, json={"model": "m"})  # no default server configured
    assert error_of(r)[0] == "mlflow_server_not_allowed"
    body = {"tracking_server": mlflow_server.url, "model": "m", "stable_alias": "latest"}
    assert team.client.put(url, json=body).status_code == 422
    body = {"tracking_server": mlflow_server.url, "model": "m"}
    r = team.client.put(url, json=body, headers=team.dev.headers)
    assert r.status_code in (403, 404), r.text  # a developer may not move traffic
    r = team.client.put(url, json={**body, "stable_alias": "live"}, headers=team.operator.headers)
    assert r.status_code == 201, r.text
    assert (r.json()["stable_alias"], r.json()["candidate_alias"]) == ("live", "prod-candidate")
    r = team.client.put(url, json=body, headers=team.operator.headers)
    assert (r.status_code, r.json()["stable_alias"]) == (200, "prod-stable")
    assert team.client.delete(url, headers=team.operator.headers).status_code == 204
    assert error_of(team.client.get(url))[0] == "mlflow_mirror_not_found"


def test_one_replica_asserts_a_binding_at_a_time(rig: Rig, mirror_settings: MlflowSettings) -> None:
    """A binding planned by one replica is leased: another replica's round skips it until
    the outcome is recorded (or the lease runs out)."""
    _promote(rig.team, rig.v1, rig.dep, "completed")
    sessions = rig.team.client.app.state.sessions  # type: ignore[attr-defined]
    other = MirrorWorker(sessions, mirror_settings, clock=rig.clock)
    plans = [p for p in rig.worker.claim() if p.deployment == rig.dep]
    assert len(plans) == 1
    assert rig.dep not in {p.deployment for p in other.claim()}
    rig.worker.assert_one(plans[0])
    assert rig.alias("prod-stable") == "1"
    assert rig.dep not in other.tick()  # recorded: nothing new to assert


def test_a_long_stretch_of_other_events_costs_one_round(
    rig: Rig, mirror_settings: MlflowSettings
) -> None:
    """A round reads only the bound deployments' events: more unrelated events than a round's
    batch between the binding's cursor and a promotion still make it due in the next round."""
    worker = MirrorWorker(
        rig.team.client.app.state.sessions,  # type: ignore[attr-defined]
        mirror_settings.model_copy(update={"mirror_batch": 2}),
        clock=rig.clock,
    )
    assert rig.dep in worker.tick()  # first assertion: cursor at the log's end
    rig.clock.advance(1)
    for _ in range(5):  # audited, on other resources
        create_namespace(rig.team.client)
    assert worker.claim() == []  # nothing touched the deployment
    _promote(rig.team, rig.v1, rig.dep, "completed")
    for _ in range(5):
        create_namespace(rig.team.client)
    assert [p.deployment for p in worker.claim()] == [rig.dep]


def test_a_binding_in_error_does_not_hold_the_others_back(
    rig: Rig, mirror_settings: MlflowSettings
) -> None:
    """Rounds read the audit log from the lowest cursor of all bindings. A binding whose every
    attempt fails (its MLflow down: recorded as the worker records a failed attempt) moves its
    cursor anyway, so round after round the other bindings still see their new events."""
    team = rig.team
    sessions = team.client.app.state.sessions  # type: ignore[attr-defined]
    failing = create_deployment(team.client, team.operator, team.base, team.adapter_ref)
    r = team.client.put(
        f"/api/v1/deployments/{failing}/mlflow-mirror",
        json={"tracking_server": rig.server.url, "model": rig.model},
        headers=team.operator.headers,
    )
    assert r.status_code == 201, r.text
    worker = MirrorWorker(
        sessions, mirror_settings.model_copy(update={"mirror_batch": 2}), clock=rig.clock
    )

    def one_round() -> set[str]:
        planned = set()
        for plan in worker.claim():
            planned.add(plan.deployment)
            if plan.deployment != failing:
                assert worker.assert_one(plan).error is None
                continue
            down = Outcome(last_set=dict(plan.last_set), error="mlflow_unavailable: down")
            with unit_of_work(sessions.write) as session:
                rounds.record(session, plan, down, now=rig.clock())
        rig.clock.advance(1)
        return planned

    try:
        assert one_round() == {rig.dep, failing}  # both new
        _promote(team, rig.v1, rig.dep, "completed")
        assert one_round() == {rig.dep, failing}
        assert rig.alias("prod-stable") == "1"
        _promote(team, rig.v2, rig.dep, "rolling_out")
        assert one_round() == {rig.dep, failing}
        assert rig.alias("prod-candidate") == "2"
        r = team.client.post(
            f"/api/v1/deployments/{rig.dep}/rollback",
            json={"expected_revision": rig.revision()},
            headers=team.operator.headers,
        )
        assert r.status_code == 200, r.text
        assert one_round() == {rig.dep, failing}
        assert rig.alias("prod-candidate") is None
    finally:
        r = team.client.delete(
            f"/api/v1/deployments/{failing}/mlflow-mirror", headers=team.operator.headers
        )
        assert r.status_code == 204, r.text
