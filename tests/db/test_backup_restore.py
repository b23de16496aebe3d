"""Backups as docs/operations.md prescribes them restore into a working registry, on both
dialects: a registry with versions, a promotion, evaluations and a signed checkpoint is backed
up *while it runs* (audit checkpoints first, then the database, then the blobs), restored into a
fresh database and a fresh artifact directory, and then `audit verify --require-checkpoint`
passes, a pull gives the same bytes, and the restored registry takes writes.

The tools are the real ones the guide names: ``pg_dump --format=custom`` / ``pg_restore`` into a
database created for the test (and dropped); SQLite's online backup API (what the ``sqlite3``
shell's ``.backup`` runs); a copy of the artifact directory. A version pushed and a checkpoint
made between the steps show why the order matters: the restored database is consistent with
the checkpoints it has (none is newer than its audit head) and owns every blob it refers to.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from registry.app import create_app
from registry.db import migrate
from registry.settings import Settings
from tests.factories.catalog import create_namespace, register_base, unique
from tests.factories.governance import (
    Who,
    create_deployment,
    decide,
    make_principal,
    push_version,
    record_eval,
    request_promotion,
)
from tests.fixtures.app import bootstrap, make_settings
from tests.fixtures.db import drop_database, new_database_url
from tests.fixtures.peft import PEFT_FIXTURES

FILE = "adapter_model.safetensors"


def libpq(url: str) -> str:
    """The SQLAlchemy URL as pg_dump / pg_restore take it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{name} is required in CI (PostgreSQL client tools)", pytrace=False)
        pytest.skip(f"{name} not installed")
    return found


def backup_database(url: str, target: Path) -> Path:
    if url.startswith("sqlite"):
        dump = target / "registry.db"
        # Online and consistent while the server writes (the sqlite3 shell's `.backup`).
        with (
            sqlite3.connect(str(make_url(url).database)) as src,
            sqlite3.connect(str(dump)) as dst,
        ):
            src.backup(dst)
        return dump
    dump = target / "registry.dump"
    subprocess.run(
        [tool("pg_dump"), "--format=custom", "--no-owner", f"--file={dump}", libpq(url)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return dump


def restore_database(dump: Path, url: str) -> None:
    """Into ``url``, a new empty database."""
    if url.startswith("sqlite"):
        with sqlite3.connect(str(dump)) as src, sqlite3.connect(str(make_url(url).database)) as dst:
            src.backup(dst)
        return
    subprocess.run(
        [
            tool("pg_restore"),
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            f"--dbname={libpq(url)}",
            str(dump),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )


def copy_tree(src: Path, dst: Path, *, only: tuple[str, ...]) -> None:
    for name in only:
        if (src / name).is_dir():
            shutil.copytree(src / name, dst / name, dirs_exist_ok=True)


@contextmanager
def registry_on(url: str, artifacts: Path) -> Iterator[tuple[TestClient, Settings]]:
    settings = make_settings(url, artifacts)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client, settings


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[tuple[str, str]]:
    source = new_database_url(tmp_path, "registry_backup_src")
    restored = new_database_url(tmp_path, "registry_backup_dst")
    try:
        yield source, restored
    finally:
        drop_database(source)
        drop_database(restored)


def fill(client: TestClient, tmp: Path) -> dict[str, Any]:
    """Versions, evaluations, a deployment with a completed promotion, a checkpoint."""
    ns = create_namespace(client)
    base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    adapter = unique("bot")
    dev = make_principal(client, "developer", [ns])
    approver = make_principal(client, "approver", [ns])
    operator = make_principal(client, "operator", [ns])
    refs = [push_version(client, dev, ns, adapter, base, n, tmp) for n in (1, 2, 3)]
    assert record_eval(client, dev, refs[0], 0.8).status_code == 201
    deployment = create_deployment(client, operator, base, f"{ns}/{adapter}")
    promotion = request_promotion(client, dev, refs[0], deployment)
    assert promotion.status_code == 201, promotion.text
    approved = decide(client, approver, promotion.json()["id"], "approve")
    assert approved.json()["state"] == "completed", approved.text
    made = client.post("/api/v1/audit/checkpoints")
    assert made.status_code == 201, made.text
    return {
        "ns": ns,
        "adapter": adapter,
        "base": base,
        "dev": dev,
        "refs": refs,
        "deployment": deployment,
        "checkpoint_seq": made.json()["seq"],
    }


def pull(client: TestClient, ref: str, who: Who) -> bytes:
    ns_name, version = ref.split("@")
    r = client.get(
        f"/api/v1/adapters/{ns_name}/versions/{version}/files/{FILE}", headers=who.headers
    )
    assert r.status_code == 200, r.text
    return bytes(r.content)


def test_backup_and_restore_into_a_fresh_database(
    databases: tuple[str, str], tmp_path: Path
) -> None:
    source_url, restored_url = databases
    migrate.upgrade(source_url)
    admin = bootstrap(source_url, "admin")
    source_artifacts = tmp_path / "source" / "artifacts"
    backup = tmp_path / "backup"
    (backup / "artifacts").mkdir(parents=True)

    with registry_on(source_url, source_artifacts) as (client, settings):
        client.headers["Authorization"] = f"Bearer {admin}"
        state = fill(client, tmp_path)
        expected = pull(client, state["refs"][1], state["dev"])

        # 1. Audit checkpoints (and key records) first, 2. the database, 3. the blobs; and the
        # signing key, kept apart from the rest (it is a secret).
        copy_tree(source_artifacts, backup / "artifacts", only=("meta",))
        # The server goes on working while the backup is taken.
        late = push_version(
            client, state["dev"], state["ns"], state["adapter"], state["base"], 4, tmp_path
        )
        assert client.post("/api/v1/audit/checkpoints").status_code == 201
        dump = backup_database(source_url, backup)
        later = push_version(
            client, state["dev"], state["ns"], state["adapter"], state["base"], 5, tmp_path
        )
        copy_tree(source_artifacts, backup / "artifacts", only=("blobs",))
        shutil.copy2(settings.audit.signing_key_path, backup / "audit-signing.key")

    # Restore: a fresh database and a fresh artifact directory, then `db upgrade` (a no-op at
    # the same version; after restoring into newer code, it migrates).
    restored_artifacts = tmp_path / "restored" / "artifacts"
    restore_database(dump, restored_url)
    shutil.copytree(backup / "artifacts", restored_artifacts)
    migrate.upgrade(restored_url)
    # The signing key goes back before the server starts (it loads it, or makes a new one).
    key_path = make_settings(restored_url, restored_artifacts).audit.signing_key_path
    shutil.copy2(backup / "audit-signing.key", key_path)

    with registry_on(restored_url, restored_artifacts) as (client, _):
        client.headers["Authorization"] = f"Bearer {admin}"  # tokens are in the database
        verified = client.get("/api/v1/audit/verify", params={"require_checkpoint": "true"})
        assert verified.status_code == 200, verified.text
        result = verified.json()
        assert result["ok"] is True
        # The checkpoint made after the meta copy is not in the backup: nothing is newer than
        # the restored audit head.
        assert result["checkpoints"] == 1
        assert result["last_checkpoint_seq"] == state["checkpoint_seq"]

        # Same bytes; what was pushed before the dump is there, what came after is not.
        assert pull(client, state["refs"][1], state["dev"]) == expected
        for ref in (*state["refs"], late):
            assert pull(client, ref, state["dev"])
        ns_name, version = later.split("@")
        gone = client.get(f"/api/v1/adapters/{ns_name}/versions/{version}")
        assert gone.status_code == 404, gone.text
        status = client.get(f"/api/v1/deployments/{state['deployment']}").json()
        assert status["stable"]["ref"] == state["refs"][0]

        # The restored registry takes writes, and its audit log goes on verifying.
        again = push_version(
            client, state["dev"], state["ns"], state["adapter"], state["base"], 6, tmp_path
        )
        assert again.endswith("@v5")  # v5 was never in the backup: its number is free again
        assert client.post("/api/v1/audit/checkpoints").status_code == 201
        final = client.get("/api/v1/audit/verify", params={"require_checkpoint": "true"}).json()
        assert final["ok"] is True
        assert final["checkpoints"] == 2
