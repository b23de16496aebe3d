"""Upload sessions: stream files to staging while hashing, then hand them to registration.

Protocol (blob first, row second):
1. ``create_upload`` opens a session owned by the caller.
2. ``prepare_file`` / ``StagedFileWriter`` / ``record_file`` stream one file to a staging key,
   hashing in flight; the digest is compared with the client's claim and the file's first
   bytes are sniffed (pickles, archives) before anything is kept.
3. Registration validates the staged files, moves them to content-addressed keys and only then
   inserts rows (``commit_upload``). A rejected push discards the staged bytes.

Concurrency (many PUTs into one session at once): no lock and no transaction is held while
bytes flow (SQLite's write lock would otherwise be held for the whole upload). Every PUT
streams into its own staging key, drawn at random and never reused
(:func:`registry.storage.keys.new_staging_key`), so no PUT can overwrite another's bytes.
Bookkeeping happens afterwards in ``record_file`` under the session row lock: the file limit,
the replacement of an earlier file of the same name and the file's ``part`` (its arrival
order, nothing more) are all decided there. Publishing re-hashes every staged file
(``ArtifactStore.commit_staged``) instead of trusting the digest recorded here, and
``record_upload`` re-checks under the same lock that the session still holds exactly the
files that were validated.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from registry.auth.principal import AuthenticatedPrincipal
from registry.errors import (
    BlobNotFound,
    DigestMismatch,
    ForbiddenFile,
    UploadNotFound,
    UploadStateConflict,
)
from registry.storage.base import ArtifactStore, StagedObject, StagingWriter
from registry.storage.keys import parse_digest
from registry.uploads.blob_index import BlobRepository
from registry.uploads.models import UploadFile, UploadPurpose, UploadSession, UploadState
from registry.uploads.repository import UploadRepository
from registry.validation.files import check_file_allowed, looks_like_safetensors
from registry.validation.source import ByteSource

SNIFF_BYTES = 512
MAX_FILES_PER_UPLOAD = 32


# Files a base model upload (``base-models register --upload-weights``) may hold.
BASE_FILE_PATTERN = (
    r"^(config\.json|generation_config\.json|model\.safetensors\.index\.json"
    r"|model(-[0-9]{5}-of-[0-9]{5})?\.safetensors|tokenizer\.json|tokenizer_config\.json"
    r"|special_tokens_map\.json)$"
)
_BASE_FILE = re.compile(BASE_FILE_PATTERN)


def check_base_file_allowed(name: str, head: bytes) -> None:
    """The base-model counterpart of ``check_file_allowed``: checkpoint names, safetensors
    content for weights, and no pickles/archives anywhere (``forbidden_file``)."""
    if not _BASE_FILE.fullmatch(name):
        raise ForbiddenFile(
            "file is not part of a safetensors checkpoint",
            reason="forbidden_name",
            context={"file": name[:200]},
        )
    if name.endswith(".safetensors"):
        if head and not looks_like_safetensors(head):
            raise ForbiddenFile(
                "weights must be safetensors", reason="binary", context={"file": name}
            )
        return
    check_file_allowed("tokenizer.json", head)  # JSON text rules: no pickle/archive/binary


def create_upload(
    session: Session,
    *,
    principal: AuthenticatedPrincipal,
    ttl_s: int,
    purpose: UploadPurpose = UploadPurpose.adapter,
) -> UploadSession:
    """Open an upload session for ``principal``. Runs in the caller's transaction; flushes."""
    return UploadRepository(session).add(
        UploadSession(
            principal_id=principal.id,
            purpose=purpose,
            state=UploadState.open,
            expires_at=datetime.now(UTC) + timedelta(seconds=ttl_s),
        )
    )


def get_upload(
    session: Session, *, principal: AuthenticatedPrincipal, upload_id: uuid.UUID
) -> tuple[UploadSession, list[UploadFile]]:
    """The caller's own upload session and its files (others' sessions are ``upload_not_found``)."""
    repo = UploadRepository(session)
    upload = repo.get(upload_id)
    if upload is None or upload.principal_id != principal.id:
        raise UploadNotFound("no such upload session", context={"upload_id": str(upload_id)})
    return upload, repo.files(upload_id)


def require_open(upload: UploadSession, *, purpose: str | None = None) -> None:
    """``upload_state_conflict`` unless the session is open, unexpired (and for ``purpose``)."""
    if purpose is not None and upload.purpose != purpose:
        raise UploadStateConflict(
            f"upload session was opened for {upload.purpose}, not {purpose}",
            context={"upload_id": str(upload.id)},
        )
    if upload.state != UploadState.open:
        raise UploadStateConflict(
            f"upload session is {upload.state}", context={"upload_id": str(upload.id)}
        )
    if upload.expires_at <= datetime.now(UTC):
        raise UploadStateConflict("upload session expired", context={"upload_id": str(upload.id)})


@dataclass(frozen=True, slots=True)
class FileTarget:
    upload_id: uuid.UUID
    purpose: str
    name: str
    claimed_hex: str | None


def prepare_file(
    session: Session,
    *,
    principal: AuthenticatedPrincipal,
    upload_id: uuid.UUID,
    name: str,
    claimed_digest: str | None,
) -> FileTarget:
    """Check that ``name`` may be added to the open session; read-only, takes no lock.

    A fast refusal before any byte is received; ``record_file`` re-checks everything under the
    session row lock, since concurrent PUTs may change the session meanwhile.

    Errors: ``upload_not_found``, ``upload_state_conflict``, ``invalid_digest``,
    ``forbidden_file`` (name not in the allowed set).
    """
    claimed_hex = parse_digest(claimed_digest) if claimed_digest is not None else None
    upload, files = get_upload(session, principal=principal, upload_id=upload_id)
    require_open(upload)
    check_head(upload.purpose, name, b"")
    check_file_limit(files, name)
    return FileTarget(
        upload_id=upload_id, purpose=upload.purpose, name=name, claimed_hex=claimed_hex
    )


def check_file_limit(files: list[UploadFile], name: str) -> None:
    """``upload_state_conflict`` when a new ``name`` would exceed the session's file limit."""
    if len(files) >= MAX_FILES_PER_UPLOAD and all(f.name != name for f in files):
        raise UploadStateConflict(
            "too many files in one upload", context={"limit": MAX_FILES_PER_UPLOAD}
        )


def check_head(purpose: str, name: str, head: bytes) -> None:
    """``forbidden_file`` for a name or first bytes (pickle, archive, binary) not allowed."""
    if purpose == UploadPurpose.base_model:
        check_base_file_allowed(name, head)
    else:
        check_file_allowed(name, head)


class StagedFileWriter:
    """Streams one file into staging: sniffs its head, hashes in flight, checks the claim.

    Each writer gets a staging key of its own (see the module docstring), so any number of
    writers may stream into one session at once.
    """

    def __init__(self, store: ArtifactStore, target: FileTarget) -> None:
        self.target = target
        self._store = store
        self._writer: StagingWriter = store.open_staging(target.upload_id)
        self._head = bytearray()
        self._sniffed = False

    def write(self, chunk: bytes) -> None:
        try:
            if not self._sniffed:
                self._head += chunk[: SNIFF_BYTES - len(self._head)]
                if len(self._head) >= SNIFF_BYTES:
                    self._sniff()
            self._writer.write(chunk)
        except BaseException:
            self._writer.abort()
            raise

    def _sniff(self) -> None:
        self._sniffed = True
        check_head(self.target.purpose, self.target.name, bytes(self._head))

    def finish(self) -> StagedObject:
        """Close the staged object; raise ``digest_mismatch`` (and drop it) on a wrong claim."""
        try:
            if not self._sniffed:
                self._sniff()
            staged = self._writer.finish()
        except BaseException:
            self._writer.abort()
            raise
        claimed = self.target.claimed_hex
        if claimed is not None and claimed != staged.sha256_hex:
            # finish() made it durable; abort() is a no-op now, so delete the object itself.
            self._store.delete_staging_key(staged.key)
            raise DigestMismatch(
                "uploaded bytes do not match the claimed digest",
                reason="upload",
                context={
                    "file": self.target.name,
                    "claimed": f"sha256:{claimed}",
                    "actual": f"sha256:{staged.sha256_hex}",
                },
            )
        return staged

    def abort(self) -> None:
        self._writer.abort()


@dataclass(frozen=True, slots=True)
class RecordedFile:
    """The row of a recorded file, and the staging keys of the earlier file(s) of the same
    name it replaced (to delete once the transaction has committed)."""

    row: UploadFile
    superseded: list[str]


def record_file(
    session: Session,
    *,
    principal: AuthenticatedPrincipal,
    target: FileTarget,
    staged: StagedObject,
) -> RecordedFile:
    """Record a staged file in its session, replacing an earlier upload of the same name.

    Runs in the caller's (short) transaction; takes the session row lock first, so concurrent
    PUTs of one session serialise here and only here. Under the lock: the session must still
    be open, the file limit holds, a file of the same name is replaced (last recorded wins)
    and ``part`` (arrival order) is allocated. The caller deletes ``superseded`` staging
    objects after the commit, and ``staged`` itself if this raises.

    Errors: ``upload_not_found``, ``upload_state_conflict`` (closed, expired, too many files).
    """
    repo = UploadRepository(session)
    upload = repo.get(target.upload_id, for_update=True)
    if upload is None or upload.principal_id != principal.id:
        raise UploadNotFound("no such upload session", context={"upload_id": str(target.upload_id)})
    require_open(upload)
    files = repo.files(target.upload_id)
    check_file_limit(files, target.name)
    superseded: list[str] = []
    for existing in files:
        if existing.name == target.name:
            repo.remove_file(existing)
            if existing.staging_key != staged.key:
                superseded.append(existing.staging_key)
    row = repo.add_file(
        UploadFile(
            session_id=target.upload_id,
            name=target.name,
            part=max((f.part for f in files), default=-1) + 1,
            staging_key=staged.key,
            digest=staged.sha256_hex,
            size=staged.size,
        )
    )
    return RecordedFile(row=row, superseded=superseded)


def drop_staged(store: ArtifactStore, keys: list[str]) -> None:
    """Best-effort delete of staging objects no row refers to (gc collects what fails)."""
    for key in keys:
        with contextlib.suppress(Exception):
            store.delete_staging_key(key)


@dataclass(frozen=True, slots=True)
class StagedFile:
    name: str
    digest: str
    size: int
    staged: StagedObject
    source: ByteSource


def open_staged_files(store: ArtifactStore, files: list[UploadFile]) -> list[StagedFile]:
    """Byte sources over every staged file of a session (for validation).

    Errors: ``upload_state_conflict`` when the bytes are gone (a rejected push discards them).
    """
    out: list[StagedFile] = []
    for f in files:
        staged = StagedObject(key=f.staging_key, size=f.size, sha256_hex=f.digest)
        try:
            source = store.open_staged(f.staging_key)
        except BlobNotFound as exc:
            raise UploadStateConflict(
                "the staged files of this upload are gone (a refused push discards them); "
                "open a new upload",
                context={"upload_id": str(f.session_id), "file": f.name},
            ) from exc
        out.append(StagedFile(f.name, f.digest, f.size, staged, source))
    return out


def publish_staged(store: ArtifactStore, files: list[StagedFile]) -> None:
    """Re-hash each staged file and publish it under its content address (no database work).

    The digest recorded by ``record_file`` is not trusted to describe the staged bytes:
    ``commit_staged`` hashes them again and publishes only bytes that hash to the digest, over
    any object already at that key. Blob first, row second: if the caller's transaction later
    rolls back, the blobs are unreferenced and ``storage gc`` collects them after the grace
    window. Kept apart from ``record_upload`` so that reads, copies and fsyncs happen before
    any row lock is taken.

    Errors: ``upload_state_conflict`` (a staged file is gone, e.g. replaced by a concurrent
    PUT of the same name), ``integrity_failure`` (staged bytes do not hash to their digest;
    nothing of that file is published).
    """
    for f in files:
        try:
            store.commit_staged(f.staged)
        except BlobNotFound as exc:
            raise UploadStateConflict(
                "a staged file of this upload is gone (replaced or discarded); "
                "check the upload and register again",
                context={"file": f.name},
            ) from exc


def record_upload(
    session: Session,
    *,
    upload: UploadSession | uuid.UUID,
    files: list[StagedFile],
    owner: AuthenticatedPrincipal | None = None,
) -> None:
    """Record blob rows for published files and close the session. Flushes.

    Takes the session row lock (the one ``record_file`` takes) and re-checks under it that the
    session is still open (and ``owner``'s, when given: others' are ``upload_not_found``) and
    still holds exactly ``files``: a PUT that landed after validation read the session, or a
    concurrent registration of the same upload, is then ``upload_state_conflict`` rather than a
    version that silently lacks a file that got a 201.
    """
    upload_id = upload if isinstance(upload, uuid.UUID) else upload.id
    repo = UploadRepository(session)
    locked = repo.get(upload_id, for_update=True)
    if locked is None or (owner is not None and locked.principal_id != owner.id):
        raise UploadNotFound("no such upload session", context={"upload_id": str(upload_id)})
    require_open(locked)
    current = {(f.name, f.staging_key, f.digest, f.size) for f in repo.files(upload_id)}
    if current != {(f.name, f.staged.key, f.digest, f.size) for f in files}:
        raise UploadStateConflict(
            "the upload session changed while it was being registered; register again",
            context={"upload_id": str(upload_id)},
        )
    BlobRepository(session).add_many((f.digest, f.size) for f in files)
    locked.state = UploadState.committed
    session.flush()


def commit_upload(
    session: Session, *, store: ArtifactStore, upload: UploadSession, files: list[StagedFile]
) -> None:
    """``publish_staged`` then ``record_upload``."""
    publish_staged(store, files)
    record_upload(session, upload=upload, files=files)


def store_small_blob(session: Session, *, store: ArtifactStore, data: bytes) -> str:
    """Write a small blob (a manifest) and record its row; returns the hex digest.

    Blob first, row second, like every upload.
    """
    hex_digest = store.put_small(data)
    BlobRepository(session).add_many([(hex_digest, len(data))])
    return hex_digest


def discard_upload(store: ArtifactStore, upload_id: uuid.UUID) -> None:
    """Drop every staged byte of a session (a rejected push leaves nothing behind)."""
    store.discard_staging(upload_id)
