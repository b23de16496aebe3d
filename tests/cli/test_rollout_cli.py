"""Rollouts from the command line as scripts use them: a canary started by a promotion, manual
compare-and-set moves, resolve, serving reports, one-command rollback and "what served at T".

Each step is a subprocess against a real server (the shared live server, which runs no rollout
controller: ``tests/fixtures/server.py``): every revision below is a manual one. The README
walk-through (``tests/cli/test_readme.py``) runs a server with its controller."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from registry.canary.hashing import arm as arm_of
from tests.cli.test_governance_cli import World, new_world, raw_cli
from tests.factories.catalog import unique
from tests.fixtures.server import LiveServer


@pytest.fixture
def world(live_server: LiveServer, tmp_path: Path) -> World:
    return new_world(live_server, tmp_path, "roll", "canary")


def promote(world: World, ref: str, approver: str, *extra: str) -> dict[str, Any]:
    code, requested, err = world.request(ref, *extra)
    assert (code, requested["state"]) == (0, "pending"), (requested, err)
    approved: dict[str, Any] = world.ok("promotions", "approve", requested["id"], token=approver)
    return approved


def keys_by_arm(salt: str, share_bp: int) -> dict[str, str]:
    """One routing key per arm for this salt and share (found by recomputing the split)."""
    found: dict[str, str] = {}
    for i in range(100_000):
        key = f"tenant-{i}"
        found.setdefault(arm_of(salt, key, share_bp), key)
        if len(found) == 2:
            return found
    raise AssertionError("no key for one of the arms")


def first_share(world: World) -> int:
    """The candidate's share at revision 3: the canary plan's first step, in basis points."""
    revisions = world.ok("deployments", "history", world.deployment, "--all")["items"]
    share: int = next(r["share_bp"] for r in revisions if r["revision"] == 3)
    assert 0 < share < 5000  # a canary, below the 50 % the tests step to
    return share


def percent(share_bp: int) -> str:
    return f"{share_bp / 100:g} %"


def window(seconds: int = 60) -> tuple[str, str]:
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=1)
    return (end - timedelta(seconds=seconds)).isoformat(), end.isoformat()


@pytest.fixture
def canary(world: World) -> World:
    """v1 stable (revision 2), then v2 the candidate at the canary plan's first step (revision
    3; its share comes from the server's active rollout policy, see ``first_share``)."""
    bob = world.approver()
    v1 = f"{world.adapter}@v1"
    world.score(v1, 0.8)
    first = promote(world, v1, bob)
    assert (first["state"], first["revision"]) == ("completed", 2)

    v2 = world.push("v2")
    world.score(v2, 0.85)
    second = promote(world, v2, bob, "--plan", "canary")
    assert second["plan"] == "canary"
    assert (second["state"], second["revision"]) == ("rolling_out", 3)
    return world


def test_status_resolve_and_routing_table_during_a_canary(canary: World) -> None:
    world = canary
    share = first_share(world)
    status = world.ok("deployments", "status", world.deployment)
    assert status["revision"] == 3
    assert status["stable"]["version"] == 1
    assert status["stable"]["digest"].startswith("sha256:")
    assert status["candidate"]["version"] == 2
    assert status["candidate"]["digest"].startswith("sha256:")
    assert status["candidate"]["digest"] != status["stable"]["digest"]
    assert status["share_bp"] == share

    table = world.ok("deployments", "routing-table", world.deployment)
    assert (table["deployment"], table["revision"], table["share_bp"]) == (
        world.deployment,
        3,
        share,
    )
    assert table["stable"]["digest"] == status["stable"]["digest"]
    assert table["candidate"]["digest"] == status["candidate"]["digest"]
    assert table["hash_spec"] == "sha256-salt-key-v1"

    for arm, key in keys_by_arm(table["salt"], share).items():
        answers = [world.ok("deployments", "resolve", world.deployment, "--key", key)]
        answers.append(world.ok("deployments", "resolve", world.deployment, "--key", key))
        for answer in answers:
            assert answer["arm"] == arm
            assert answer["version"] == status[arm]["version"]
            assert answer["digest"] == status[arm]["digest"]
            assert answer["revision"] == 3
            assert answer["serving_name"] == table[arm]["serving_name"]
            assert answer["serving_name"].endswith(
                status[arm]["digest"].removeprefix("sha256:")[:12]
            )

    shown = raw_cli(world.server, "deployments", "status", world.deployment)
    assert shown.returncode == 0, shown.stderr
    assert f"{world.adapter}@v2 {status['candidate']['digest'][:19]}" in shown.stdout
    assert percent(share) in shown.stdout
    key = keys_by_arm(table["salt"], share)["candidate"]
    shown = raw_cli(world.server, "deployments", "resolve", world.deployment, "--key", key)
    assert shown.returncode == 0, shown.stderr
    assert f"candidate -> {table['candidate']['serving_name']}" in shown.stdout


def test_nothing_served_before_the_first_promotion(world: World) -> None:
    code, body, _ = world.run("deployments", "resolve", world.deployment, "--key", "k")
    assert (code, body["error"]) == (4, "nothing_served")
    code, body, _ = world.run("deployments", "resolve", unique("none"), "--key", "k")
    assert (code, body["error"]) == (4, "deployment_not_found")


def test_manual_rollout_is_compare_and_set(canary: World) -> None:
    world = canary
    args = ("deployments", "rollout", world.deployment, "--to-share", "50")
    code, body, _ = world.run(*args, "--expected-revision", "2")
    assert (code, body["error"]) == (5, "precondition_failed")
    assert body["context"]["revision"] == 3
    code, body, _ = world.run(*args)
    assert (code, body["error"]) == (5, "precondition_required")
    assert world.ok("deployments", "status", world.deployment)["revision"] == 3

    moved = world.ok(*args, "--expected-revision", "3")
    assert (moved["revision"], moved["share_bp"]) == (4, 5000)
    assert moved["candidate"]["version"] == 2
    finer = world.ok(
        "deployments", "rollout", world.deployment, "--to-share", "12.5", "--expected-revision", "4"
    )
    assert (finer["revision"], finer["share_bp"]) == (5, 1250)

    for bad in ("101", "-1", "12.345"):
        code, body, _ = world.run(
            "deployments",
            "rollout",
            world.deployment,
            "--to-share",
            bad,
            "--expected-revision",
            "5",
        )
        assert (code, body["error"]) == (2, "usage"), bad
    assert world.ok("deployments", "status", world.deployment)["revision"] == 5


def test_reports(canary: World) -> None:
    world = canary
    start, end = window()
    base = ("deployments", "report", world.deployment, "--revision", "3")
    times = ("--window-start", start, "--window-end", end)
    made = world.ok(
        *base,
        "--arm",
        "candidate",
        "--requests",
        "120",
        "--errors",
        "1",
        *times,
        "--p50-ms",
        "35",
        "--p95-ms",
        "80.5",
        "--score",
        "helpfulness=0.9",
    )
    assert made["id"]
    assert (made["deployment"], made["revision"], made["arm"], made["version"]) == (
        world.deployment,
        3,
        "candidate",
        2,
    )
    assert (made["requests"], made["errors"]) == (120, 1)
    stable = world.ok(*base, "--arm", "stable", "--requests", "900", "--errors", "0", *times)
    assert stable["version"] == 1

    code, body, _ = world.run(
        *base, "--arm", "candidate", "--requests", "10", "--errors", "11", *times
    )
    assert (code, body["error"]) == (6, "invalid_report")
    assert body["context"]["reason"]
    code, body, _ = world.run(
        "deployments",
        "report",
        world.deployment,
        "--revision",
        "2",  # no candidate in revision 2
        "--arm",
        "candidate",
        "--requests",
        "10",
        "--errors",
        "0",
        *times,
    )
    assert (code, body["error"]) == (6, "invalid_report")
    code, body, _ = world.run(
        *base, "--arm", "stable", "--requests", "1", "--errors", "0", *times, "--score", "x"
    )
    assert (code, body["error"]) == (2, "usage")
    decisions = world.ok("deployments", "decisions", world.deployment, "--all")
    assert isinstance(decisions["items"], list)
    assert decisions["next_page_token"] is None


def served(world: World, at: str, key: str | None = None) -> dict[str, Any]:
    """``audit served`` of the world's deployment at ``at`` (for ``key``)."""
    args = ["audit", "served", "--deployment", world.deployment, "--at", at]
    found: dict[str, Any] = world.ok(*args, *(["--key", key] if key is not None else []))
    return found


def test_one_command_rollback_and_what_served_when(canary: World) -> None:
    world = canary
    moved = world.ok(
        "deployments", "rollout", world.deployment, "--to-share", "50", "--expected-revision", "3"
    )
    assert moved["revision"] == 4
    code, back, err = world.run("deployments", "rollback", world.deployment)
    assert code == 0, (back, err)
    assert "revision 4" in err
    assert (back["revision"], back["candidate"], back["share_bp"]) == (5, None, 0)
    assert back["stable"]["version"] == 1
    code, body, _ = world.run(
        "deployments", "rollback", world.deployment, "--expected-revision", "4"
    )
    assert (code, body["error"]) == (5, "precondition_failed")
    revisions = check_history(world)
    check_served(world, revisions, first_share(world))


def check_history(world: World) -> dict[int, dict[str, Any]]:
    """The five revisions of the rollback test, whole and by time range; returns them."""
    history = world.ok("deployments", "history", world.deployment, "--all")
    revisions = {r["revision"]: r for r in history["items"]}
    assert sorted(revisions) == [1, 2, 3, 4, 5]
    assert revisions[3]["candidate_version"] == 2
    assert revisions[4]["share_bp"] == 5000
    assert revisions[5]["candidate_version"] is None

    since = world.ok(
        "deployments", "history", world.deployment, "--since", revisions[3]["effective_at"]
    )
    assert [r["revision"] for r in since["items"]] == [5, 4, 3]
    until = world.ok(
        "deployments", "history", world.deployment, "--until", revisions[3]["effective_at"]
    )
    assert [r["revision"] for r in until["items"]] == [2, 1]
    code, _, _ = world.run(
        "deployments", "history", world.deployment, "--since", "2026-01-01T00:00:00"
    )
    assert code == 6  # a time without a zone
    return revisions


def check_served(world: World, revisions: dict[int, dict[str, Any]], share: int) -> None:
    """What served when, for keys of either arm, before, during and after the canary."""
    keys = keys_by_arm(revisions[3]["salt"], share)
    during = served(world, revisions[3]["effective_at"], keys["candidate"])
    assert (during["revision"], during["share_bp"], during["arm"]) == (3, share, "candidate")
    assert (during["stable"]["version"], during["candidate"]["version"]) == (1, 2)
    assert during["stable"]["digest"].startswith("sha256:")
    assert during["base"]["manifest_digest"]
    assert len(during["promotion"]["approvers"]) == 1
    assert served(world, revisions[3]["effective_at"], keys["stable"])["arm"] == "stable"

    before = served(world, revisions[2]["effective_at"])
    assert (before["revision"], before["candidate"], before["share_bp"]) == (2, None, 0)
    assert before["stable"]["version"] == 1
    assert before["arm"] is None
    after = served(world, datetime.now(UTC).isoformat(), keys["candidate"])
    assert (after["revision"], after["candidate"], after["arm"]) == (5, None, "stable")

    code, body, _ = world.run(
        "audit", "served", "--deployment", world.deployment, "--at", "2000-01-01T00:00:00Z"
    )
    assert (code, body["error"]) == (4, "nothing_served")
    shown = raw_cli(
        world.server,
        "audit",
        "served",
        "--deployment",
        world.deployment,
        "--at",
        revisions[3]["effective_at"],
        "--key",
        keys["candidate"],
    )
    assert shown.returncode == 0, shown.stderr
    assert f"{keys['candidate']} -> candidate" in shown.stdout
    assert percent(share) in shown.stdout


def test_rollback_to_a_revision_and_unknown_plan(canary: World) -> None:
    world = canary
    back = world.ok("deployments", "rollback", world.deployment, "--to-revision", "2")
    assert (back["revision"], back["candidate"]) == (4, None)
    assert back["stable"]["version"] == 1
    v3 = world.push("v3")
    world.score(v3, 0.9)
    code, body, _ = world.request(v3, "--plan", unique("noplan"))
    assert code == 6
    assert body["context"]["plan"]
