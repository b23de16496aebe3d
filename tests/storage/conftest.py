"""Storage test fixtures: every behaviour test runs on both backends.

``store`` is parametrised over ``local`` (a directory under ``tmp_path``) and ``s3`` (moto's
standalone server over HTTP on loopback, marked ``s3``). Deselect the S3 leg with
``-m "not s3"``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from registry.settings import StorageSettings
from registry.storage import keys
from registry.storage.base import ArtifactStore
from registry.storage.factory import make_store
from registry.storage.local import LocalArtifactStore
from registry.storage.s3 import S3ArtifactStore
from tests.fixtures.s3 import moto_endpoint, s3_bucket, s3_client

__all__ = ["moto_endpoint", "s3_bucket", "s3_client"]

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part size S3 allows; keeps multipart tests small
S3_PREFIX = "registry"
IMPORT_PREFIX = "imports/team-a/"

StoreFactory = Callable[..., ArtifactStore]


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def local_settings(root: Path) -> StorageSettings:
    return StorageSettings(backend="local", root=root, multipart_chunk_bytes=PART)


@pytest.fixture
def s3_settings(moto_endpoint: str, s3_bucket: str) -> StorageSettings:
    """S3 settings on this test's fresh moto bucket (prefix ``registry``, 5 MiB parts)."""
    return StorageSettings(
        backend="s3",
        bucket=s3_bucket,
        prefix=S3_PREFIX,
        endpoint_url=moto_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
        multipart_chunk_bytes=PART,
        connect_timeout_s=2,
        read_timeout_s=10,
        max_attempts=2,
        import_allowlist=[f"s3://{s3_bucket}/{IMPORT_PREFIX}"],
    )


@pytest.fixture
def local_store(tmp_path: Path) -> LocalArtifactStore:
    return LocalArtifactStore(local_settings(tmp_path / "artifacts"))


@pytest.fixture
def s3_store(s3_settings: StorageSettings) -> S3ArtifactStore:
    return S3ArtifactStore(s3_settings)


@pytest.fixture
def storage_settings(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> StorageSettings:
    if backend == "local":
        return local_settings(tmp_path / "artifacts")
    # Resolved lazily so that only the s3 leg starts (or reuses) the moto server.
    settings: StorageSettings = request.getfixturevalue("s3_settings")
    return settings


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
