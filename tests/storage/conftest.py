"""Storage test fixtures: every behaviour test runs on both backends, S3 on two servers.

``store`` is parametrised over ``local`` (a directory under ``tmp_path``) and the S3 backend on
each real S3 server of tests/fixtures/s3.py: ``moto`` (moto's standalone server) and
``seaweedfs`` (``weed server -s3``), both over HTTP on loopback and marked ``s3``. S3-only tests
(``s3_store``, ``s3_client``) run on both servers through the parametrized ``s3_server``.
Deselect the S3 legs with ``-m "not s3"``, the SeaweedFS one with ``-k "not seaweedfs"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry.settings import StorageSettings
from registry.storage import keys
from registry.storage.base import ArtifactStore
from registry.storage.factory import make_store
from registry.storage.local import LocalArtifactStore
from registry.storage.s3 import S3ArtifactStore
from tests.fixtures.s3 import S3_SERVERS, S3Server, client_for, fresh_bucket

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part size S3 allows; keeps multipart tests small
S3_PREFIX = "registry"
IMPORT_PREFIX = "imports/team-a/"

StoreFactory = Callable[..., ArtifactStore]


@pytest.fixture(
    params=["local", *(pytest.param(name, marks=pytest.mark.s3) for name in S3_SERVERS)]
)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def local_settings(root: Path) -> StorageSettings:
    return StorageSettings(backend="local", root=root, multipart_chunk_bytes=PART)


def settings_on(server: S3Server, bucket: str) -> StorageSettings:
    """S3 settings on ``bucket`` of ``server`` (prefix ``registry``, 5 MiB parts)."""
    return StorageSettings(
        backend="s3",
        bucket=bucket,
        prefix=S3_PREFIX,
        endpoint_url=server.endpoint,
        access_key_id=server.access_key_id,
        secret_access_key=server.secret_access_key,
        multipart_chunk_bytes=PART,
        connect_timeout_s=2,
        read_timeout_s=10,
        max_attempts=2,
        import_allowlist=[f"s3://{bucket}/{IMPORT_PREFIX}"],
    )


@pytest.fixture
def s3_settings(s3_server: S3Server, s3_bucket: str) -> StorageSettings:
    """S3 settings on this test's fresh bucket of this leg's server."""
    return settings_on(s3_server, s3_bucket)


@pytest.fixture
def local_store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(local_settings(tmp_path / "artifacts"))


@pytest.fixture
def s3_store(s3_settings: StorageSettings) -> S3ArtifactStore:
    return S3ArtifactStore(s3_settings)


@pytest.fixture
def storage_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[StorageSettings]:
    if backend == "local":
        yield local_settings(tmp_path / "artifacts")
        return
    # Resolved lazily so that only an S3 leg starts (or reuses) its server.
    server: S3Server = request.getfixturevalue(f"{backend}_s3_server")
    with fresh_bucket(client_for(server)) as bucket:
        yield settings_on(server, bucket)


@pytest.fixture
def make_test_store(storage_settings: StorageSettings) -> StoreFactory:
    """Build a store on this test's backend with some settings overridden."""

    def factory(**overrides: Any) -> ArtifactStore:
        settings = StorageSettings.model_validate(storage_settings.model_dump() | overrides)
        return make_store(settings)

    return factory


@pytest.fixture
def store(storage_settings: StorageSettings) -> ArtifactStore:
    return make_store(storage_settings)


@pytest.fixture
def overwrite_blob(store: ArtifactStore) -> Callable[[str, bytes], None]:
    """Replace a blob's bytes out of band (disk / direct S3 PUT), bypassing the store."""

    def overwrite(hex_digest: str, data: bytes) -> None:
        if isinstance(store, LocalArtifactStore):
            path = store.root / keys.blob_key("", hex_digest)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        elif isinstance(store, S3ArtifactStore):
            store.client.put_object(Bucket=store.bucket, Key=store.blob_key(hex_digest), Body=data)
        else:  # pragma: no cover - only two backends exist
            raise TypeError(type(store))

    return overwrite


@pytest.fixture
def overwrite_staged(store: ArtifactStore) -> Callable[[str, bytes], None]:
    """Replace a finished staging object's bytes out of band (disk / direct S3 PUT)."""

    def overwrite(key: str, data: bytes) -> None:
        if isinstance(store, LocalArtifactStore):
            (store.root / key).write_bytes(data)
        elif isinstance(store, S3ArtifactStore):
            store.client.put_object(Bucket=store.bucket, Key=key, Body=data)
        else:  # pragma: no cover - only two backends exist
            raise TypeError(type(store))

    return overwrite
