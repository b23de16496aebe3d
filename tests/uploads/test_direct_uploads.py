"""Direct uploads to S3 (presigned multipart, registry/uploads/direct.py), on both S3 servers
of tests/fixtures/s3.py (moto, SeaweedFS) and the selected database dialect; the real app
in-process, the bytes over real HTTP to the real S3 server. The verification job is driven
step by step (``run_verify_jobs``).

- happy path through the CLI: the large file goes direct (two parts, in parallel), the version
  is ``verifying`` and not pullable until the job has hashed it, then ``validated`` and pulled
  byte for byte;
- a declared digest that the stored bytes do not match: ``quarantined`` with the reason, no
  blob published under the claimed digest;
- bad part lists and sizes: 400 ``invalid_part_list``, nothing recorded;
- a caller who may not push to the adapter: 403 before any URL is presigned;
- a verifying version cannot serve (``version_verifying``);
- abandoned multipart uploads are aborted by housekeeping;
- the local backend offers no direct uploads and push falls back to the proxied path.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.catalog.models import AdapterVersion
from registry.db.session import unit_of_work
from registry.direct_settings import DirectUploadSettings
from registry.errors import VersionVerifying
from registry.jobs import worker
from registry.jobs.env import WorkerEnv
from registry.jobs.models import Job, JobKind, JobState
from registry.storage.keys import blob_key
from registry.uploads.housekeeping import expire_sessions
from tests.factories.big_lora import write_big_lora
from tests.factories.catalog import create_namespace, register_base, sha256_hex, unique
from tests.factories.governance import make_principal
from tests.fixtures.app import bootstrap, cli_on_app, make_settings
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.s3 import S3_SERVERS, S3Server, client_for, fresh_bucket

MIB = 1024 * 1024
PART = 5 * MIB  # the smallest part size S3 allows
PREFIX = "registry"


class Rig:
    def __init__(self, client: TestClient, s3: S3Server | None, bucket: str | None) -> None:
        self.client, self.s3, self.bucket = client, s3, bucket
        self.namespace = create_namespace(client)
        self.base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2")

    @property
    def env(self) -> WorkerEnv:
        state = self.client.app.state  # type: ignore[attr-defined]
        return WorkerEnv(
            state.sessions, state.store, state.manifests, state.policies, state.settings
        )

    def run_verify_jobs(self) -> None:
        """Run queued jobs until no verify job is left queued (others' leftovers run too)."""
        for _ in range(50):
            with unit_of_work(self.env.sessions.read) as session:
                left = session.query(Job).filter_by(kind=JobKind.verify, state=JobState.queued)
                if left.count() == 0:
                    return
            worker.run_one(self.env)
        raise AssertionError("verify jobs left queued")

    def start(self, upload: str, name: str, size: int, digest: str, **extra: Any) -> httpx.Response:
        body = {"adapter": f"{self.namespace}/bot", "name": name, "size": size, "digest": digest}
        r: httpx.Response = self.client.post(
            f"/api/v1/uploads/{upload}/direct", json={**body, **extra}
        )
        return r

    def complete(self, upload: str, started: dict[str, Any], parts: list[Any]) -> httpx.Response:
        r: httpx.Response = self.client.post(
            f"/api/v1/uploads/{upload}/direct/{started['id']}/complete",
            json={"s3_upload_id": started["s3_upload_id"], "parts": parts},
        )
        return r

    def open_upload(self) -> str:
        r = self.client.post("/api/v1/uploads", json={})
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


def _put_parts(started: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    size = started["part_bytes"]
    parts = []
    with httpx.Client(timeout=60) as s3:
        for p in started["parts"]:
            n = p["part_number"]
            r = s3.put(p["url"], content=data[(n - 1) * size : n * size])
            assert r.status_code == 200, r.text
            parts.append({"part_number": n, "etag": r.headers["ETag"]})
    return parts


@pytest.fixture(params=[pytest.param(name, marks=pytest.mark.s3) for name in S3_SERVERS])
def rig(request: pytest.FixtureRequest, database_url: str, tmp_path: Path) -> Iterator[Rig]:
    s3: S3Server = request.getfixturevalue(f"{request.param}_s3_server")
    with fresh_bucket(client_for(s3)) as bucket:
        settings = make_settings(
            database_url,
            tmp_path / "artifacts",
            backend="s3",
            bucket=bucket,
            prefix=PREFIX,
            endpoint_url=s3.endpoint,
            access_key_id=s3.access_key_id,
            secret_access_key=s3.secret_access_key,
        )
        settings = settings.model_copy(
            update={"direct_uploads": DirectUploadSettings(threshold_bytes=MIB, part_bytes=PART)}
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            client.headers["Authorization"] = f"Bearer {bootstrap(database_url, unique('du'))}"
            yield Rig(client, s3, bucket)


def _lora(tmp_path: Path) -> tuple[Path, str]:
    """A LoRA whose weights file takes two parts; its bytes differ from every other test's."""
    seed = uuid.uuid4().int % 10**9
    directory = tmp_path / f"lora-{seed}"
    digest = write_big_lora(directory, data_bytes=PART + 2 * MIB, seed=seed)  # two parts
    return directory, digest


def test_cli_push_direct_then_pull(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, weights_hex = _lora(tmp_path)
    token = rig.client.headers["Authorization"].removeprefix("Bearer ")
    cli = cli_on_app(monkeypatch, rig.client, token)
    from registry.cli import app as cli_app

    args = ["adapters", "push", str(directory), "--adapter", f"{rig.namespace}/bot"]
    r = cli.invoke(cli_app, [*args, "--base", rig.base, "--no-wait", "--output", "json"])
    assert r.exit_code == 0, r.output
    pushed = json.loads(r.stdout)
    assert pushed["state"] == "verifying"
    assert rig.s3 is not None
    assert rig.bucket is not None
    s3 = client_for(rig.s3)
    # Not hashed yet: nothing published under the weights' digest, and no pull.
    found = s3.list_objects_v2(Bucket=rig.bucket, Prefix=blob_key(PREFIX, weights_hex))
    assert found.get("KeyCount", 0) == 0
    out = tmp_path / "pulled"
    r = cli.invoke(cli_app, ["adapters", "pull", pushed["ref"], "--to", str(out), "-o", "json"])
    assert r.exit_code == 5, r.output  # conflict
    assert json.loads(r.stdout)["error"] == "version_verifying"

    rig.run_verify_jobs()
    r = cli.invoke(cli_app, ["adapters", "pull", pushed["ref"], "--to", str(tmp_path / "p2")])
    assert r.exit_code == 0, r.output
    for f in ("adapter_config.json", "adapter_model.safetensors"):
        assert (tmp_path / "p2" / f).read_bytes() == (directory / f).read_bytes()
    version = rig.client.get(f"/api/v1/adapters/{rig.namespace}/bot/versions/v1").json()
    assert version["state"] == "validated"
    assert s3.head_object(Bucket=rig.bucket, Key=blob_key(PREFIX, weights_hex))


def test_declared_digest_mismatch_quarantines(rig: Rig, tmp_path: Path) -> None:
    directory, weights_hex = _lora(tmp_path)
    data = (directory / "adapter_model.safetensors").read_bytes()
    upload = rig.open_upload()
    config = (directory / "adapter_config.json").read_bytes()
    r = rig.client.put(
        f"/api/v1/uploads/{upload}/files/adapter_config.json",
        content=config,
        headers={"X-Content-Digest": f"sha256:{sha256_hex(config)}"},
    )
    assert r.status_code == 201, r.text
    lie = hashlib.sha256(b"something else").hexdigest()
    started = rig.start(upload, "adapter_model.safetensors", len(data), f"sha256:{lie}").json()
    assert rig.complete(upload, started, _put_parts(started, data)).status_code == 201
    r = rig.client.post(
        f"/api/v1/adapters/{rig.namespace}/bot/versions",
        json={"base": rig.base, "upload_id": upload},
    )
    assert r.status_code == 201, r.text
    assert r.json()["state"] == "verifying"
    rig.run_verify_jobs()
    version = rig.client.get(f"/api/v1/adapters/{rig.namespace}/bot/versions/v1").json()
    assert version["state"] == "quarantined"
    verification = version["verification"]
    assert verification["reason"] == "digest_mismatch"
    assert verification["file"] == "adapter_model.safetensors"
    # Never served: the declared digest could name another version's blob.
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        r = rig.client.get(f"/api/v1/adapters/{rig.namespace}/bot/versions/v1/files/{name}")
        assert (r.status_code, r.json()["error"]) == (409, "version_failed_verification")
    assert rig.s3 is not None
    assert rig.bucket is not None
    s3 = client_for(rig.s3)
    for hex_digest in (lie, weights_hex):  # neither the claim nor the bytes were published
        found = s3.list_objects_v2(Bucket=rig.bucket, Prefix=blob_key(PREFIX, hex_digest))
        assert found.get("KeyCount", 0) == 0
    staged = s3.list_objects_v2(Bucket=rig.bucket, Prefix=f"{PREFIX}/staging/{upload}/d")
    assert staged.get("KeyCount", 0) == 0  # the unverified bytes are not kept


def test_bad_part_lists_are_refused(rig: Rig, tmp_path: Path) -> None:
    directory, _ = _lora(tmp_path)
    data = (directory / "adapter_model.safetensors").read_bytes()
    digest = f"sha256:{sha256_hex(data)}"
    upload = rig.open_upload()
    started = rig.start(upload, "adapter_model.safetensors", len(data), digest).json()
    assert len(started["parts"]) == 2
    parts = _put_parts(started, data)
    bad: list[list[Any]] = [
        [parts[1], parts[0]],  # out of order
        [{**parts[0], "etag": '"0123456789abcdef0123456789abcdef"'}, parts[1]],  # unknown part
        [{**parts[0], "etag": "<x/>"}, parts[1]],  # not an ETag
    ]
    for body in bad:
        r = rig.complete(upload, started, body)
        assert r.status_code == 400, r.text
        assert r.json()["error"] == "invalid_part_list", r.text
    r = rig.complete(upload, {**started, "s3_upload_id": "nope"}, parts)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_part_list")
    assert rig.client.get(f"/api/v1/uploads/{upload}").json()["files"] == []
    # Only part 1: S3 completes it, but it is not the declared size: deleted, refused.
    r = rig.complete(upload, started, parts[:1])
    assert (r.status_code, r.json()["error"]) == (400, "invalid_part_list"), r.text
    assert r.json()["context"]["reason"] == "size"
    assert rig.client.get(f"/api/v1/uploads/{upload}").json()["files"] == []


def test_start_refusals(rig: Rig, tmp_path: Path) -> None:
    upload = rig.open_upload()
    digest = "sha256:" + "ab" * 32
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"name": "model.pkl"}, 400, "forbidden_file"),
        ({"digest": "md5:abc"}, 400, "invalid_digest"),
        ({"size": 0}, 400, "bad_request"),
        ({"size": 10**15}, 413, "payload_too_large"),
        ({"adapter": "no-slash"}, 400, "invalid_name"),
    ]
    for extra, status, code in cases:
        body: dict[str, Any] = {
            "name": "adapter_model.safetensors",
            "size": 10,
            "digest": digest,
            **extra,
        }
        r = rig.start(upload, **body)
        assert (r.status_code, r.json()["error"]) == (status, code), (extra, r.text)
    r = rig.start(str(uuid.uuid4()), "adapter_model.safetensors", 10, digest)
    assert (r.status_code, r.json()["error"]) == (404, "upload_not_found")


def test_caller_who_may_not_push_gets_403(rig: Rig) -> None:
    other = create_namespace(rig.client)
    dev = make_principal(rig.client, "developer", [other])  # may push to ``other`` only
    headers = {"Authorization": f"Bearer {dev.token}"}
    r = rig.client.post("/api/v1/uploads", json={}, headers=headers)
    assert r.status_code == 201, r.text
    upload = r.json()["id"]
    body = {"name": "adapter_model.safetensors", "size": 10, "digest": "sha256:" + "ab" * 32}
    r = rig.client.post(
        f"/api/v1/uploads/{upload}/direct",
        json={**body, "adapter": f"{rig.namespace}/bot"},
        headers=headers,
    )
    assert r.status_code == 403, r.text
    assert "parts" not in r.json()
    # Someone else's session is not found, whatever the adapter.
    admin_upload = rig.open_upload()
    r = rig.client.post(
        f"/api/v1/uploads/{admin_upload}/direct",
        json={**body, "adapter": f"{other}/bot"},
        headers=headers,
    )
    assert (r.status_code, r.json()["error"]) == (404, "upload_not_found")


def test_verifying_version_cannot_serve(rig: Rig, tmp_path: Path) -> None:
    from registry.traffic.moves import _require_servable

    directory, _ = _lora(tmp_path)
    data = (directory / "adapter_model.safetensors").read_bytes()
    upload = rig.open_upload()
    config = (directory / "adapter_config.json").read_bytes()
    rig.client.put(
        f"/api/v1/uploads/{upload}/files/adapter_config.json",
        content=config,
        headers={"X-Content-Digest": f"sha256:{sha256_hex(config)}"},
    )
    digest = f"sha256:{sha256_hex(data)}"
    started = rig.start(upload, "adapter_model.safetensors", len(data), digest).json()
    assert rig.complete(upload, started, _put_parts(started, data)).status_code == 201
    r = rig.client.post(
        f"/api/v1/adapters/{rig.namespace}/bot/versions",
        json={"base": rig.base, "upload_id": upload},
    )
    assert r.status_code == 201, r.text
    version = r.json()
    r = rig.client.get(
        f"/api/v1/adapters/{rig.namespace}/bot/versions/v1/files/adapter_model.safetensors"
    )
    assert (r.status_code, r.json()["error"]) == (409, "version_verifying")
    with unit_of_work(rig.env.sessions.read) as session:
        row = session.query(AdapterVersion).filter_by(digest=version["digest"]).one()
        with pytest.raises(VersionVerifying):
            _require_servable(session, row.id)
    rig.run_verify_jobs()
    r = rig.client.get(
        f"/api/v1/adapters/{rig.namespace}/bot/versions/v1/files/adapter_model.safetensors"
    )
    assert r.status_code == 200
    assert r.content == data


def test_housekeeping_aborts_abandoned_uploads(rig: Rig) -> None:
    upload = rig.open_upload()
    started = rig.start(upload, "adapter_model.safetensors", 2 * PART, "sha256:" + "ab" * 32)
    assert started.status_code == 201, started.text
    assert rig.s3 is not None
    assert rig.bucket is not None
    s3 = client_for(rig.s3)
    prefix = f"{PREFIX}/staging/{upload}/"
    assert s3.list_multipart_uploads(Bucket=rig.bucket, Prefix=prefix).get("Uploads")
    later = datetime.now(UTC) + timedelta(days=2)
    with unit_of_work(rig.env.sessions.write) as session:
        assert expire_sessions(session, rig.env.store, now=later) >= 1
    assert not s3.list_multipart_uploads(Bucket=rig.bucket, Prefix=prefix).get("Uploads")


def test_local_backend_falls_back_to_the_api(
    client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin_token: str
) -> None:
    r = client.post("/api/v1/uploads", json={})
    assert r.status_code == 201
    assert r.json()["direct"] is None
    upload = r.json()["id"]
    body = {"adapter": "x/y", "name": "adapter_model.safetensors", "size": 10}
    r = client.post(
        f"/api/v1/uploads/{upload}/direct", json={**body, "digest": "sha256:" + "ab" * 32}
    )
    assert (r.status_code, r.json()["error"]) == (409, "direct_upload_unsupported")
    namespace = create_namespace(client)
    base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-gpt2")
    directory = tmp_path / "lora"
    write_big_lora(directory, data_bytes=2 * MIB, seed=3)
    cli = cli_on_app(monkeypatch, client, admin_token)
    from registry.cli import app as cli_app

    args = ["adapters", "push", str(directory), "--adapter", f"{namespace}/bot", "--base", base]
    r = cli.invoke(cli_app, [*args, "--output", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["state"] == "validated"
