"""``adapter-registry bootstrap --recover``: a lost admin token is replaced from the server side,
in the open.

Decided (docs/operations.md, "Lost admin token"): recovery mints a new token for the named admin
principal even though an admin exists; the principal's other tokens keep working (lost is not
leaked) unless ``--revoke-existing``; the audit event ``principal.recover`` (actor
``system:recover``) is part of the chain, so `audit verify` passes over and after it, checkpoint
included. The real CLI runs in a subprocess on a fresh database of the selected dialect; the
tokens are tried on the real app."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect

from registry.app import create_app
from registry.db import migrate
from registry.db.engine import make_engine
from registry.settings import DatabaseSettings
from tests.fixtures.app import make_settings
from tests.fixtures.db import drop_database, new_database_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path, "registry_recover")
    try:
        yield url
    finally:
        drop_database(url)


def cli(url: str, tmp_path: Path, *args: str) -> tuple[int, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(
        REGISTRY_DATABASE__URL=url,
        REGISTRY_STORAGE__ROOT=str(tmp_path / "artifacts"),
        REGISTRY_AUDIT__SIGNING_KEY_PATH=str(tmp_path / "artifacts-audit.key"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "registry", "--output", "json", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else done.stderr


@pytest.fixture
def app(fresh_url: str, tmp_path: Path) -> Iterator[TestClient]:
    migrate.upgrade(fresh_url)
    settings = make_settings(fresh_url, tmp_path / "artifacts")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def works(client: TestClient, token: str) -> bool:
    r = client.get("/api/v1/principals", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code in (200, 401), r.text
    return bool(r.status_code == 200)


def recoveries(client: TestClient, token: str) -> list[dict[str, Any]]:
    r = client.get(
        "/api/v1/audit/events",
        params={"action": "principal.recover"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def verify(client: TestClient, token: str, *, require_checkpoint: bool = True) -> dict[str, Any]:
    r = client.get(
        "/api/v1/audit/verify",
        params={"require_checkpoint": "true"} if require_checkpoint else None,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 200, r.text
    return dict(r.json())


def checkpoint(client: TestClient, token: str) -> None:
    r = client.post("/api/v1/audit/checkpoints", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 201, r.text


def test_recover_when_an_admin_exists(app: TestClient, fresh_url: str, tmp_path: Path) -> None:
    rc, first = cli(fresh_url, tmp_path, "bootstrap")
    assert rc == 0, first
    old = first["token"]
    checkpoint(app, old)
    assert cli(fresh_url, tmp_path, "bootstrap")[0] == 5  # plain bootstrap still refuses

    rc, done = cli(fresh_url, tmp_path, "bootstrap", "--recover")
    assert rc == 0, done
    assert done["principal"] == "admin"
    assert done["created"] is False
    assert done["revoked_tokens"] == 0
    assert done["enabled"] is False
    new = done["token"]
    assert new != old
    assert works(app, new)
    assert works(app, old)  # lost is not leaked: the old token keeps working

    [event] = recoveries(app, new)
    assert event["actor"] == "system:recover"
    assert event["resource"] == "principal:admin"
    assert event["after"]["recovery"] is True
    assert event["after"]["operator"]  # who ran it (OS user@host)
    assert event["after"]["revoked_tokens"] == 0

    # The recovery is in the chain: verified, checkpoint before it and a new one after it.
    result = verify(app, new)
    assert result["ok"] is True
    assert result["events"] >= event["seq"]
    checkpoint(app, new)
    after = verify(app, new)
    assert after["ok"] is True
    assert after["checkpoints"] == 2
    assert after["last_checkpoint_seq"] >= event["seq"]


def test_recover_revoking_the_other_tokens(app: TestClient, fresh_url: str, tmp_path: Path) -> None:
    old = cli(fresh_url, tmp_path, "bootstrap")[1]["token"]
    rc, done = cli(fresh_url, tmp_path, "bootstrap", "--recover", "--revoke-existing")
    assert rc == 0, done
    assert done["revoked_tokens"] == 1
    assert works(app, done["token"])
    assert not works(app, old)
    [event] = recoveries(app, done["token"])
    assert event["after"]["revoked_tokens"] == 1
    assert verify(app, done["token"], require_checkpoint=False)["ok"] is True


def test_recover_creates_a_named_admin_when_none_has_the_name(
    app: TestClient, fresh_url: str, tmp_path: Path
) -> None:
    cli(fresh_url, tmp_path, "bootstrap")
    rc, done = cli(fresh_url, tmp_path, "bootstrap", "--recover", "--name", "ops-admin")
    assert rc == 0, done
    assert done["created"] is True
    token = done["token"]
    r = app.get("/api/v1/principals", headers={"Authorization": f"Bearer {token}"})
    names = {p["name"]: p["role"] for p in r.json()["items"]}
    assert names["ops-admin"] == "admin"


def test_recover_enables_a_disabled_admin(app: TestClient, fresh_url: str, tmp_path: Path) -> None:
    first = cli(fresh_url, tmp_path, "bootstrap")[1]["token"]
    rc, other = cli(fresh_url, tmp_path, "bootstrap", "--recover", "--name", "second")
    assert rc == 0, other
    auth = {"Authorization": f"Bearer {other['token']}"}
    r = app.post("/api/v1/principals/admin/disable", headers=auth)
    assert r.status_code == 200, r.text
    assert not works(app, first)

    rc, done = cli(fresh_url, tmp_path, "bootstrap", "--recover")
    assert rc == 0, done
    assert done["enabled"] is True
    assert works(app, done["token"])
    events = recoveries(app, done["token"])
    assert [e["after"]["enabled"] for e in events] == [False, True]
    assert verify(app, done["token"], require_checkpoint=False)["ok"] is True


def test_recover_refuses_a_principal_that_is_no_admin(
    app: TestClient, fresh_url: str, tmp_path: Path
) -> None:
    admin = cli(fresh_url, tmp_path, "bootstrap")[1]["token"]
    r = app.post(
        "/api/v1/principals",
        json={"name": "dev", "role": "developer"},
        headers={"Authorization": f"Bearer {admin}"},
    )
    assert r.status_code == 201, r.text
    rc, body = cli(fresh_url, tmp_path, "bootstrap", "--recover", "--name", "dev")
    assert rc == 6, body
    assert body["error"] == "bad_request"
    assert body["context"] == {"principal": "dev", "role": "developer"}
    assert recoveries(app, admin) == []  # nothing was written


def test_revoke_existing_needs_recover(fresh_url: str, tmp_path: Path) -> None:
    rc, body = cli(fresh_url, tmp_path, "bootstrap", "--revoke-existing")
    assert rc == 2
    assert body["error"] == "usage"


def test_recover_on_a_database_that_was_never_migrated(fresh_url: str, tmp_path: Path) -> None:
    rc, body = cli(fresh_url, tmp_path, "bootstrap", "--recover")
    assert rc == 7, body
    assert body["error"] == "schema_out_of_date"
    assert "db upgrade" in body["detail"]
    # Nothing was created on the way: the database is still empty (no tables at all).
    engine = make_engine(DatabaseSettings(url=fresh_url))
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
