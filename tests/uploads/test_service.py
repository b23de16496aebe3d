"""The upload service and the blob index on the real database (the selected dialect) and a real
local store, driven through the service layer (the HTTP routes are covered in tests/api)."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry.auth.models import Principal
from registry.auth.principal import AuthenticatedPrincipal
from registry.db.engine import make_engine
from registry.db.session import Sessions, unit_of_work
from registry.errors import UploadNotFound, UploadStateConflict
from registry.principals.repository import PrincipalRepository
from registry.settings import DatabaseSettings, StorageSettings
from registry.storage.base import ArtifactStore
from registry.storage.local import LocalArtifactStore
from registry.uploads import housekeeping
from registry.uploads import service as uploads
from registry.uploads.blob_index import BlobRepository
from registry.uploads.models import UploadState
from registry.uploads.repository import UploadRepository

README = b"# an adapter\n"
CONFIG = b'{"peft_type": "LORA"}'


def _hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def sessions(database_url: str) -> Iterator[Sessions]:
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        yield Sessions(engine)
    finally:
        engine.dispose()


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return LocalArtifactStore(StorageSettings(backend="local", root=tmp_path / "artifacts"))


def _principal(sessions: Sessions) -> AuthenticatedPrincipal:
    name = f"uploader-{uuid.uuid4().hex[:8]}"
    with unit_of_work(sessions.write) as session:
        row = PrincipalRepository(session).add(Principal(name=name, kind="human", role="admin"))
        return AuthenticatedPrincipal(id=row.id, name=name, kind=row.kind, role=row.role)


def _open(sessions: Sessions, who: AuthenticatedPrincipal, ttl_s: int = 600) -> uuid.UUID:
    with unit_of_work(sessions.write) as session:
        return uploads.create_upload(session, principal=who, ttl_s=ttl_s).id


def _put(
    sessions: Sessions,
    store: ArtifactStore,
    who: AuthenticatedPrincipal,
    upload_id: uuid.UUID,
    name: str,
    data: bytes,
) -> uploads.RecordedFile:
    """What one PUT does: check, stream to staging, record (each step its own unit of work)."""
    with unit_of_work(sessions.read) as session:
        target = uploads.prepare_file(
            session, principal=who, upload_id=upload_id, name=name, claimed_digest=None
        )
    writer = uploads.StagedFileWriter(store, target)
    writer.write(data)
    staged = writer.finish()
    with unit_of_work(sessions.write) as session:
        return uploads.record_file(session, principal=who, target=target, staged=staged)


def test_committing_publishes_the_bytes_indexes_the_blobs_and_closes_the_session(
    sessions: Sessions, store: ArtifactStore
) -> None:
    who = _principal(sessions)
    upload_id = _open(sessions, who)
    _put(sessions, store, who, upload_id, "README.md", README)
    _put(sessions, store, who, upload_id, "adapter_config.json", CONFIG)
    digests = [_hex(README), _hex(CONFIG)]
    with unit_of_work(sessions.read) as session:
        assert BlobRepository(session).existing(digests) == set()
        upload, files = uploads.get_upload(session, principal=who, upload_id=upload_id)
    staged = uploads.open_staged_files(store, files)

    with unit_of_work(sessions.write) as session:
        uploads.commit_upload(session, store=store, upload=upload, files=staged)

    assert all(store.blob_exists(d) for d in digests)
    with unit_of_work(sessions.read) as session:
        assert BlobRepository(session).existing(digests) == set(digests)
        closed = UploadRepository(session).get(upload_id)
        assert closed is not None
        assert closed.state == UploadState.committed
    with pytest.raises(UploadStateConflict), unit_of_work(sessions.write) as session:
        uploads.record_upload(session, upload=upload, files=staged)


def test_a_file_put_again_replaces_the_first_and_hands_back_its_staging_key(
    sessions: Sessions, store: ArtifactStore
) -> None:
    who = _principal(sessions)
    upload_id = _open(sessions, who)
    first = _put(sessions, store, who, upload_id, "README.md", README)
    second = _put(sessions, store, who, upload_id, "README.md", b"# the second README\n")

    assert first.superseded == []
    assert second.superseded == [first.row.staging_key]
    with unit_of_work(sessions.read) as session:
        files = UploadRepository(session).files(upload_id)
    assert [(f.name, f.digest, f.part) for f in files] == [
        ("README.md", _hex(b"# the second README\n"), 1)
    ]


def test_another_principals_session_is_not_found(sessions: Sessions, store: ArtifactStore) -> None:
    owner, other = _principal(sessions), _principal(sessions)
    upload_id = _open(sessions, owner)
    with pytest.raises(UploadNotFound), unit_of_work(sessions.read) as session:
        uploads.get_upload(session, principal=other, upload_id=upload_id)
    with pytest.raises(UploadNotFound):
        _put(sessions, store, other, upload_id, "README.md", README)
    with unit_of_work(sessions.read) as session:
        assert UploadRepository(session).files(upload_id) == []


def test_an_expired_session_takes_no_file(sessions: Sessions, store: ArtifactStore) -> None:
    who = _principal(sessions)
    upload_id = _open(sessions, who, ttl_s=-1)
    with pytest.raises(UploadStateConflict, match="expired"):
        _put(sessions, store, who, upload_id, "README.md", README)


def test_expired_lists_only_sessions_past_their_deadline_oldest_first(
    sessions: Sessions,
) -> None:
    who = _principal(sessions)
    older, newer, live = _open(sessions, who, -120), _open(sessions, who, -60), _open(sessions, who)
    with unit_of_work(sessions.read) as session:
        expired = UploadRepository(session).expired(datetime.now(UTC))
    ours = [u.id for u in expired if u.id in {older, newer, live}]
    assert ours == [older, newer]


def test_the_blob_index_records_a_digest_once_and_answers_which_are_known(
    sessions: Sessions,
) -> None:
    a, b, unknown = (uuid.uuid4().hex * 2 for _ in range(3))
    with unit_of_work(sessions.write) as session:
        BlobRepository(session).add_many([(a, 5)])
    with unit_of_work(sessions.write) as session:
        BlobRepository(session).add_many([(a, 5), (b, 7), (b, 7)])
    with unit_of_work(sessions.read) as session:
        repo = BlobRepository(session)
        assert repo.existing([a, b, unknown]) == {a, b}
        assert repo.existing([]) == set()


def test_a_small_blob_is_written_before_its_row(sessions: Sessions, store: ArtifactStore) -> None:
    data = f'{{"manifest": "{uuid.uuid4()}"}}'.encode()
    with unit_of_work(sessions.write) as session:
        hex_digest = uploads.store_small_blob(session, store=store, data=data)
        assert hex_digest == _hex(data)
        assert store.blob_exists(hex_digest)  # bytes first, inside the still-open transaction
    with unit_of_work(sessions.read) as session:
        assert BlobRepository(session).existing([hex_digest]) == {hex_digest}


def test_a_rolled_back_commit_leaves_published_bytes_but_no_rows(
    sessions: Sessions, store: ArtifactStore
) -> None:
    """Blob first, row second: a failed transaction leaves unreferenced bytes for gc, never a
    row whose bytes are missing."""
    who = _principal(sessions)
    upload_id = _open(sessions, who)
    data = f"# {uuid.uuid4()}\n".encode()
    _put(sessions, store, who, upload_id, "README.md", data)
    with unit_of_work(sessions.read) as session:
        upload, files = uploads.get_upload(session, principal=who, upload_id=upload_id)
    staged = uploads.open_staged_files(store, files)

    def commit_then_fail() -> None:
        with unit_of_work(sessions.write) as session:
            uploads.commit_upload(session, store=store, upload=upload, files=staged)
            raise RuntimeError("the registration failed after commit_upload")

    with pytest.raises(RuntimeError, match="failed after commit_upload"):
        commit_then_fail()

    assert store.blob_exists(_hex(data))
    with unit_of_work(sessions.read) as session:
        assert BlobRepository(session).existing([_hex(data)]) == set()
        reopened = UploadRepository(session).get(upload_id)
        assert reopened is not None
        assert reopened.state == UploadState.open


def test_housekeeping_expires_stale_sessions_with_their_staging(
    sessions: Sessions, store: ArtifactStore
) -> None:
    """What storage gc asks of uploads: sessions past their deadline lose their row and their
    staged bytes; a live one keeps both. The referenced-blob answer is the index's."""
    who = _principal(sessions)
    soon, later = _open(sessions, who, ttl_s=60), _open(sessions, who, ttl_s=3600)
    for upload_id in (soon, later):
        _put(sessions, store, who, upload_id, "README.md", README)
    assert {soon, later} <= {e.session_id for e in store.list_staging()}

    with unit_of_work(sessions.write) as session:  # two minutes on: only `soon` is past due
        expired = housekeeping.expire_sessions(
            session, store, now=datetime.now(UTC) + timedelta(minutes=2)
        )

    assert expired >= 1
    with unit_of_work(sessions.read) as session:
        assert UploadRepository(session).get(soon) is None
        assert UploadRepository(session).get(later) is not None
        unknown = uuid.uuid4().hex * 2
        assert housekeeping.referenced_blobs(session, [unknown]) == set()
    left = {e.session_id for e in store.list_staging()}
    assert soon not in left
    assert later in left
