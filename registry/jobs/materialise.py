"""A job's inputs as directories of files: each input version's stored blobs copied out of the
artifact store into the job's temporary directory, every byte hashed on the way and checked
against the digest its row records (``integrity_failure`` otherwise), and a merge's base
checkpoint the same way from the base version's stored weights."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from registry.catalog import base_models
from registry.catalog.files import StoredFile, stored_version
from registry.db.session import Sessions, unit_of_work
from registry.errors import IntegrityFailure
from registry.jobs.env import Creator
from registry.refs import parse_base_ref
from registry.storage.base import ArtifactStore


@dataclass(frozen=True, slots=True)
class LocalInput:
    """One input version, its files copied to ``path``."""

    path: Path
    ref: str
    digest: str
    base: str  # NAME@REV it was trained on
    weight: float


def copy_files(store: ArtifactStore, files: Sequence[StoredFile], into: Path) -> None:
    """Copy stored blobs into ``into`` under their names, verified against their digests."""
    into.mkdir(parents=True, exist_ok=True)
    for f in files:
        hasher, size = hashlib.sha256(), 0
        with (into / f.name).open("wb") as out:
            for chunk in store.iter_blob(f.digest):
                hasher.update(chunk)
                size += len(chunk)
                out.write(chunk)
        if hasher.hexdigest() != f.digest or size != f.size:
            raise IntegrityFailure(
                "a stored file does not match its digest",
                context={"file": f.name, "digest": f"sha256:{f.digest}"},
            )


def materialise_inputs(
    sessions: Sessions,
    store: ArtifactStore,
    creator: Creator,
    inputs: Sequence[dict[str, Any]],
    into: Path,
) -> list[LocalInput]:
    """The job's input versions (read as the job's creator, who must still be allowed to read
    them) copied to ``into/<position>/``. A version whose digest is not the one the job was
    created with is refused (``integrity_failure``: versions are immutable)."""
    out = []
    for position, spec in enumerate(inputs):
        ref, digest = str(spec["ref"]), str(spec["digest"])
        with unit_of_work(sessions.read) as session:
            version = stored_version(session, actor=creator(session), ref=ref)
        if version.digest != digest:
            raise IntegrityFailure(
                "an input version changed since the job was created",
                context={"ref": ref, "digest": digest, "found": version.digest},
            )
        path = into / str(position)
        copy_files(store, version.files, path)
        out.append(LocalInput(path, ref, digest, version.base, float(spec.get("weight", 1.0))))
    return out


def materialise_base(
    sessions: Sessions, store: ArtifactStore, creator: Creator, base: str, into: Path
) -> Path:
    """The stored files of the base ``NAME@REV`` copied to ``into`` (the checkpoint a merge
    folds an adapter into)."""
    ref = parse_base_ref(base)
    with unit_of_work(sessions.read) as session:
        view = base_models.get_base_version(
            session, actor=creator(session), name=ref.name, revision=ref.revision
        )
        files = [StoredFile(f.name, f.digest, f.size) for f in view.files]
    copy_files(store, files, into)
    return into
