"""Artifact store behaviour, run on both backends (local dir; S3 via moto over HTTP)."""

from __future__ import annotations

import hashlib
import random
import uuid
from collections.abc import Callable

import pytest

from registry.errors import BlobNotFound, IntegrityFailure, PayloadTooLarge
from registry.storage.base import ArtifactStore, StagedObject
from tests.storage.conftest import MIB, PART, StoreFactory


def payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def stage(store: ArtifactStore, data: bytes, *, chunk: int = MIB) -> StagedObject:
    with store.open_staging(uuid.uuid4()) as writer:
        for start in range(0, len(data), chunk):
            writer.write(data[start : start + chunk])
        return writer.finish()


def read_blob(store: ArtifactStore, hex_digest: str) -> bytes:
    return b"".join(store.iter_blob(hex_digest))


class TestRoundTrip:
    @pytest.mark.parametrize("size", [0, 1, 1000, PART - 1, PART])
    def test_round_trip_small_is_byte_identical(self, store: ArtifactStore, size: int) -> None:
        data = payload(size)
        staged = stage(store, data, chunk=333_333)

        assert staged.sha256_hex == hashlib.sha256(data).hexdigest()
        assert staged.size == size
        source = store.open_staged(staged.key)
        assert source.size == size
        assert source.read_at(0, size + 10) == data

        store.commit_staged(staged)
        assert store.blob_exists(staged.sha256_hex)
        assert store.stat_blob(staged.sha256_hex).size == size
        assert read_blob(store, staged.sha256_hex) == data
        assert list(store.list_staging()) == []

    def test_round_trip_multipart_is_byte_identical(self, store: ArtifactStore) -> None:
        data = payload(12 * MIB + 12345, seed=1)
        # 3 MiB + 1 chunks straddle part boundaries, exercising the buffer split.
        staged = stage(store, data, chunk=3 * MIB + 1)

        assert staged.sha256_hex == hashlib.sha256(data).hexdigest()
        store.commit_staged(staged)
        assert read_blob(store, staged.sha256_hex) == data
        blob = store.open_blob(staged.sha256_hex)
        assert blob.size == len(data)
        assert blob.read_at(PART - 2, 4) == data[PART - 2 : PART + 2]
        assert blob.read_at(len(data) - 3, 100) == data[-3:]
        assert blob.read_at(len(data), 10) == b""

    def test_put_small_returns_sha256_and_leaves_no_staging(self, store: ArtifactStore) -> None:
        data = b'{"schemaVersion": 1}'
        hex_digest = store.put_small(data)
        assert hex_digest == hashlib.sha256(data).hexdigest()
        assert read_blob(store, hex_digest) == data
        assert list(store.list_staging()) == []

    def test_writer_write_after_finish_raises(self, store: ArtifactStore) -> None:
        with store.open_staging(uuid.uuid4()) as writer:
            writer.write(b"x")
            writer.finish()
            with pytest.raises(RuntimeError):
                writer.write(b"y")


class TestDedupe:
    def test_commit_same_bytes_twice_keeps_one_blob(self, store: ArtifactStore) -> None:
        data = payload(4096, seed=2)
        first, second = stage(store, data), stage(store, data)
        assert first.key != second.key
        store.commit_staged(first)
        store.commit_staged(second)

        assert [b.hex for b in store.list_blobs()] == [first.sha256_hex]
        assert list(store.list_staging()) == []
        assert read_blob(store, first.sha256_hex) == data

    def test_commit_same_multipart_bytes_twice_keeps_one_blob(self, store: ArtifactStore) -> None:
        data = payload(PART + MIB, seed=3)
        for _ in range(2):
            store.commit_staged(stage(store, data))
        assert len(list(store.list_blobs())) == 1
        store.verify_blob(hashlib.sha256(data).hexdigest())

    def test_commit_damaged_existing_blob_is_replaced(
        self, store: ArtifactStore, overwrite_blob: Callable[[str, bytes], None]
    ) -> None:
        data = payload(2048, seed=4)
        staged = stage(store, data)
        store.commit_staged(staged)
        overwrite_blob(staged.sha256_hex, data[:100])  # truncated
        store.commit_staged(stage(store, data))
        store.verify_blob(staged.sha256_hex)

    @pytest.mark.parametrize("size", [2048, PART + MIB])
    def test_commit_over_same_size_damaged_blob_replaces_it(
        self, store: ArtifactStore, overwrite_blob: Callable[[str, bytes], None], size: int
    ) -> None:
        """An object of the right size at the digest's key is not the blob: its bytes decide.
        (It used to be kept, and served to every later push of the genuine content.)"""
        data = payload(size, seed=5)
        hex_digest = hashlib.sha256(data).hexdigest()
        overwrite_blob(hex_digest, payload(size, seed=6))  # same size, other bytes
        with pytest.raises(IntegrityFailure):
            store.verify_blob(hex_digest)

        store.commit_staged(stage(store, data))

        store.verify_blob(hex_digest)
        assert read_blob(store, hex_digest) == data
        assert list(store.list_staging()) == []


class TestAbortAndDiscard:
    @pytest.mark.parametrize("size", [10, PART + 1])
    def test_abort_leaves_nothing(self, store: ArtifactStore, size: int) -> None:
        writer = store.open_staging(uuid.uuid4())
        writer.write(payload(size))
        writer.abort()
        writer.abort()  # idempotent

        assert list(store.list_staging()) == []
        assert list(store.list_incomplete_uploads()) == []
        assert list(store.list_blobs()) == []

    def test_context_exit_on_error_aborts(self, store: ArtifactStore) -> None:
        def upload_then_fail() -> None:
            with store.open_staging(uuid.uuid4()) as writer:
                writer.write(payload(PART + 10))
                raise KeyError("client disconnected")

        with pytest.raises(KeyError):
            upload_then_fail()
        assert list(store.list_staging()) == []
        assert list(store.list_incomplete_uploads()) == []

    def test_discard_staging_removes_only_that_session(self, store: ArtifactStore) -> None:
        doomed, kept = uuid.uuid4(), uuid.uuid4()
        for _ in range(2):
            with store.open_staging(doomed) as writer:
                writer.write(b"doomed")
                writer.finish()
        with store.open_staging(kept) as writer:
            writer.write(b"kept")
            writer.finish()

        store.discard_staging(doomed)
        store.discard_staging(doomed)  # idempotent
        store.discard_staging(uuid.uuid4())  # never existed

        assert {e.session_id for e in store.list_staging()} == {kept}

    def test_discard_staging_aborts_in_flight_multipart(self, store: ArtifactStore) -> None:
        session = uuid.uuid4()
        writer = store.open_staging(session)
        writer.write(payload(PART + 1))  # S3: one part uploaded, upload still open
        store.discard_staging(session)
        assert list(store.list_incomplete_uploads()) == []
        assert list(store.list_staging()) == []


class TestLimits:
    def test_write_past_max_upload_bytes_raises_payload_too_large(
        self, make_test_store: StoreFactory
    ) -> None:
        store = make_test_store(max_upload_bytes=10)
        writer = store.open_staging(uuid.uuid4())
        writer.write(b"0123456789")
        with pytest.raises(PayloadTooLarge) as exc_info:
            writer.write(b"x")
        assert exc_info.value.code == "payload_too_large"
        with pytest.raises(RuntimeError):
            writer.finish()
        assert list(store.list_staging()) == []

    def test_payload_too_large_mid_multipart_aborts_upload(
        self, make_test_store: StoreFactory
    ) -> None:
        store = make_test_store(max_upload_bytes=PART + MIB)
        writer = store.open_staging(uuid.uuid4())
        writer.write(payload(PART))
        with pytest.raises(PayloadTooLarge):
            writer.write(payload(2 * MIB))
        assert list(store.list_incomplete_uploads()) == []
        assert list(store.list_staging()) == []


class TestIntegrity:
    def test_verify_blob_intact_passes(self, store: ArtifactStore) -> None:
        store.verify_blob(store.put_small(b"intact"))

    def test_verify_blob_tampered_raises_integrity_failure(
        self, store: ArtifactStore, overwrite_blob: Callable[[str, bytes], None]
    ) -> None:
        hex_digest = store.put_small(b"original adapter bytes")
        overwrite_blob(hex_digest, b"evil adapter bytes!!!!")
        with pytest.raises(IntegrityFailure) as exc_info:
            store.verify_blob(hex_digest)
        assert exc_info.value.code == "integrity_failure"

    def test_commit_staged_wrong_size_raises_integrity_failure(self, store: ArtifactStore) -> None:
        staged = stage(store, b"twelve bytes")
        forged = StagedObject(key=staged.key, size=staged.size + 1, sha256_hex=staged.sha256_hex)
        with pytest.raises(IntegrityFailure):
            store.commit_staged(forged)
        assert not store.blob_exists(staged.sha256_hex)

    @pytest.mark.parametrize("size", [4096, PART + MIB])
    def test_commit_staged_rehashes_and_refuses_changed_bytes(
        self, store: ArtifactStore, overwrite_staged: Callable[[str, bytes], None], size: int
    ) -> None:
        """Staged bytes that no longer hash to the recorded digest (same size) are never
        published under it: commit re-hashes instead of trusting the in-flight digest."""
        staged = stage(store, payload(size, seed=7))
        overwrite_staged(staged.key, payload(size, seed=8))

        with pytest.raises(IntegrityFailure) as exc_info:
            store.commit_staged(staged)

        assert exc_info.value.code == "integrity_failure"
        assert not store.blob_exists(staged.sha256_hex)
        assert list(store.list_blobs()) == []

    def test_open_staged_non_staging_key_raises(self, store: ArtifactStore) -> None:
        hex_digest = store.put_small(b"x")
        for key in (f"blobs/sha256/{hex_digest[:2]}/{hex_digest}", "../../etc/passwd", ""):
            with pytest.raises(ValueError, match="staging key"):
                store.open_staged(key)


class TestMissing:
    HEX = "0" * 64

    def test_stat_blob_missing_raises_blob_not_found(self, store: ArtifactStore) -> None:
        with pytest.raises(BlobNotFound) as exc_info:
            store.stat_blob(self.HEX)
        assert exc_info.value.code == "blob_not_found"

    @pytest.mark.parametrize("op", ["open_blob", "iter_blob", "verify_blob", "touch_blob"])
    def test_blob_operation_missing_raises_blob_not_found(
        self, store: ArtifactStore, op: str
    ) -> None:
        with pytest.raises(BlobNotFound):
            getattr(store, op)(self.HEX)

    def test_blob_exists_missing_is_false(self, store: ArtifactStore) -> None:
        assert store.blob_exists(self.HEX) is False

    def test_delete_blob_missing_is_success(self, store: ArtifactStore) -> None:
        hex_digest = store.put_small(b"gone")
        store.delete_blob(hex_digest)
        store.delete_blob(hex_digest)
        assert not store.blob_exists(hex_digest)

    def test_open_staged_missing_raises_blob_not_found(self, store: ArtifactStore) -> None:
        staged = stage(store, b"x")
        store.discard_staging(uuid.UUID(staged.key.split("/")[-2]))
        with pytest.raises(BlobNotFound):
            store.open_staged(staged.key)


class TestStreaming:
    def test_iter_blob_yields_chunks_of_at_most_chunk_size(self, store: ArtifactStore) -> None:
        data = payload(10_007, seed=5)
        hex_digest = store.put_small(data)
        chunks = list(store.iter_blob(hex_digest, chunk_size=1000))
        assert b"".join(chunks) == data
        assert all(0 < len(c) <= 1000 for c in chunks)
        assert len(chunks) >= 11

    @pytest.mark.parametrize(
        ("start", "stop"), [(0, 1), (0, 10_007), (1000, 2501), (10_006, 10_007)]
    )
    def test_iter_blob_range_yields_exactly_that_range(
        self, store: ArtifactStore, start: int, stop: int
    ) -> None:
        data = payload(10_007, seed=6)
        hex_digest = store.put_small(data)
        chunks = list(store.iter_blob_range(hex_digest, start, stop, chunk_size=1000))
        assert b"".join(chunks) == data[start:stop]
        assert all(0 < len(c) <= 1000 for c in chunks)

    def test_iter_blob_range_of_a_missing_blob_raises_blob_not_found(
        self, store: ArtifactStore
    ) -> None:
        with pytest.raises(BlobNotFound):
            store.iter_blob_range("0" * 64, 0, 1)


class TestHealth:
    def test_check_healthy_store_passes(self, store: ArtifactStore) -> None:
        store.check()
