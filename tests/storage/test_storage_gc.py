"""``storage gc`` end to end: the database decides what is referenced, the grace window what is
young. Runs against the real app's database and local store."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

from fastapi.testclient import TestClient

from registry.maintenance import storage_gc
from registry.settings import Settings
from registry.storage.factory import make_store
from tests.factories.catalog import open_upload, push, put_file

Variant = Callable[[int], Path]


def _age(path: Path, seconds: int) -> None:
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_gc_removes_only_old_unreferenced_blobs(
    client: TestClient,
    settings: Settings,
    namespace: str,
    gpt2_base: str,
    adapter_variant: Variant,
) -> None:
    r = push(client, namespace, "bot", adapter_variant(1), gpt2_base)
    assert r.status_code == 201
    store = make_store(settings.storage)
    orphan_old = store.put_small(b"orphan left by a rolled-back push")
    orphan_young = store.put_small(b"orphan of a push still in flight")
    blob_dir = Path(settings.storage.root) / "blobs" / "sha256"
    for f in r.json()["files"]:
        hex_ = f["digest"].removeprefix("sha256:")
        _age(blob_dir / hex_[:2] / hex_, 3 * 24 * 3600)
    _age(blob_dir / orphan_old[:2] / orphan_old, 3 * 24 * 3600)

    dry = storage_gc(settings, dry_run=True)
    assert orphan_old in dry["deleted_blobs"]
    assert store.blob_exists(orphan_old)

    report = storage_gc(settings)
    assert orphan_old in report["deleted_blobs"]
    assert not store.blob_exists(orphan_old)
    assert store.blob_exists(orphan_young)
    for f in r.json()["files"]:
        assert store.blob_exists(f["digest"].removeprefix("sha256:"))
    pulled = client.get(f"/api/v1/adapters/{namespace}/bot/versions/v1/files/adapter_config.json")
    assert pulled.status_code == 200

    again = storage_gc(settings)
    assert orphan_old not in again["deleted_blobs"]


def test_gc_drops_stale_staging(client: TestClient, settings: Settings) -> None:
    upload_id = open_upload(client)
    data = b"# readme\n"
    assert put_file(client, upload_id, "README.md", data).status_code == 201
    staged = [
        p for p in (Path(settings.storage.root) / "staging" / upload_id).rglob("*") if p.is_file()
    ]
    assert staged
    for p in staged:
        _age(p, 3 * 24 * 3600)
    report = storage_gc(settings)
    assert report["staging_deleted"] >= 1
    assert not [p for p in staged if p.exists()]
    assert hashlib.sha256(data).hexdigest() not in report["deleted_blobs"]
