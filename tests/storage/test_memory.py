"""Bounded memory: streaming through the store never holds the payload in memory."""

from __future__ import annotations

import hashlib
import os
import tracemalloc
import uuid

from registry.storage.local import LocalArtifactStore
from tests.storage.conftest import MIB

TOTAL = 200 * MIB
LIMIT = 16 * MIB


def test_local_writer_200_mib_stays_under_16_mib(local_store: LocalArtifactStore) -> None:
    chunk = os.urandom(MIB)  # allocated before tracing: only the store's own memory counts
    tracemalloc.start()
    try:
        with local_store.open_staging(uuid.uuid4()) as writer:
            for _ in range(TOTAL // MIB):
                writer.write(chunk)
            staged = writer.finish()
        local_store.commit_staged(staged)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert staged.size == TOTAL
    assert peak < LIMIT, f"peak {peak / MIB:.1f} MiB"


def test_local_iter_blob_200_mib_stays_under_16_mib(local_store: LocalArtifactStore) -> None:
    chunk = os.urandom(MIB)
    with local_store.open_staging(uuid.uuid4()) as writer:
        for _ in range(TOTAL // MIB):
            writer.write(chunk)
        staged = writer.finish()
    local_store.commit_staged(staged)

    tracemalloc.start()
    try:
        hasher = hashlib.sha256()
        for piece in local_store.iter_blob(staged.sha256_hex):
            hasher.update(piece)
        local_store.verify_blob(staged.sha256_hex)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert hasher.hexdigest() == staged.sha256_hex
    assert peak < LIMIT, f"peak {peak / MIB:.1f} MiB"
