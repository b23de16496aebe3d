"""A frozen PostgreSQL or S3 never freezes the API (issue 11, point 6).

``adapter-registry serve`` runs with its database or its object store behind a TCP proxy that
can freeze (tests/fixtures/faults.py: stopping the shared PostgreSQL or moto is not possible on
this machine, a frozen network path is the same fault seen from the client). Short timeouts keep
the test quick; nothing here asserts a duration — every client call has a generous hang guard,
so a server that waits for a frozen dependency fails the test instead of passing slowly.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy.engine import make_url

from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.fixtures.db import dialect
from tests.fixtures.faults import FreezableProxy, freezable_proxy
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.s3 import S3Server
from tests.fixtures.server import LiveServer, serving

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

GUARD_S = 30
ADAPTER = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
BASE = PEFT_FIXTURES / "bases" / "tiny-gpt2"


@pytest.fixture(scope="session")
def s3_server(moto_s3_server: S3Server) -> S3Server:
    """Moto only: these tests freeze the network path to the store (a proxy), which is the same
    fault whatever the server behind it; a second server would only double their ~25 s."""
    return moto_s3_server


def _until(predicate: object, attempts: int = 100, pause_s: float = 0.2) -> bool:
    """Poll ``predicate`` a bounded number of times (recovery happens asynchronously)."""
    for _ in range(attempts):
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(pause_s)
    return False


@pytest.fixture
def frozen_db_server(
    database_url: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, FreezableProxy]]:
    if dialect() != "postgresql":
        pytest.skip("a frozen database server is PostgreSQL's failure (SQLite is in-process)")
    url = make_url(database_url)
    with (
        freezable_proxy(url.host or "127.0.0.1", url.port or 5432) as proxy,
        serving(
            database_url,
            tmp_path,
            REGISTRY_DATABASE__URL=url.set(host="127.0.0.1", port=proxy.port).render_as_string(
                hide_password=False
            ),
            REGISTRY_AUTH__TOKEN_CACHE_S="60",
            REGISTRY_DATABASE__STATEMENT_TIMEOUT_MS="1000",
            REGISTRY_DATABASE__CLIENT_GRACE_S="1",
            REGISTRY_DATABASE__POOL_TIMEOUT_S="1",
            REGISTRY_DATABASE__CONNECT_TIMEOUT_S="1",
            REGISTRY_SERVER__READINESS_TIMEOUT_S="1",
        ) as server,
    ):
        yield server, proxy


def test_frozen_database_health_ready_and_requests(
    frozen_db_server: tuple[LiveServer, FreezableProxy],
) -> None:
    server, proxy = frozen_db_server
    auth = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, timeout=GUARD_S) as client:
        assert client.get("/readyz").status_code == 200
        assert client.get("/api/v1/namespaces", headers=auth).status_code == 200  # token cached
        proxy.freeze()
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["database"] in ("timeout", "connection", "no_answer")
        assert "Retry-After" in ready.headers
        # Requests needing the database answer 503 with Retry-After instead of hanging.
        r = client.get("/api/v1/namespaces", headers=auth)
        assert r.status_code == 503
        assert r.json()["error"] == "database_unavailable"
        assert "Retry-After" in r.headers
        assert client.get("/healthz").status_code == 200  # still answering
        proxy.thaw()
        assert _until(lambda: client.get("/readyz").status_code == 200)
        assert _until(lambda: client.get("/api/v1/namespaces", headers=auth).status_code == 200)


@contextlib.contextmanager
def _s3_server(
    database_url: str, moto_endpoint: str, bucket: str, tmp_path: Path, **extra: str
) -> Iterator[tuple[LiveServer, FreezableProxy]]:
    endpoint = urlsplit(moto_endpoint)
    with (
        freezable_proxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80) as proxy,
        serving(
            database_url,
            tmp_path,
            REGISTRY_STORAGE__BACKEND="s3",
            REGISTRY_STORAGE__BUCKET=bucket,
            REGISTRY_STORAGE__ENDPOINT_URL=f"http://{proxy.address}",
            REGISTRY_STORAGE__ACCESS_KEY_ID="testing",
            REGISTRY_STORAGE__SECRET_ACCESS_KEY="testing",
            REGISTRY_STORAGE__CONNECT_TIMEOUT_S="1",
            REGISTRY_STORAGE__MAX_ATTEMPTS="1",
            REGISTRY_SERVER__READINESS_TIMEOUT_S="1",
            **extra,
        ) as server,
    ):
        yield server, proxy


@pytest.fixture
def frozen_s3_server(
    database_url: str, moto_endpoint: str, s3_bucket: str, tmp_path: Path
) -> Iterator[tuple[LiveServer, FreezableProxy]]:
    with _s3_server(
        database_url,
        moto_endpoint,
        s3_bucket,
        tmp_path,
        REGISTRY_STORAGE__READ_TIMEOUT_S="1",
        REGISTRY_STORAGE__BREAKER_THRESHOLD="2",
        REGISTRY_STORAGE__BREAKER_COOLDOWN_S="1",
        REGISTRY_DATABASE__POOL_SIZE="2",
        REGISTRY_DATABASE__MAX_OVERFLOW="0",
    ) as server:
        yield server


@pytest.mark.s3
def test_frozen_object_store_fails_fast_and_frees_the_database(
    frozen_s3_server: tuple[LiveServer, FreezableProxy],
) -> None:
    server, proxy = frozen_s3_server
    auth = {"Authorization": f"Bearer {server.token}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=GUARD_S) as client:
        assert client.get("/readyz").status_code == 200
        uploads = [client.post("/api/v1/uploads").json()["id"] for _ in range(6)]
        proxy.freeze()

        # Six uploads stuck on the store at once, with two database connections in the pool:
        # none of them may hold a connection while it waits, so other requests keep working.
        results: list[int] = []

        def put(upload_id: str) -> None:
            r = httpx.put(
                f"{server.url}/api/v1/uploads/{upload_id}/files/README.md",
                content=b"# hello\n" * 1000,
                headers={**auth, "X-Content-Digest": "sha256:" + "0" * 64},
                timeout=GUARD_S,
            )
            results.append(r.status_code)

        threads = [threading.Thread(target=put, args=(u,)) for u in uploads]
        for t in threads:
            t.start()
        assert _until(lambda: proxy.held_requests >= 2 or len(results) == len(threads))
        ns = client.post("/api/v1/namespaces", json={"name": unique("ns")})
        assert ns.status_code == 201
        assert client.get("/healthz").status_code == 200
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["storage"].startswith(("timeout", "storage_unavailable"))
        assert ready.json()["checks"]["database"] == "ok"
        for t in threads:
            t.join(GUARD_S)
        assert len(results) == len(threads)
        assert all(code == 503 for code in results), results

        # The breaker is open now: a store call fails at once, with a reason and Retry-After.
        r = client.put(
            f"/api/v1/uploads/{uploads[0]}/files/README.md",
            content=b"x",
            headers={"X-Content-Digest": "sha256:" + "0" * 64},
        )
        assert r.status_code == 503
        assert r.json()["error"] == "storage_unavailable"
        assert "Retry-After" in r.headers

        proxy.thaw()
        assert _until(lambda: client.get("/readyz").status_code == 200)
        fresh = client.post("/api/v1/uploads").json()["id"]
        body = b"# recovered\n"

        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        assert _until(
            lambda: (
                client.put(
                    f"/api/v1/uploads/{fresh}/files/README.md",
                    content=body,
                    headers={"X-Content-Digest": digest},
                ).status_code
                == 201
            )
        )


IMPORT_PREFIX = "training-out/slow/"


@pytest.mark.s3
def test_slow_import_never_blocks_other_writes(
    database_url: str,
    moto_endpoint: str,
    s3_bucket: str,
    s3_client: S3Client,
    tmp_path: Path,
) -> None:
    """Issue 11 point 7: ``register --from s3://`` copies and validates before its write
    transaction. With the store frozen mid-registration, another write commits at once — on
    SQLite the old code held the database-wide write lock for the whole import, and the other
    write got ``503 database is locked`` after the (short, here) busy timeout."""
    for path in sorted(ADAPTER.iterdir()):
        s3_client.put_object(
            Bucket=s3_bucket, Key=IMPORT_PREFIX + path.name, Body=path.read_bytes()
        )
    with _s3_server(
        database_url,
        moto_endpoint,
        s3_bucket,
        tmp_path,
        REGISTRY_STORAGE__READ_TIMEOUT_S="10",
        REGISTRY_STORAGE__IMPORT_ALLOWLIST=f'["s3://{s3_bucket}/{IMPORT_PREFIX}"]',
        REGISTRY_DATABASE__SQLITE_BUSY_TIMEOUT_MS="1000",
    ) as (server, proxy):
        auth = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=GUARD_S) as client:
            ns = create_namespace(client)
            base = register_base(client, BASE)
            body = {"base": base, "source_uri": f"s3://{s3_bucket}/{IMPORT_PREFIX}"}
            proxy.freeze()
            outcome: list[int] = []
            slow = threading.Thread(
                target=lambda: outcome.append(
                    client.post(f"/api/v1/adapters/{ns}/imported/versions", json=body).status_code
                )
            )
            slow.start()
            # The registration is now waiting on the store, inside its slow phase.
            assert _until(lambda: proxy.held_requests >= 1)
            other = client.post("/api/v1/namespaces", json={"name": unique("other")})
            assert other.status_code == 201, other.text
            proxy.thaw()
            slow.join(GUARD_S)
            assert outcome
            assert outcome[0] in (201, 503)  # the frozen call may have failed: retry
            if outcome[0] != 201:
                assert _until(
                    lambda: (
                        client.post(
                            f"/api/v1/adapters/{ns}/imported/versions", json=body
                        ).status_code
                        == 201
                    )
                )
            versions = client.get(f"/api/v1/adapters/{ns}/imported/versions").json()["items"]
            assert [v["version"] for v in versions] == [1]


@pytest.mark.s3
def test_downloads_from_a_frozen_store_hold_no_database_connection(
    database_url: str, moto_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    """Downloads look the file up in a short read transaction and release the connection
    before talking to the store: eight downloads stuck on a frozen store with two pooled
    connections (PostgreSQL's pool; SQLite's is not bounded by these settings) leave the
    database free for others (before: every download held one, the
    pool ran out, and requests answered 500), and each download answers 503, not 500."""
    with _s3_server(
        database_url,
        moto_endpoint,
        s3_bucket,
        tmp_path,
        REGISTRY_STORAGE__READ_TIMEOUT_S="12",
        REGISTRY_STORAGE__BREAKER_THRESHOLD="1000",
        REGISTRY_DATABASE__POOL_SIZE="2",
        REGISTRY_DATABASE__MAX_OVERFLOW="0",
        REGISTRY_DATABASE__POOL_TIMEOUT_S="1",
    ) as (server, proxy):
        auth = {"Authorization": f"Bearer {server.token}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=GUARD_S) as client:
            ns = create_namespace(client)
            pushed = push(client, ns, "bot", ADAPTER, register_base(client, BASE))
            assert pushed.status_code == 201, pushed.text
            file_url = f"/api/v1/adapters/{ns}/bot/versions/v1/files/adapter_config.json"
            assert client.get(file_url).status_code == 200
            proxy.freeze()
            results: list[int] = []
            threads = [
                threading.Thread(target=lambda: results.append(client.get(file_url).status_code))
                for _ in range(8)
            ]
            for t in threads:
                t.start()
            assert _until(lambda: proxy.held_requests >= 2 or len(results) == len(threads))
            for _ in range(3):  # while the downloads wait on the store (12 s each)
                # A hang guard shorter than the downloads' wait: a request queued behind
                # connections that the downloads hold fails here instead of passing late.
                assert client.get("/api/v1/namespaces", timeout=6).status_code == 200
            for t in threads:
                t.join(GUARD_S)
            assert len(results) == len(threads)
            assert set(results) == {503}, results
            proxy.thaw()
            assert _until(lambda: client.get(file_url).status_code == 200)
