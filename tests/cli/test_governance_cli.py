"""The governance CLI as scripts use it: principals, tokens, policies, deployments, promotions
and the audit log, each a subprocess against a real server, checking JSON and exit codes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from registry.db import migrate
from tests.cli.test_cli_e2e import cli
from tests.factories.catalog import unique
from tests.fixtures.app import bootstrap
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer, server_env, start_server, stop_server

ROOT = Path(__file__).resolve().parents[2]
POLICIES = ROOT / "registry" / "policies"  # the shipped default policy set
ADAPTER_SRC = PEFT_FIXTURES / "adapters" / "llama-lora-r16-all-linear"


@dataclass(frozen=True)
class World:
    """A namespace, a base, an adapter with version 1 and a deployment of it."""

    server: LiveServer
    ns: str
    base: str
    adapter: str
    deployment: str
    tmp: Path

    def run(self, *args: str, token: str | None = None) -> tuple[int, Any, str]:
        return cli(self.server, *args, token=token)

    def ok(self, *args: str, token: str | None = None) -> Any:
        code, body, err = self.run(*args, token=token)
        assert code == 0, (args, body, err)
        return body

    def push(self, note: str) -> str:
        """A new version of the adapter (README varied so the content differs); its REF."""
        work = self.tmp / unique("adapter")
        shutil.copytree(ADAPTER_SRC, work)
        (work / "README.md").write_text(f"{note}\n")
        body = self.ok(
            "adapters", "push", str(work), "--adapter", self.adapter, "--base", self.base
        )
        return f"{self.adapter}@v{body['version']}"

    def score(self, ref: str, value: float, suite: str = "support") -> None:
        self.ok(
            "evals", "record", ref, "--suite", suite, "--metric", "accuracy", "--value", str(value)
        )

    def request(self, ref: str, *extra: str) -> tuple[int, Any, str]:
        return self.run("promotions", "request", ref, "--deployment", self.deployment, *extra)

    def approver(self) -> str:
        """A new human approver in this namespace; its API token."""
        name = unique("bob")
        self.ok("principals", "create", name, "--role", "approver", "--namespace", self.ns)
        token: str = self.ok("tokens", "create", "--principal", name)["token"]
        return token


def new_world(server: LiveServer, tmp_path: Path, prefix: str, deployment_prefix: str) -> World:
    """A namespace, the tiny-llama base, v1 of ``NS/bot`` and a deployment of it."""
    ns, base, deployment = unique(prefix), unique("llama"), unique(deployment_prefix)
    assert cli(server, "namespaces", "create", ns)[0] == 0
    code, _body, err = cli(
        server,
        "base-models",
        "register",
        base,
        "--revision",
        "main",
        "--from",
        str(PEFT_FIXTURES / "bases" / "tiny-llama"),
    )
    assert code == 0, err
    w = World(server, ns, f"{base}@main", f"{ns}/bot", deployment, tmp_path)
    w.push("v1")
    w.ok("deployments", "create", deployment, "--base", w.base, "--adapter", w.adapter)
    return w


@pytest.fixture
def world(live_server: LiveServer, tmp_path: Path) -> World:
    return new_world(live_server, tmp_path, "gov", "chat")


def raw_cli(server: LiveServer, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI in table mode (no --output json)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(REGISTRY_URL=server.url, REGISTRY_TOKEN=server.token)
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestPrincipals:
    def test_create_list_grant(self, live_server: LiveServer) -> None:
        ns1, ns2, name = unique("team"), unique("team"), unique("alice")
        for ns in (ns1, ns2):
            assert cli(live_server, "namespaces", "create", ns)[0] == 0
        code, body, err = cli(
            live_server,
            "principals",
            "create",
            name,
            "--role",
            "developer",
            "--namespace",
            ns1,
            "--ci-identity",
            "alice-gh",
        )
        assert code == 0, err
        assert (body["name"], body["role"], body["kind"]) == (name, "developer", "human")
        assert (body["namespaces"], body["ci_identity"], body["disabled"]) == (
            [ns1],
            "alice-gh",
            False,
        )
        code, listing, _ = cli(live_server, "principals", "list", "--limit", "2", "--all")
        assert code == 0
        assert name in [p["name"] for p in listing["items"]]
        code, body, _ = cli(live_server, "principals", "grant", name, "--namespace", ns2)
        assert code == 0
        assert sorted(body["namespaces"]) == sorted([ns1, ns2])

    def test_errors(self, live_server: LiveServer) -> None:
        name = unique("svc")
        args = ("principals", "create", name, "--role", "viewer", "--kind", "service")
        assert cli(live_server, *args)[0] == 0
        code, body, _ = cli(live_server, *args)
        assert (code, body["error"]) == (5, "principal_exists")
        code, body, _ = cli(live_server, "principals", "grant", name, "--namespace", unique("no"))
        assert (code, body["error"]) == (4, "namespace_not_found")
        code, body, _ = cli(
            live_server, "principals", "grant", unique("nobody"), "--namespace", "x"
        )
        assert code == 4
        code, body, _ = cli(live_server, "principals", "create", unique("x"), "--role", "wizard")
        assert (code, body["error"]) == (2, "usage")


class TestTokens:
    def test_create_use_list_revoke(self, live_server: LiveServer) -> None:
        ns, name = unique("team"), unique("ci")
        assert cli(live_server, "namespaces", "create", ns)[0] == 0
        args = ("principals", "create", name, "--role", "developer", "--namespace", ns)
        assert cli(live_server, *args, "--kind", "service")[0] == 0
        code, issued, err = cli(
            live_server, "tokens", "create", "--principal", name, "--name", "ci"
        )
        assert code == 0, err
        assert issued["token"]
        assert issued["principal"] == name
        assert issued["name"] == "ci"
        assert issued["expires_at"] is not None
        assert issued["revoked_at"] is None
        token = issued["token"]

        code, listing, _ = cli(live_server, "namespaces", "list", token=token)
        assert code == 0
        assert [n["name"] for n in listing["items"]] == [ns]
        code, own, _ = cli(live_server, "tokens", "list", token=token)  # self-service
        assert code == 0
        assert [t["id"] for t in own["items"]] == [issued["id"]]
        assert all("token" not in t for t in own["items"])

        code, revoked, _ = cli(live_server, "tokens", "revoke", issued["id"])
        assert code == 0
        assert revoked["id"] == issued["id"]
        assert revoked["revoked_at"] is not None
        code, body, _ = cli(live_server, "namespaces", "list", token=token)
        assert (code, body["error"]) == (3, "unauthenticated")
        code, listing, _ = cli(live_server, "tokens", "list", "--principal", name)
        assert code == 0
        assert listing["items"][0]["revoked_at"] is not None

    def test_expiry_and_scopes(self, live_server: LiveServer) -> None:
        name = unique("svc")
        assert cli(live_server, "principals", "create", name, "--role", "viewer")[0] == 0
        base = ("tokens", "create", "--principal", name)
        code, forever, _ = cli(live_server, *base, "--no-expiry", "--scope", "read")
        assert code == 0
        assert (forever["expires_at"], forever["scopes"]) == (None, ["read"])
        code, short, _ = cli(live_server, *base, "--ttl-days", "1")
        assert code == 0
        assert short["expires_at"] is not None
        assert short["scopes"] is None
        code, body, _ = cli(live_server, *base, "--ttl-days", "1", "--no-expiry")
        assert (code, body["error"]) == (2, "usage")
        code, body, _ = cli(live_server, "tokens", "revoke", "00000000-0000-4000-8000-000000000000")
        assert (code, body["error"]) == (4, "token_not_found")


class TestPublishers:
    def test_add_and_list(self, live_server: LiveServer) -> None:
        ns, svc, name = unique("team"), unique("svc"), unique("pub")
        assert cli(live_server, "namespaces", "create", ns)[0] == 0
        args = ("principals", "create", svc, "--role", "developer", "--kind", "service")
        assert cli(live_server, *args, "--namespace", ns)[0] == 0
        code, body, err = cli(
            live_server,
            "publishers",
            "add",
            name,
            "--issuer",
            "https://token.actions.githubusercontent.com",
            "--audience",
            "adapter-registry",
            "--repository",
            "acme/train",
            "--owner-id",
            "4242",
            "--workflow",
            "acme/train/.github/workflows/train.yml",
            "--principal",
            svc,
            "--namespace",
            ns,
            "--ref",
            "refs/heads/main",
        )
        assert code == 0, (body, err)
        assert (body["name"], body["principal"], body["namespaces"]) == (name, svc, [ns])
        assert (body["repository_owner_id"], body["require_protected_ref"]) == ("4242", True)
        assert body["workflow_ref"] == "acme/train/.github/workflows/train.yml"
        code, rows, _ = cli(live_server, "publishers", "list", "--limit", "1", "--all")
        assert code == 0
        assert name in [p["name"] for p in rows["items"]]

    def test_exchange_with_a_bad_token_exits_3(self, live_server: LiveServer) -> None:
        code, body, _ = cli(live_server, "publishers", "exchange", "--oidc-token", "not.a.jwt")
        assert code == 3
        assert body["error"] in ("oidc_token_invalid", "unauthenticated")


class TestPolicies:
    def test_show(self, live_server: LiveServer) -> None:
        code, body, _ = cli(live_server, "policies", "show")
        assert code == 0
        assert isinstance(body["version"], int)
        assert body["digest"].startswith("sha256:")
        assert "@id(" in body["policies_text"]
        assert "defaults" in body["gates_text"]
        done = raw_cli(live_server, "policies", "show")
        assert done.returncode == 0
        assert body["digest"] in done.stdout
        assert "gates.yaml" in done.stdout

    def test_check(self, tmp_path: Path) -> None:
        code, body, _ = cli(None, "policies", "check", str(POLICIES))
        assert code == 0
        assert body["ok"] is True
        assert body["digest"].startswith("sha256:")
        assert "four-eyes-never-own" in body["policies"]

        broken = tmp_path / "broken"
        shutil.copytree(POLICIES, broken)
        with (broken / "registry.cedar").open("a") as fh:
            fh.write('\npermit (principal, action == Action::"fly", resource);\n')
        code, body, _ = cli(None, "policies", "check", str(broken))
        assert (code, body["error"]) == (6, "invalid_policy")
        assert body["context"]["errors"]
        (broken / "gates.yaml").unlink()
        code, body, _ = cli(None, "policies", "check", str(broken))
        assert (code, body["error"]) == (6, "invalid_policy")

    def test_apply(self, live_server: LiveServer, tmp_path: Path) -> None:
        before = cli(live_server, "policies", "show")[1]
        checked = cli(None, "policies", "check", str(POLICIES))[1]
        code, applied, err = cli(live_server, "policies", "apply", str(POLICIES))
        assert code == 0, err
        assert applied["version"] == before["version"] + 1
        assert applied["digest"] == checked["digest"]
        assert applied["source"] == str(POLICIES.resolve())
        shown = cli(live_server, "policies", "show")[1]
        assert (shown["version"], shown["digest"]) == (applied["version"], applied["digest"])

        broken = tmp_path / "broken"
        shutil.copytree(POLICIES, broken)
        (broken / "gates.yaml").write_text("defaults:\n  approvals: many\n")
        code, body, _ = cli(live_server, "policies", "apply", str(broken))
        assert (code, body["error"]) == (6, "invalid_policy")
        assert cli(live_server, "policies", "show")[1]["version"] == applied["version"]


class TestDeployments:
    def test_create_status_list_history(self, world: World) -> None:
        code, body, _ = world.run("deployments", "status", world.deployment)
        assert code == 0
        assert (body["name"], body["adapter"], body["base"]) == (
            world.deployment,
            world.adapter,
            world.base,
        )
        assert (body["revision"], body["stable"], body["candidate"], body["share_bp"]) == (
            1,
            None,
            None,
            0,
        )
        listing = world.ok("deployments", "list", "--all")
        assert world.deployment in [d["name"] for d in listing["items"]]
        history = world.ok("deployments", "history", world.deployment)
        assert [r["revision"] for r in history["items"]] == [1]
        assert history["next_page_token"] is None

    def test_errors(self, world: World) -> None:
        args = ("deployments", "create", world.deployment, "--base", world.base)
        code, body, _ = world.run(*args, "--adapter", world.adapter)
        assert (code, body["error"]) == (5, "deployment_exists")
        code, body, _ = world.run(*args, "--adapter", f"{world.ns}/nobody")
        assert (code, body["error"]) == (4, "adapter_not_found")
        code, body, _ = world.run("deployments", "status", unique("none"))
        assert (code, body["error"]) == (4, "deployment_not_found")
        code, body, _ = world.run(*args, "--adapter", "no-slash")
        assert code == 2


class TestPromotions:
    def test_blocked_request_exits_5_with_the_promotion_on_stdout(self, world: World) -> None:
        ref = f"{world.adapter}@v1"
        code, body, _ = world.request(ref, "--reason", "first")  # no evaluation recorded
        assert code == 5
        assert (body["error"], body["state"], body["gates_passed"]) == (
            "gates_failed",
            "blocked",
            False,
        )
        failed = [g["name"] for g in body["gates"] if not g["passed"]]
        assert failed == ["evaluations_present"]
        assert body["context"]["failed_gates"] == failed
        promotion_id = body["id"]
        assert (body["ref"], body["deployment"]) == (ref, world.deployment)

        shown = world.ok("promotions", "show", promotion_id)
        assert (shown["id"], shown["state"]) == (promotion_id, "blocked")
        listing = world.ok(
            "promotions", "list", "--deployment", world.deployment, "--state", "blocked"
        )
        assert [p["id"] for p in listing["items"]] == [promotion_id]
        code, body, _ = world.run("promotions", "approve", promotion_id)
        assert (code, body["error"]) == (5, "promotion_state_conflict")
        assert world.ok("promotions", "cancel", promotion_id)["state"] == "cancelled"
        code, body, _ = world.run("promotions", "cancel", promotion_id)
        assert (code, body["error"]) == (5, "promotion_state_conflict")

    def test_blocked_request_in_table_mode(self, world: World) -> None:
        done = raw_cli(
            world.server,
            "promotions",
            "request",
            f"{world.adapter}@v1",
            "--deployment",
            world.deployment,
        )
        assert done.returncode == 5
        assert "FAIL  evaluations_present: too_few_evaluations" in done.stdout
        assert "PASS  validated" in done.stdout
        assert "gates_failed" in done.stderr

    def test_four_eyes_then_approval_makes_the_version_stable(self, world: World) -> None:
        ref = f"{world.adapter}@v1"
        world.score(ref, 0.8)
        code, promotion, err = world.request(ref)
        assert code == 0, err
        assert (promotion["state"], promotion["gates_passed"]) == ("pending", True)
        assert "error" not in promotion
        promotion_id = promotion["id"]

        code, body, _ = world.run("promotions", "approve", promotion_id)  # the requester
        assert (code, body["error"]) == (3, "separation_of_duties")
        assert body["context"]["rule"] == "requester"

        bob = world.approver()
        code, approved, err = world.run(
            "promotions", "approve", promotion_id, "--comment", "lgtm", token=bob
        )
        assert code == 0, err
        assert approved["state"] == "completed"
        assert approved["revision"] == 2
        assert len(approved["approvals"]) == 1

        status = world.ok("deployments", "status", world.deployment)
        assert status["revision"] == 2
        assert status["stable"]["version"] == 1
        assert status["stable"]["digest"].startswith("sha256:")
        assert status["candidate"] is None
        assert status["share_bp"] == 0
        history = world.ok("deployments", "history", world.deployment, "--limit", "1", "--all")
        assert [r["revision"] for r in history["items"]] == [2, 1]
        assert history["items"][0]["promotion_id"] == promotion_id
        assert history["items"][0]["stable_version"] == 1
        code, body, _ = world.run("promotions", "approve", promotion_id, token=bob)
        assert (code, body["error"]) == (5, "promotion_state_conflict")
        code, body, _ = world.request(ref)
        assert (code, body["error"]) == (5, "invalid_transition")

    def test_regression_blocks_and_reject(self, world: World) -> None:
        bob = world.approver()
        v1 = f"{world.adapter}@v1"
        world.score(v1, 0.8)
        first = world.request(v1)[1]
        world.ok("promotions", "approve", first["id"], token=bob)

        v2 = world.push("v2")
        world.score(v2, 0.7)
        code, body, _ = world.request(v2)
        assert (code, body["error"]) == (5, "gates_failed")
        assert [g["name"] for g in body["gates"] if not g["passed"]] == ["no_regression"]

        v3 = world.push("v3")
        world.score(v3, 0.85)
        code, pending, _ = world.request(v3, "--reason", "better")
        assert (code, pending["state"]) == (0, "pending")
        code, body, _ = world.run("promotions", "reject", pending["id"], token=bob)
        assert code == 2  # --reason is required
        code, rejected, _ = world.run(
            "promotions", "reject", pending["id"], "--reason", "not now", token=bob
        )
        assert (code, rejected["state"]) == (0, "rejected")
        assert world.ok("deployments", "status", world.deployment)["stable"]["version"] == 1
        states = {
            p["ref"]: p["state"]
            for p in world.ok("promotions", "list", "--deployment", world.deployment)["items"]
        }
        assert states == {v1: "completed", v2: "blocked", v3: "rejected"}

    def test_show_prints_the_plan_and_approve_binds_its_digest(self, world: World) -> None:
        """Issue 11, point 8: the approver sees the whole rollout plan and its digest, and the
        approval binds the digest (by default the one `show` prints: read just before)."""
        ref = f"{world.adapter}@v1"
        world.score(ref, 0.8)
        promotion = world.request(ref)[1]
        digest = promotion["plan_digest"]
        assert digest.startswith("sha256:")
        shown = raw_cli(world.server, "promotions", "show", promotion["id"])
        assert shown.returncode == 0, shown.stderr
        assert f"rollout plan canary ({digest}):" in shown.stdout
        assert "  steps:     10 % for >= " in shown.stdout
        assert "error_rate vs stable: <= stable x 1.5" in shown.stdout
        assert "error_rate absolute: <= " in shown.stdout
        bob = world.approver()
        code, body, _ = world.run(
            "promotions",
            "approve",
            promotion["id"],
            "--plan-digest",
            "sha256:" + "0" * 64,
            token=bob,
        )
        assert (code, body["error"]) == (5, "plan_digest_mismatch")
        code, approved, err = world.run("promotions", "approve", promotion["id"], token=bob)
        assert code == 0, err
        assert approved["state"] == "completed"
        assert f"approving rollout plan canary ({digest})" in err
        events = world.ok("audit", "log", "--action", "promotion.approve", "--limit", "50")
        mine = [e for e in events["items"] if e["resource"] == f"promotion:{promotion['id']}"]
        assert [e["after"]["plan_digest"] for e in mine] == [digest]

    def test_a_plan_below_the_floor_exits_6(self, world: World) -> None:
        plan = world.tmp / "plan.yaml"
        plan.write_text("steps: [{share: 100, min_dwell_s: 0}]\n")  # no canary, no analysis
        code, body, _ = world.request(
            f"{world.adapter}@v1", "--plan", "canary", "--plan-file", str(plan)
        )
        assert (code, body["error"]) == (6, "plan_below_floor")
        checks = {f["check"] for f in body["context"]["failures"]}
        assert {"first_share", "error_rate_cap"} <= checks
        plan.write_text("- not a plan\n")
        assert world.request(f"{world.adapter}@v1", "--plan-file", str(plan))[0] == 2


class TestAudit:
    def test_verify_log_and_checkpoint(self, world: World) -> None:
        promotion_id = world.request(f"{world.adapter}@v1")[1]["id"]  # blocked, audited
        me = world.ok("tokens", "list")["items"][0]["principal"]

        code, verified, err = world.run("audit", "verify")
        assert code == 0, err
        assert verified["ok"] is True
        assert verified["events"] > 0

        events = world.ok("audit", "log", "--action", "promotion.", "--limit", "5", "--all")
        actions = [e["action"] for e in events["items"]]
        assert actions
        assert all(a.startswith("promotion.") for a in actions)
        assert f"promotion:{promotion_id}" in [e["resource"] for e in events["items"]]
        seqs = [e["seq"] for e in events["items"]]
        assert seqs == sorted(seqs)

        mine = world.ok("audit", "log", "--resource", f"promotion:{promotion_id}")
        assert [e["action"] for e in mine["items"]] == ["promotion.request"]
        assert mine["items"][0]["actor"] == me
        by_me = world.ok("audit", "log", "--actor", me, "--action", "deployment.create")
        assert f"deployment:{world.deployment}" in [e["resource"] for e in by_me["items"]]
        later = world.ok("audit", "log", "--since", "2999-01-01T00:00:00Z")
        assert later["items"] == []
        code, _body, _ = world.run("audit", "log", "--since", "2026-01-01T00:00:00")
        assert code == 6  # a time without a zone

    def test_checkpoint(self, world: World) -> None:
        events = world.ok("audit", "verify")["events"]
        code, checkpoint, err = world.run("audit", "checkpoint")
        assert code == 0, (checkpoint, err)
        assert checkpoint["seq"] >= events
        assert checkpoint["key_id"]
        assert checkpoint["hash"]
        assert world.ok("audit", "verify")["checkpoints"] >= 1


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    """A server over a database of its own (the test tampers with its audit log)."""
    url = new_database_url(tmp_path, "registry_cli_audit")
    try:
        migrate.upgrade(url)
        env = server_env(url, tmp_path / "artifacts")
        proc, server_url = start_server(env, tmp_path / "server.log")
        try:
            yield LiveServer(url=server_url, token=bootstrap(url, "auditor"), env=env), url
        finally:
            stop_server(proc)
    finally:
        drop_database(url)


def test_broken_audit_chain_exits_8(own_server: tuple[LiveServer, str]) -> None:
    from registry.db.engine import make_engine
    from registry.settings import DatabaseSettings
    from tests.audit.conftest import tamper

    server, url = own_server
    for _ in range(3):
        assert cli(server, "namespaces", "create", unique("ns"))[0] == 0
    code, body, _ = cli(server, "audit", "verify")
    assert (code, body["ok"]) == (0, True)

    engine = make_engine(DatabaseSettings(url=url))
    try:
        tamper(engine, ("UPDATE audit_events SET actor = 'mallory' WHERE seq = 2", {}))
    finally:
        engine.dispose()
    code, body, _ = cli(server, "audit", "verify")
    assert code == 8
    assert body["error"] == "audit_chain_broken"
    assert body["context"]["first_bad_seq"] == 2
    assert body["context"]["reason"]


def test_unanchored_log_warns_and_fails_with_require_checkpoint(
    own_server: tuple[LiveServer, str], tmp_path: Path
) -> None:
    """Rewrite the database consistently and delete the checkpoints: plain `verify` can only
    warn; `--require-checkpoint` exits 8 (issue 11, point 12)."""
    from registry.db.engine import make_engine
    from registry.settings import DatabaseSettings
    from tests.audit.conftest import tamper
    from tests.audit.test_verify import rechain

    server, url = own_server
    for _ in range(3):
        assert cli(server, "namespaces", "create", unique("ns"))[0] == 0
    code, body, _ = cli(server, "audit", "verify")
    assert (code, body["ok"], body["warnings"]) == (0, True, ["no_checkpoints"])
    code, body, _ = cli(server, "audit", "verify", "--require-checkpoint")
    assert (code, body["error"]) == (8, "audit_checkpoint_missing")

    assert cli(server, "audit", "checkpoint")[0] == 0
    assert cli(server, "audit", "verify", "--require-checkpoint")[0] == 0
    engine = make_engine(DatabaseSettings(url=url))
    try:
        tamper(engine, *rechain(engine, edit_seq=2, after={"rewritten": True}))
    finally:
        engine.dispose()
    code, body, _ = cli(server, "audit", "verify")
    assert (code, body["error"]) == (8, "audit_chain_broken")
    assert body["context"]["reason"] == "checkpoint_mismatch"
    assert body["context"]["first_bad_seq"] == 2  # the edited event, named
    assert body["context"]["bad_range"] == [2, 2]

    checkpoints = Path(server.env["REGISTRY_STORAGE__ROOT"]) / "meta" / "audit" / "checkpoints"
    for stored in checkpoints.iterdir():
        stored.unlink()
    code, body, _ = cli(server, "audit", "verify")
    assert (code, body["warnings"]) == (0, ["no_checkpoints"])  # undetectable, but said so
    code, body, _ = cli(server, "audit", "verify", "--require-checkpoint")
    assert (code, body["error"]) == (8, "audit_checkpoint_missing")
