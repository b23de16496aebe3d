"""``POST /api/v1/tokens`` (and ``.../revoke``) honour ``Idempotency-Key`` like every POST.

A retried mint gets the same token back (one token row, not two), while the idempotency store
holds the secret only sealed to the caller's credential: another credential cannot read the
replay, and the database never holds the token in the clear.
"""

from __future__ import annotations

import uuid

from fastapi.testclient import TestClient
from sqlalchemy import text

from registry.auth.tokens import hash_token
from registry.db.engine import make_engine
from registry.settings import DatabaseSettings
from tests.factories.catalog import create_namespace, unique
from tests.factories.governance import auth, make_principal


def _stored_answers(database_url: str, key: str) -> list[str]:
    engine = make_engine(DatabaseSettings(url=database_url))
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT response FROM idempotency_records WHERE key = :k"), {"k": key}
            )
            return [str(r[0]) for r in rows]
    finally:
        engine.dispose()


def test_retried_mint_replays_the_same_token(client: TestClient, database_url: str) -> None:
    dev = make_principal(client, "developer", [create_namespace(client)])
    key = str(uuid.uuid4())
    headers = {**dev.headers, "Idempotency-Key": key}
    body = {"name": unique("laptop")}
    first = client.post("/api/v1/tokens", json=body, headers=headers)
    again = client.post("/api/v1/tokens", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    minted = first.json()["token"]
    listed = client.get("/api/v1/tokens", headers=dev.headers).json()["items"]
    assert [t["id"] for t in listed if t["name"] == body["name"]] == [first.json()["id"]]
    assert client.get("/api/v1/namespaces", headers=auth(minted)).status_code == 200
    # The stored answer keeps the secret sealed: neither the token nor its hash is in it.
    stored = _stored_answers(database_url, key)
    assert len(stored) == 1
    assert minted not in stored[0]
    assert hash_token(minted) not in stored[0]


def test_replay_by_another_credential_is_refused(client: TestClient) -> None:
    dev = make_principal(client, "developer", [create_namespace(client)])
    second = client.post("/api/v1/tokens", json={"name": "second"}, headers=dev.headers)
    key = str(uuid.uuid4())
    body = {"name": unique("ci")}
    first = client.post(
        "/api/v1/tokens", json=body, headers={**dev.headers, "Idempotency-Key": key}
    )
    assert first.status_code == 201
    # Same principal, same key and body, another credential: it cannot open the sealed token.
    other = auth(second.json()["token"]) | {"Idempotency-Key": key}
    r = client.post("/api/v1/tokens", json=body, headers=other)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "idempotency_key_reused"


def test_same_key_other_body_and_malformed_key(client: TestClient) -> None:
    key = str(uuid.uuid4())
    headers = {"Idempotency-Key": key}
    assert client.post("/api/v1/tokens", json={"name": "a"}, headers=headers).status_code == 201
    r = client.post("/api/v1/tokens", json={"name": "b"}, headers=headers)
    assert (r.status_code, r.json()["error"]) == (422, "idempotency_key_reused")
    r = client.post("/api/v1/tokens", json={"name": "c"}, headers={"Idempotency-Key": "a b"})
    assert (r.status_code, r.json()["error"]) == (400, "bad_request")


def test_revoke_honours_idempotency_key(client: TestClient) -> None:
    minted = client.post("/api/v1/tokens", json={"name": unique("t")}).json()
    url = f"/api/v1/tokens/{minted['id']}/revoke"
    r = client.post(url, headers={"Idempotency-Key": "a b"})
    assert (r.status_code, r.json()["error"]) == (400, "bad_request")
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = client.post(url, headers=key)
    again = client.post(url, headers=key)
    assert first.status_code == again.status_code == 200
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
