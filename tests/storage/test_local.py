"""Local-backend specifics: permissions, crash leftovers, readiness, no imports."""

from __future__ import annotations

import os
import stat
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.errors import BadRequest, StorageUnavailable
from registry.storage import keys
from registry.storage.gc import collect_garbage
from registry.storage.local import LocalArtifactStore
from tests.storage.conftest import local_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class TestLocalArtifactStore:
    def test_store_creates_private_layout(self, tmp_path: Path) -> None:
        store = LocalArtifactStore(local_settings(tmp_path / "a"))
        for sub in ("blobs", "staging"):
            assert (store.root / sub).is_dir()
            assert mode(store.root / sub) & 0o077 == 0

    def test_staged_and_blob_files_are_owner_only(self, local_store: LocalArtifactStore) -> None:
        with local_store.open_staging(uuid.uuid4()) as writer:
            writer.write(b"secret weights")
            staged = writer.finish()
        assert mode(local_store.root / staged.key) == 0o600
        assert mode((local_store.root / staged.key).parent) & 0o077 == 0
        local_store.commit_staged(staged)
        assert mode(local_store.root / keys.blob_key("", staged.sha256_hex)) == 0o600

    def test_commit_dedupe_refreshes_modification_time(
        self, local_store: LocalArtifactStore
    ) -> None:
        first = local_store.put_small(b"same")
        old = time.time() - 7 * 24 * 3600
        os.utime(local_store.root / keys.blob_key("", first), (old, old))

        assert local_store.put_small(b"same") == first

        assert local_store.stat_blob(first).last_modified.timestamp() > old + 3600

    def test_crashed_writer_temp_file_is_listed_and_collected(
        self, local_store: LocalArtifactStore
    ) -> None:
        writer = local_store.open_staging(uuid.uuid4())
        writer.write(b"half an upload")  # process "dies": neither finish() nor abort()
        [entry] = list(local_store.list_staging())
        assert entry.key.endswith(".tmp")

        future = datetime.now(UTC) + timedelta(days=2)
        report = collect_garbage(local_store, referenced=set, grace_s=3600, now=future)

        assert report.staging_deleted == 1
        assert list((local_store.root / "staging").iterdir()) == []

    def test_presign_blob_returns_none(self, local_store: LocalArtifactStore) -> None:
        assert local_store.presign_blob(local_store.put_small(b"x"), 60) is None

    def test_delete_staging_key_rejects_foreign_path(self, local_store: LocalArtifactStore) -> None:
        with pytest.raises(ValueError, match="staging key"):
            local_store.delete_staging_key("../../etc/passwd")

    def test_check_unusable_root_raises_storage_unavailable(
        self, local_store: LocalArtifactStore
    ) -> None:
        staging = local_store.root / "staging"
        staging.rmdir()
        staging.write_text("not a directory")  # works even as root, unlike chmod
        with pytest.raises(StorageUnavailable) as exc_info:
            local_store.check()
        assert exc_info.value.code == "storage_unavailable"

    def test_list_import_local_backend_raises_bad_request(
        self, local_store: LocalArtifactStore
    ) -> None:
        with pytest.raises(BadRequest) as exc_info:
            local_store.list_import("s3://models/team-a/")
        assert exc_info.value.code == "bad_request"
        with pytest.raises(BadRequest):
            local_store.open_import_stream("models", "team-a/x")
