"""Direct uploads: a large file of an upload session goes straight from the client to the object
store through presigned multipart part URLs; the server never proxies its bytes.

Protocol (see docs/storage.md "Direct uploads"):
1. ``start_direct`` — the caller owns the open session and may register versions of the
   adapter it names; the file name is allowed; the server draws a ``d<token>`` staging key,
   starts a multipart upload there (recording the declared name, size and sha256 as object
   metadata) and presigns one ``UploadPart`` URL per part, short-lived.
2. The client PUTs the parts (in parallel) and keeps each part's ETag.
3. ``complete_direct`` — ``CompleteMultipartUpload`` with the client's part list; the size and
   part count must match what was declared; the first bytes are sniffed (ranged GET) like a
   proxied upload's; the file is recorded in the session with its *declared* digest.
4. Registration validates headers only (ranged GETs), registers the version ``verifying`` and
   queues a verification job that hashes the stored object off the request path
   (``registry.jobs.verify``): ``validated`` when it matches, ``quarantined`` otherwise.

The client never picks a key, never learns a blob key before the server has hashed the bytes,
and cannot skip the digest check: the ``d`` key itself is what makes the version ``verifying``.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from registry import refs
from registry.access.actor import Actor, namespace_resource
from registry.errors import BadRequest, DirectUploadUnsupported, PayloadTooLarge
from registry.storage.base import ArtifactStore, StagedObject
from registry.storage.keys import parse_digest
from registry.uploads import service
from registry.uploads.models import UploadPurpose

if TYPE_CHECKING:
    from registry.storage.s3_direct import CompletedDirect, S3DirectUploads, StartedDirect


def direct_uploads(store: ArtifactStore) -> S3DirectUploads | None:
    """The store's direct-upload support (the S3 backend), or None (local: proxied only)."""
    return getattr(store, "direct", None)


def _require_direct(store: ArtifactStore) -> S3DirectUploads:
    direct = direct_uploads(store)
    if direct is None:
        raise DirectUploadUnsupported(
            "this registry's store takes no direct uploads; PUT the file through the API",
            context={"backend": store.backend},
        )
    return direct


@dataclass(frozen=True, slots=True)
class DirectTarget:
    """A direct upload the caller may start: where it goes and what it declares."""

    upload_id: uuid.UUID
    name: str
    size: int
    sha256_hex: str


def check_direct(
    session: Session,
    *,
    actor: Actor,
    store: ArtifactStore,
    upload_id: uuid.UUID,
    adapter: str,
    name: str,
    size: int,
    digest: str,
    max_bytes: int,
) -> DirectTarget:
    """Everything ``start_direct`` checks before it talks to the store (reads only).

    Errors: ``direct_upload_unsupported`` (local backend), ``invalid_digest``,
    ``invalid_name``, ``upload_not_found``, ``upload_state_conflict`` (closed, expired, base
    model upload, full), ``forbidden_file``, ``payload_too_large``, ``bad_request`` (empty),
    and the policy's refusal of ``register_version`` in the adapter's namespace (403):
    presigned URLs only for a caller who may push to ``adapter``.
    """
    claimed_hex = parse_digest(digest)
    namespace, _, adapter_name = adapter.partition("/")
    refs.namespace_name(namespace)
    refs.adapter_name(adapter_name)
    actor.require("register_version", namespace_resource(namespace))
    upload, files = service.get_upload(session, principal=actor.principal, upload_id=upload_id)
    service.require_open(upload, purpose=UploadPurpose.adapter)
    _require_direct(store)  # after authorization: an outsider learns nothing of the store
    service.check_head(upload.purpose, name, b"")
    service.check_file_limit(files, name)
    if size < 1:
        raise BadRequest("a direct upload needs at least one byte", context={"size": size})
    if size > max_bytes:
        raise PayloadTooLarge(
            "file exceeds the maximum upload size", context={"limit": max_bytes, "size": size}
        )
    return DirectTarget(upload_id=upload_id, name=name, size=size, sha256_hex=claimed_hex)


def start_direct(
    store: ArtifactStore, target: DirectTarget, *, part_size: int, url_ttl_s: int
) -> StartedDirect:
    """Start the multipart upload on a fresh ``d`` staging key and presign its parts."""
    return _require_direct(store).start(
        target.upload_id,
        name=target.name,
        size=target.size,
        sha256_hex=target.sha256_hex,
        part_size=part_size,
        url_ttl_s=url_ttl_s,
    )


def complete_direct(
    store: ArtifactStore,
    *,
    upload_id: uuid.UUID,
    purpose: str,
    token: str,
    s3_upload_id: str,
    parts: list[tuple[int, str]],
) -> CompletedDirect:
    """Complete the multipart upload and sniff the object's first bytes (no database work;
    the caller has checked the session and records the file afterwards).

    Errors: ``invalid_part_list`` (bad id, part list refused, size or part count not the
    declared ones), ``forbidden_file`` (pickle/archive/binary content: the object is deleted).
    """
    direct = _require_direct(store)
    key = direct.key_for(upload_id, token)
    done = direct.complete(key, s3_upload_id, parts)
    try:
        source = store.open_staged(done.key)
        service.check_head(purpose, done.name, source.read_at(0, service.SNIFF_BYTES))
    except BaseException:
        with contextlib.suppress(Exception):
            store.delete_staging_key(done.key)
        raise
    return done


def staged_of(done: CompletedDirect) -> tuple[service.FileTarget, StagedObject]:
    """What ``service.record_file`` records for a completed direct upload: the declared digest
    (unverified until the job hashes it; its ``d`` key says so)."""
    key = done.key
    upload_id = uuid.UUID(key.rstrip("/").rsplit("/", 2)[-2])
    target = service.FileTarget(
        upload_id=upload_id,
        purpose=UploadPurpose.adapter,
        name=done.name,
        claimed_hex=done.claimed_hex,
    )
    return target, StagedObject(key=key, size=done.size, sha256_hex=done.claimed_hex)
