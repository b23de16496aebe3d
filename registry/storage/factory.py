"""Build the configured artifact store (called from the app lifespan / CLI, never at import)."""

from __future__ import annotations

from registry.settings import StorageSettings
from registry.storage.base import ArtifactStore
from registry.storage.local import LocalArtifactStore


def make_store(settings: StorageSettings) -> ArtifactStore:
    """Return the store for ``settings.backend``.

    The S3 module (and boto3) is imported only when selected, so local deployments start
    without touching botocore.
    """
    if settings.backend == "s3":
        from registry.storage.s3 import S3ArtifactStore

        return S3ArtifactStore(settings)
    return LocalArtifactStore(settings)
