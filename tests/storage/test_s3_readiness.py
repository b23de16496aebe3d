"""An S3 store that is misconfigured (a bucket that does not exist, no credentials, an endpoint
where nothing listens) keeps the server up but not ready: ``/readyz`` answers 503 with a stable
reason per cause (``storage_unavailable:<reason>``, registry.storage.s3_health), the log says
what failed and where (bucket, endpoint) once per change, and neither shows a secret.

Real parts: the app with its lifespan over a migrated database, moto's S3 server over HTTP;
the wrong endpoint is a loopback port nobody listens on, the missing credentials an environment
without any (boto3's whole chain comes up empty)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.settings import ServerSettings, Settings
from tests.fixtures.app import make_settings
from tests.fixtures.s3 import S3Server
from tests.fixtures.server import free_port

pytestmark = pytest.mark.s3

SECRET = "sekret-" + uuid.uuid4().hex


def s3_settings(database_url: str, tmp_path: Path, **storage: Any) -> Settings:
    settings = make_settings(
        database_url,
        tmp_path / "artifacts",
        backend="s3",
        max_attempts=1,
        connect_timeout_s=1,
        read_timeout_s=2,
        **storage,
    )
    # Generous: the assertions are about the reason, never about timing.
    return settings.model_copy(update={"server": ServerSettings(readiness_timeout_s=15)}, deep=True)


@pytest.fixture
def quiet_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere boto3 looks (environment, files, instance metadata)."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "no-aws-config"
    empty.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(empty))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(name, raising=False)


def readyz(settings: Settings) -> Iterator[tuple[int, dict[str, Any], str]]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for _ in range(2):  # the first probe and a second one (a breaker may have opened)
            r = client.get("/readyz")
            yield r.status_code, r.json(), r.text


def storage_log(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "registry.storage.s3" and r.levelno == logging.WARNING
    ]


def test_missing_bucket_is_reported_and_logged(
    database_url: str,
    moto_s3_server: S3Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bucket = f"absent-{uuid.uuid4().hex[:12]}"
    settings = s3_settings(
        database_url,
        tmp_path,
        bucket=bucket,
        endpoint_url=moto_s3_server.endpoint,
        access_key_id="testing",
        secret_access_key=SECRET,
    )
    caplog.set_level(logging.INFO, logger="registry.storage.s3")
    for status, body, text in readyz(settings):
        assert status == 503
        assert body["status"] == "unavailable"
        assert body["checks"]["storage"] == "storage_unavailable:no_such_bucket"
        assert body["checks"]["database"] == "ok"
        assert SECRET not in text
    logged = storage_log(caplog)
    assert len(logged) == 1, logged  # once per change, not once per probe
    assert "no_such_bucket" in logged[0]
    assert bucket in logged[0]
    assert moto_s3_server.endpoint in logged[0]
    assert SECRET not in logged[0]


def test_bucket_created_later_makes_the_server_ready(
    database_url: str, moto_s3_server: S3Server, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bucket = f"late-{uuid.uuid4().hex[:12]}"
    settings = s3_settings(
        database_url,
        tmp_path,
        bucket=bucket,
        endpoint_url=moto_s3_server.endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    caplog.set_level(logging.INFO, logger="registry.storage.s3")
    client = moto_s3_server.client()
    with TestClient(create_app(settings), raise_server_exceptions=False) as app:
        assert (
            app.get("/readyz").json()["checks"]["storage"] == "storage_unavailable:no_such_bucket"
        )
        client.create_bucket(Bucket=bucket)
        try:
            r = app.get("/readyz")
            assert r.status_code == 200, r.text
            assert r.json()["checks"] == {"database": "ok", "storage": "ok"}
        finally:
            client.delete_bucket(Bucket=bucket)
    assert any("available again" in r.getMessage() for r in caplog.records)


def test_wrong_endpoint_is_unreachable(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = s3_settings(
        database_url,
        tmp_path,
        bucket="some-bucket",
        endpoint_url=endpoint,
        access_key_id="testing",
        secret_access_key=SECRET,
    )
    caplog.set_level(logging.INFO, logger="registry.storage.s3")
    reasons = set()
    for status, body, text in readyz(settings):
        assert status == 503
        reasons.add(body["checks"]["storage"])
        assert SECRET not in text
    # The first probe names the cause; after enough failures the breaker answers for it.
    assert "storage_unavailable:unreachable" in reasons
    assert reasons <= {"storage_unavailable:unreachable", "storage_unavailable:circuit_open"}
    logged = storage_log(caplog)
    assert len(logged) == 1, logged
    assert "unreachable" in logged[0]
    assert endpoint in logged[0]
    assert "EndpointConnectionError" in logged[0]  # the cause, as boto3 named it


def test_missing_credentials(
    database_url: str,
    moto_s3_server: S3Server,
    tmp_path: Path,
    quiet_aws: None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = s3_settings(
        database_url, tmp_path, bucket="any-bucket", endpoint_url=moto_s3_server.endpoint
    )
    caplog.set_level(logging.INFO, logger="registry.storage.s3")
    for status, body, _ in readyz(settings):
        assert status == 503
        assert body["checks"]["storage"] == "storage_unavailable:missing_credentials"
    logged = storage_log(caplog)
    assert len(logged) == 1, logged
    assert "missing_credentials" in logged[0]
    assert "NoCredentialsError" in logged[0]


def test_wrong_secret_key(
    database_url: str,
    seaweedfs_s3_server: S3Server,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """SeaweedFS checks signatures like AWS (moto accepts any): a wrong secret is named."""
    client = seaweedfs_s3_server.client()
    bucket = f"signed-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    try:
        settings = s3_settings(
            database_url,
            tmp_path,
            bucket=bucket,
            endpoint_url=seaweedfs_s3_server.endpoint,
            access_key_id=seaweedfs_s3_server.access_key_id,
            secret_access_key=SECRET,
        )
        caplog.set_level(logging.INFO, logger="registry.storage.s3")
        for status, body, text in readyz(settings):
            assert status == 503
            # The probe is a HEAD: its 403 has no body, so no error code tells a wrong secret
            # from a missing permission (requests with a body name bad_credentials).
            assert body["checks"]["storage"] == "storage_unavailable:access_denied"
            assert SECRET not in text
        logged = storage_log(caplog)
        assert len(logged) == 1, logged
        assert SECRET not in logged[0]
    finally:
        client.delete_bucket(Bucket=bucket)
