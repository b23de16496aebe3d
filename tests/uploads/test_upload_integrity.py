"""The bytes served are the bytes pushed: a real server process on the local and the S3 backend
(on each S3 server of tests/fixtures/s3.py: moto, SeaweedFS), on the selected database dialect.

- Many parallel PUTs into one upload session: every PUT either lands (201) or is refused with
  409 ``upload_state_conflict``; no 201'd file silently disappears from the session; after the
  version is registered every file served hashes to its listed digest. The text extras all have
  the same size, which is what once let one file's bytes be published under another file's
  digest (two PUTs shared a staging key, and publishing checked only the size).
- A damaged object already at a digest's key (right size, wrong bytes) is replaced by an honest
  push of that content, not kept and served.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest
from fastapi.testclient import TestClient

from registry.db.engine import make_engine
from registry.db.session import Sessions, unit_of_work
from registry.errors import UploadStateConflict
from registry.settings import Settings
from registry.storage.base import ArtifactStore
from registry.storage.factory import make_store
from registry.uploads import service as uploads
from registry.uploads.repository import UploadRepository
from tests.factories.catalog import (
    create_namespace,
    open_upload,
    put_file,
    register_base,
    sha256_hex,
    unique,
)
from tests.fixtures.app import bootstrap
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.s3 import S3_SERVERS, S3Server, client_for, fresh_bucket
from tests.fixtures.server import LiveServer, server_env, start_server, stop_server

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

SRC = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
ROUNDS = 3
COPIES = 2  # every name is PUT this many times at once (different bytes for the text extras)
EXTRA_SIZE = 3000
JSON_EXTRAS = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "chat_template.json",
    "vocab.json",
)
TEXT_EXTRAS = ("README.md", "chat_template.jinja", "merges.txt")


@pytest.fixture(
    params=["local", *(pytest.param(name, marks=pytest.mark.s3) for name in S3_SERVERS)]
)
def server(
    request: pytest.FixtureRequest,
    database_url: str,
    tmp_path: Path,
) -> Iterator[LiveServer]:
    """A uvicorn process on this worker's database, on the local backend or the S3 backend on
    one S3 server (``moto``, ``seaweedfs``)."""
    if request.param == "local":
        yield request.getfixturevalue("live_server")
        return
    s3: S3Server = request.getfixturevalue(f"{request.param}_s3_server")
    with fresh_bucket(client_for(s3)) as bucket:
        env = server_env(database_url, tmp_path / "artifacts", REGISTRY_CONTROLLER__ENABLED="false")
        env.update(
            REGISTRY_STORAGE__BACKEND="s3",
            REGISTRY_STORAGE__BUCKET=bucket,
            REGISTRY_STORAGE__PREFIX="registry",
            REGISTRY_STORAGE__ENDPOINT_URL=s3.endpoint,
            REGISTRY_STORAGE__ACCESS_KEY_ID=s3.access_key_id,
            REGISTRY_STORAGE__SECRET_ACCESS_KEY=s3.secret_access_key,
        )
        proc, url = start_server(env, tmp_path / "server.log")
        try:
            yield LiveServer(url=url, token=bootstrap(database_url, unique("s3")), env=env)
        finally:
            stop_server(proc)


def _client(server: LiveServer) -> httpx.Client:
    # 30 s is a hang guard (a regression fails instead of hanging), not a timing assertion.
    return httpx.Client(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {server.token}"}
    )


def _setup(server: LiveServer) -> tuple[str, str]:
    with _client(server) as c:
        ns = create_namespace(c, unique("par"))
        base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2")
    return ns, base


def _extra(name: str, rng: random.Random) -> bytes:
    """EXTRA_SIZE bytes of valid content for ``name`` (JSON for .json files)."""
    if name.endswith(".json"):
        pad = EXTRA_SIZE - len(b'{"pad":""}')
        return json.dumps({"pad": rng.randbytes(pad // 2).hex()}, separators=(",", ":")).encode()
    return rng.randbytes(EXTRA_SIZE // 2).hex().encode()


def _jobs(rng: random.Random) -> list[tuple[str, bytes]]:
    """(name, bytes) of every PUT of one round: each name COPIES times; the copies of a text
    extra differ in content but not in size."""
    jobs: list[tuple[str, bytes]] = []
    for _ in range(COPIES):
        jobs += [(p.name, p.read_bytes()) for p in SRC.iterdir() if p.name != "README.md"]
        jobs += [(n, _extra(n, rng)) for n in (*JSON_EXTRAS, *TEXT_EXTRAS)]
    assert len({len(data) for name, data in jobs if name in JSON_EXTRAS + TEXT_EXTRAS}) == 1
    return jobs


def _put_all(server: LiveServer, upload: str, jobs: list[tuple[str, bytes]]) -> list[int]:
    barrier = threading.Barrier(len(jobs))

    def put(job: tuple[str, bytes]) -> int:
        name, data = job
        with _client(server) as c:
            barrier.wait()
            r = c.put(
                f"/api/v1/uploads/{upload}/files/{name}",
                content=data,
                headers={"X-Content-Digest": f"sha256:{sha256_hex(data)}"},
            )
        if r.status_code != 201:
            assert r.status_code == 409, r.text
            assert r.json()["error"] == "upload_state_conflict", r.text
        return r.status_code

    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        return list(pool.map(put, jobs))


def test_parallel_puts_never_lose_or_swap_files(server: LiveServer) -> None:
    ns, base = _setup(server)
    rng = random.Random(11)
    for round_ in range(ROUNDS):
        jobs = _jobs(rng)
        with _client(server) as c:
            upload = c.post("/api/v1/uploads", json={}).json()["id"]
        codes = _put_all(server, upload, jobs)

        landed: dict[str, set[str]] = defaultdict(set)
        for (name, data), code in zip(jobs, codes, strict=True):
            if code == 201:
                landed[name].add(f"sha256:{sha256_hex(data)}")
        with _client(server) as c:
            files = c.get(f"/api/v1/uploads/{upload}").json()["files"]
        listed = {f["name"]: f["digest"] for f in files}
        # Every name that got a 201 is listed, with the digest of one of its 201'd PUTs
        # (two PUTs of one name: the later one replaces the earlier one).
        assert set(listed) == set(landed), (round_, codes)
        for name, digest in listed.items():
            assert digest in landed[name], name

        with _client(server) as c:
            r = c.post(
                f"/api/v1/adapters/{ns}/bot/versions", json={"base": base, "upload_id": upload}
            )
            assert r.status_code == 201, r.text
            version = r.json()
            assert {f["name"]: f["digest"] for f in version["files"]} == listed
            for f in version["files"]:
                got = c.get(
                    f"/api/v1/adapters/{ns}/bot/versions/v{version['version']}/files/{f['name']}"
                )
                assert got.status_code == 200, got.text
                served = "sha256:" + hashlib.sha256(got.content).hexdigest()
                assert served == f["digest"], f["name"]


def _plant(server: LiveServer, s3_client: S3Client | None, hex_digest: str, data: bytes) -> None:
    """Write ``data`` at the blob key of ``hex_digest`` behind the server's back."""
    env = server.env
    if env["REGISTRY_STORAGE__BACKEND"] == "s3":
        assert s3_client is not None
        s3_client.put_object(
            Bucket=env["REGISTRY_STORAGE__BUCKET"],
            Key=f"{env['REGISTRY_STORAGE__PREFIX']}/blobs/sha256/{hex_digest[:2]}/{hex_digest}",
            Body=data,
        )
        return
    path = Path(env["REGISTRY_STORAGE__ROOT"]) / "blobs" / "sha256" / hex_digest[:2] / hex_digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_damaged_blob_of_the_right_size_is_not_reused(
    server: LiveServer, request: pytest.FixtureRequest
) -> None:
    leg = request.node.callspec.params["server"]
    s3 = client_for(request.getfixturevalue(f"{leg}_s3_server")) if leg != "local" else None
    ns, base = _setup(server)
    readme = f"# honest adapter {unique()}\n".encode()
    digest = sha256_hex(readme)
    _plant(server, s3, digest, bytes(len(readme)))  # same size, all zeros

    with _client(server) as c:
        upload = c.post("/api/v1/uploads", json={}).json()["id"]
        files = {p.name: p.read_bytes() for p in SRC.iterdir()} | {"README.md": readme}
        for name, data in files.items():
            r = c.put(
                f"/api/v1/uploads/{upload}/files/{name}",
                content=data,
                headers={"X-Content-Digest": f"sha256:{sha256_hex(data)}"},
            )
            assert r.status_code == 201, r.text
        r = c.post(
            f"/api/v1/adapters/{ns}/honest/versions", json={"base": base, "upload_id": upload}
        )
        assert r.status_code == 201, r.text
        got = c.get(f"/api/v1/adapters/{ns}/honest/versions/v1/files/README.md")
    assert got.status_code == 200, got.text
    assert got.content == readme


class TestSessionChangesUnderRegistration:
    """The session a registration validated is the session it commits (checked under the
    session row lock). Driven step by step through the service layer on the real database and
    store, because the interleaving (a PUT landing between validation and commit) cannot be
    timed over HTTP without sleeps."""

    @staticmethod
    def _validated(
        settings: Settings, upload_id: str
    ) -> tuple[Sessions, ArtifactStore, list[uploads.StagedFile]]:
        engine = make_engine(settings.database)
        sessions = Sessions(engine)
        store = make_store(settings.storage)
        with unit_of_work(sessions.read) as session:
            files = UploadRepository(session).files(uuid.UUID(upload_id))
        return sessions, store, uploads.open_staged_files(store, files)

    @staticmethod
    def _record(sessions: Sessions, upload_id: str, staged: list[uploads.StagedFile]) -> None:
        with unit_of_work(sessions.write) as session:
            upload = UploadRepository(session).get(uuid.UUID(upload_id))
            assert upload is not None
            uploads.record_upload(session, upload=upload, files=staged)

    @pytest.mark.parametrize("change", ["replace", "add"])
    def test_put_after_validation_makes_registration_conflict(
        self, client: TestClient, settings: Settings, change: str
    ) -> None:
        upload_id = open_upload(client)
        assert put_file(client, upload_id, "README.md", b"# first\n").status_code == 201
        sessions, _store, staged = self._validated(settings, upload_id)
        try:
            name = "README.md" if change == "replace" else "merges.txt"
            assert put_file(client, upload_id, name, b"# second\n").status_code == 201

            with pytest.raises(UploadStateConflict):
                self._record(sessions, upload_id, staged)
            assert client.get(f"/api/v1/uploads/{upload_id}").json()["state"] == "open"
        finally:
            sessions.engine.dispose()

    def test_second_registration_of_one_upload_conflicts(
        self, client: TestClient, settings: Settings
    ) -> None:
        upload_id = open_upload(client)
        assert put_file(client, upload_id, "README.md", b"# once\n").status_code == 201
        sessions, _store, staged = self._validated(settings, upload_id)
        try:
            self._record(sessions, upload_id, staged)
            with pytest.raises(UploadStateConflict):
                self._record(sessions, upload_id, staged)
        finally:
            sessions.engine.dispose()


def test_replaced_file_leaves_one_staging_object(client: TestClient, settings: Settings) -> None:
    upload_id = open_upload(client)
    for text in (b"# one\n", b"# two\n", b"# three\n"):
        assert put_file(client, upload_id, "README.md", text).status_code == 201
    staged = [p for p in (Path(settings.storage.root) / "staging" / upload_id).iterdir()]
    assert [p.read_bytes() for p in staged] == [b"# three\n"]
