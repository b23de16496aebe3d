"""Two admins disabling each other at the same moment, through a real server process: whatever
the interleaving, one enabled admin is left (the enabled admins are locked before they are
counted; SQLite writers are serialised by BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from registry.db import migrate
from tests.fixtures.app import bootstrap
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.server import server_env, start_server, stop_server

ROUNDS = 6


@pytest.fixture
def two_admins(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """A server over a database of its own whose only admins are ``ann`` and ``bob``."""
    url = new_database_url(tmp_path, "registry_admin_race")
    try:
        migrate.upgrade(url)
        tokens = {name: bootstrap(url, name) for name in ("ann", "bob")}
        proc, server_url = start_server(server_env(url, tmp_path / "artifacts"), tmp_path / "log")
        try:
            yield server_url, tokens
        finally:
            stop_server(proc)
    finally:
        drop_database(url)


def test_two_admins_disabling_each_other_leave_one_enabled(
    two_admins: tuple[str, dict[str, str]],
) -> None:
    url, tokens = two_admins
    other = {"ann": "bob", "bob": "ann"}
    for _ in range(ROUNDS):
        barrier = threading.Barrier(2)
        answers: dict[str, httpx.Response] = {}

        def disable_the_other(
            me: str, barrier: threading.Barrier, answers: dict[str, httpx.Response]
        ) -> None:
            with httpx.Client(base_url=url, timeout=60) as http:
                headers = {"Authorization": f"Bearer {tokens[me]}"}
                barrier.wait()
                answers[me] = http.post(f"/api/v1/principals/{other[me]}/disable", headers=headers)

        threads = [
            threading.Thread(target=disable_the_other, args=(n, barrier, answers)) for n in other
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        codes = sorted(r.status_code for r in answers.values())
        assert codes in ([200, 401], [200, 409]), {n: r.text for n, r in answers.items()}
        errors = {r.json()["error"] for r in answers.values() if r.status_code != 200}
        assert errors <= {"unauthenticated", "last_admin"}
        [winner] = [n for n, r in answers.items() if r.status_code == 200]
        with httpx.Client(base_url=url, timeout=60) as http:
            headers = {"Authorization": f"Bearer {tokens[winner]}"}
            listed = http.get("/api/v1/principals", headers=headers).json()["items"]
            enabled = {p["name"] for p in listed if p["role"] == "admin" and not p["disabled"]}
            assert enabled == {winner}
            r = http.post(f"/api/v1/principals/{other[winner]}/enable", headers=headers)
            assert r.status_code == 200
