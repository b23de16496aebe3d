"""Named metadata objects (audit checkpoints): put/get/list on both backends, strict names, and
a key space that gc never lists."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from registry.errors import BlobNotFound
from registry.storage.base import ArtifactStore, check_object_name
from registry.storage.gc import collect_garbage
from registry.storage.local import LocalArtifactStore
from registry.storage.s3 import S3ArtifactStore
from tests.storage.conftest import S3_PREFIX

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

BAD_NAMES = [
    "",
    "/abs",
    "../x",
    "a/../b",
    "a/..",
    "a..b",
    "A",
    "a//b",
    "a/",
    "a/.hidden",
    ".hidden",
    "-x",
    "a b",
    "a\\b",
    "ünï",
    "a\nb",
    "x" * 513,
]


class TestRoundTrip:
    def test_put_get_round_trip(self, store: ArtifactStore) -> None:
        store.put_object("audit/checkpoints/00000000000000000001.json", b'{"seq":1}')

        assert store.get_object("audit/checkpoints/00000000000000000001.json") == b'{"seq":1}'

    def test_put_replaces_existing_object(self, store: ArtifactStore) -> None:
        store.put_object("a/b.json", b"one")
        store.put_object("a/b.json", b"two")

        assert store.get_object("a/b.json") == b"two"
        assert store.list_objects("a/") == ["a/b.json"]

    def test_empty_object_round_trips(self, store: ArtifactStore) -> None:
        store.put_object("empty", b"")

        assert store.get_object("empty") == b""

    def test_get_missing_raises_blob_not_found(self, store: ArtifactStore) -> None:
        with pytest.raises(BlobNotFound):
            store.get_object("audit/checkpoints/missing.json")

    def test_get_directory_name_raises_blob_not_found(self, store: ArtifactStore) -> None:
        store.put_object("dir/file", b"x")

        with pytest.raises(BlobNotFound):
            store.get_object("dir")


class TestList:
    def test_list_objects_is_sorted_and_filtered_by_prefix(self, store: ArtifactStore) -> None:
        for name in ("audit/checkpoints/0002.json", "audit/checkpoints/0001.json", "other/x"):
            store.put_object(name, b"{}")
        store.put_object("audit/checkpoints/0010.json", b"{}")

        assert store.list_objects("audit/checkpoints/") == [
            "audit/checkpoints/0001.json",
            "audit/checkpoints/0002.json",
            "audit/checkpoints/0010.json",
        ]
        assert store.list_objects("audit/checkpoints/000") == [
            "audit/checkpoints/0001.json",
            "audit/checkpoints/0002.json",
        ]
        assert store.list_objects("") == [
            "audit/checkpoints/0001.json",
            "audit/checkpoints/0002.json",
            "audit/checkpoints/0010.json",
            "other/x",
        ]

    def test_list_objects_nothing_under_prefix_is_empty(self, store: ArtifactStore) -> None:
        assert store.list_objects("audit/checkpoints/") == []

    def test_list_objects_never_includes_blobs_or_staging(self, store: ArtifactStore) -> None:
        store.put_small(b"a blob")

        assert store.list_objects("") == []


class TestNames:
    @pytest.mark.parametrize("name", BAD_NAMES)
    def test_put_bad_name_raises(self, store: ArtifactStore, name: str) -> None:
        with pytest.raises(ValueError, match="invalid object name"):
            store.put_object(name, b"x")

    @pytest.mark.parametrize("name", ["../x", "/abs", "a/.hidden"])
    def test_get_bad_name_raises(self, store: ArtifactStore, name: str) -> None:
        with pytest.raises(ValueError, match="invalid object name"):
            store.get_object(name)

    @pytest.mark.parametrize("prefix", ["../", "/", "a//", "A/"])
    def test_list_bad_prefix_raises(self, store: ArtifactStore, prefix: str) -> None:
        with pytest.raises(ValueError, match="invalid object name"):
            store.list_objects(prefix)

    @pytest.mark.parametrize(
        "name", ["a", "0", "audit/checkpoints/00000000000000000001.json", "a-b_c.d/e"]
    )
    def test_good_names_pass(self, name: str) -> None:
        assert check_object_name(name) == name

    def test_non_string_name_raises(self) -> None:
        with pytest.raises(ValueError, match="strings"):
            check_object_name(b"a")  # type: ignore[arg-type]


class TestGcNeverSeesObjects:
    def test_gc_lists_and_deletes_no_metadata_object(self, store: ArtifactStore) -> None:
        store.put_object("audit/checkpoints/00000000000000000001.json", b"{}")
        orphan = store.put_small(b"orphan blob")

        report = collect_garbage(
            store,
            referenced=lambda batch: set(),
            grace_s=0,
            now=datetime.now(UTC) + timedelta(days=2),
        )

        assert report.deleted_blobs == [orphan]  # gc did run and delete
        assert report.blobs_scanned == 1
        assert store.get_object("audit/checkpoints/00000000000000000001.json") == b"{}"
        assert [s.hex for s in store.list_blobs()] == []
        assert list(store.list_staging()) == []


class TestLocal:
    def test_objects_are_files_under_meta_owner_only(self, local_store: LocalArtifactStore) -> None:
        local_store.put_object("audit/checkpoints/x.json", b"{}")

        path = local_store.root / "meta" / "audit" / "checkpoints" / "x.json"
        assert path.read_bytes() == b"{}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert [p.name for p in path.parent.iterdir()] == ["x.json"]  # no temp file left

    def test_temp_files_are_not_listed(self, local_store: LocalArtifactStore) -> None:
        local_store.put_object("audit/x.json", b"{}")
        (local_store.root / "meta" / "audit" / ".x.json.0123456789abcdef.tmp").write_bytes(b"")

        assert local_store.list_objects("audit/") == ["audit/x.json"]


@pytest.mark.s3
class TestS3:
    def test_objects_live_under_prefix_meta(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        s3_store.put_object("audit/checkpoints/x.json", b"{}")

        listed = s3_client.list_objects_v2(Bucket=s3_store.bucket)
        assert [o["Key"] for o in listed.get("Contents", [])] == [
            f"{S3_PREFIX}/meta/audit/checkpoints/x.json"
        ]

    def test_foreign_keys_under_meta_are_not_listed(
        self, s3_store: S3ArtifactStore, s3_client: S3Client
    ) -> None:
        s3_store.put_object("audit/ok.json", b"{}")
        s3_client.put_object(Bucket=s3_store.bucket, Key=f"{S3_PREFIX}/meta/audit/BAD", Body=b"")

        assert s3_store.list_objects("audit/") == ["audit/ok.json"]
