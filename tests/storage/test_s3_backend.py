"""The same push/pull path on the S3 backend (each S3 server of tests/fixtures/s3.py), and
``register --from s3://`` imports from allow-listed locations only."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.settings import DatabaseSettings, Settings, StorageSettings
from tests.factories.catalog import create_namespace, error_of, push, register_base, unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.s3 import S3Server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.s3

SRC = PEFT_FIXTURES / "adapters" / "llama-dora-r4"
IMPORT_PREFIX = "training-out/team-a/"


@pytest.fixture
def s3_app(
    database_url: str, s3_server: S3Server, s3_bucket: str, admin_token: str
) -> Iterator[TestClient]:
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        storage=StorageSettings(
            backend="s3",
            bucket=s3_bucket,
            prefix="registry",
            endpoint_url=s3_server.endpoint,
            access_key_id=s3_server.access_key_id,
            secret_access_key=s3_server.secret_access_key,
            import_allowlist=[f"s3://{s3_bucket}/{IMPORT_PREFIX}"],
        ),
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        client.headers["Authorization"] = f"Bearer {admin_token}"
        yield client


def _llama(client: TestClient) -> str:
    return register_base(client, PEFT_FIXTURES / "bases" / "tiny-llama", name=unique("llama"))


def test_push_and_pull_are_byte_identical_on_s3(
    s3_app: TestClient, s3_client: S3Client, s3_bucket: str
) -> None:
    ns, base = create_namespace(s3_app), _llama(s3_app)
    r = push(s3_app, ns, "dora", SRC, base)
    assert r.status_code == 201, r.text
    for f in r.json()["files"]:
        got = s3_app.get(f"/api/v1/adapters/{ns}/dora/versions/v1/files/{f['name']}")
        assert got.content == (SRC / f["name"]).read_bytes()
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    hexes = {
        hashlib.sha256((SRC / n).read_bytes()).hexdigest()
        for n in ("adapter_config.json", "adapter_model.safetensors")
    }
    for h in hexes:
        assert f"registry/blobs/sha256/{h[:2]}/{h}" in keys
    assert not [k for k in keys if "/staging/" in k]


def test_rejected_push_leaves_no_object_on_s3(
    s3_app: TestClient, s3_client: S3Client, s3_bucket: str
) -> None:
    ns = create_namespace(s3_app)
    base = register_base(s3_app, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    before = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
    r = push(s3_app, ns, "bad", PEFT_FIXTURES / "broken" / "llama-lora-names-gpt2-base", base)
    assert error_of(r) == ("incompatible_base", "missing_modules")
    after = {o["Key"] for o in s3_client.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
    assert after == before


def _stage_import(s3_client: S3Client, bucket: str, prefix: str, src: Path) -> str:
    for p in src.iterdir():
        s3_client.put_object(Bucket=bucket, Key=prefix + p.name, Body=p.read_bytes())
    return f"s3://{bucket}/{prefix}"


def test_register_from_allowlisted_s3_prefix(
    s3_app: TestClient, s3_client: S3Client, s3_bucket: str
) -> None:
    ns, base = create_namespace(s3_app), _llama(s3_app)
    uri = _stage_import(s3_client, s3_bucket, IMPORT_PREFIX + "run-1/", SRC)
    r = s3_app.post(f"/api/v1/adapters/{ns}/dora/versions", json={"base": base, "source_uri": uri})
    assert r.status_code == 201, r.text
    assert r.json()["source_uri"] == uri
    got = s3_app.get(f"/api/v1/adapters/{ns}/dora/versions/v1/files/adapter_model.safetensors")
    assert got.content == (SRC / "adapter_model.safetensors").read_bytes()


@pytest.mark.parametrize(
    "uri",
    [
        "s3://other-bucket/training-out/team-a/run/",
        "s3://{bucket}/training-out/team-ab/run/",
        "s3://{bucket}/training-out/team-a/../secret/",
        "s3://{bucket}/training-out/team-a/%2e%2e/secret/",
        "s3://{bucket}/training-out/team-a/run/?x=1",
        "s3://{bucket}/training-out/team-a/run/#frag",
        "file:///etc/",
        "http://169.254.169.254/latest/",
        "/etc/passwd",
        "s3://user@{bucket}/training-out/team-a/run/",
        "",
    ],
)
def test_register_from_outside_allowlist_is_refused(
    s3_app: TestClient, s3_bucket: str, uri: str
) -> None:
    ns, base = create_namespace(s3_app), _llama(s3_app)
    r = s3_app.post(
        f"/api/v1/adapters/{ns}/x/versions",
        json={"base": base, "source_uri": uri.format(bucket=s3_bucket)},
    )
    assert r.status_code in (400, 403, 422), r.text
    assert r.json()["error"] in ("invalid_uri", "uri_not_allowed", "invalid_request")
    assert s3_app.get(f"/api/v1/adapters/{ns}/x").status_code == 404
