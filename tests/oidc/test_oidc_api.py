"""Trusted publishing end to end: a local OIDC issuer (keys made here), publishers bound to a
service principal and namespaces, the token exchange, pushes with the CI token, the CI identity
stored on the version, four-eyes against the human behind it, and single use under a race."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from registry.app import create_app
from registry.oidc_settings import OidcSettings
from registry.settings import Settings
from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.factories.governance import (
    auth,
    create_deployment,
    decide,
    make_principal,
    record_eval,
    request_promotion,
)
from tests.fixtures.app import bootstrap
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import server_env, start_server, stop_server
from tests.oidc.local_issuer import AUDIENCE, LocalIssuer, SigningKey, github_claims, sign


@pytest.fixture(scope="module")
def signing_key() -> SigningKey:
    return SigningKey.generate("ci-key-1")


@pytest.fixture(scope="module")
def issuer(signing_key: SigningKey) -> Iterator[LocalIssuer]:
    local = LocalIssuer([signing_key]).start()
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(autouse=True)
def _no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def oidc_client(settings: Settings, database_url: str) -> Iterator[TestClient]:
    """The app with loopback http issuers allowed (the local issuer is http://127.0.0.1)."""
    local = settings.model_copy(update={"oidc": OidcSettings(allow_insecure_loopback=True)})
    admin = bootstrap(database_url, unique("oidc-admin"))
    with TestClient(create_app(local), raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {admin}"
        yield c


def _publisher(
    client: TestClient, issuer: LocalIssuer, namespaces: list[str], workflow: str = "train"
) -> str:
    """A publisher for ``acme/trainer``'s workflow ``<workflow>.yml`` on main."""
    name = unique("pub")
    body = {
        "name": name,
        "issuer": issuer.url,
        "audience": AUDIENCE,
        "repository": "acme/trainer",
        "repository_owner_id": "1001",
        "workflow_ref": f"acme/trainer/.github/workflows/{workflow}.yml",
        "ref": "refs/heads/main",
        "principal": unique("ci"),
        "namespaces": namespaces,
    }
    r = client.post("/api/v1/publishers", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["principal"])


def _token(issuer: LocalIssuer, key: SigningKey, workflow: str = "train", **overrides: Any) -> str:
    ref = f"acme/trainer/.github/workflows/{workflow}.yml@refs/heads/main"
    claims = {"job_workflow_ref": ref, "workflow_ref": ref, **overrides}
    return sign(github_claims(issuer.url, now=time.time(), **claims), key)


def test_publisher_refuses_plain_http_issuer_without_the_loopback_setting(
    client: TestClient,
) -> None:
    ns = create_namespace(client)
    r = client.post(
        "/api/v1/publishers",
        json={
            "name": unique("pub"),
            "issuer": "http://127.0.0.1:9/",
            "audience": "a",
            "repository": "acme/x",
            "repository_owner_id": "1",
            "workflow_ref": "acme/x/.github/workflows/t.yml",
            "principal": unique("ci"),
            "namespaces": [ns],
        },
    )
    assert r.status_code == 400


def test_exchange_push_and_identity_on_the_version(
    oidc_client: TestClient, issuer: LocalIssuer, signing_key: SigningKey, tmp_path: Path
) -> None:
    wf = unique("wf")
    c = oidc_client
    ns = create_namespace(c)
    base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    principal = _publisher(c, issuer, [ns], workflow=wf)
    r = c.post("/api/v1/oidc/token", headers=auth(_token(issuer, signing_key, wf, actor="Alice")))
    assert r.status_code == 201, r.text
    minted = r.json()
    assert minted["principal"] == principal
    assert minted["identity"]["repository"] == "acme/trainer"
    # The minted token pushes; the version records the verified identity.
    adapter = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
    previous = c.headers["Authorization"]
    c.headers["Authorization"] = f"Bearer {minted['token']}"
    try:
        pushed = push(c, ns, "bot", adapter, base)
        # CI may not approve, manage principals, or create deployments.
        assert c.get("/api/v1/principals").status_code == 403
    finally:
        c.headers["Authorization"] = previous
    assert pushed.status_code == 201, pushed.text
    detail = c.get(f"/api/v1/adapters/{ns}/bot/versions/1").json()
    assert detail["registered_by"] == principal
    ci = detail["ci_identity"]
    assert ci["repository"] == "acme/trainer"
    assert ci["workflow_ref"] == f"acme/trainer/.github/workflows/{wf}.yml@refs/heads/main"
    assert ci["sha"] == "a" * 40
    assert ci["run_id"] == "123456"
    assert ci["actor"] == "Alice"
    assert "jti" not in ci


def test_exchanged_token_is_attenuated_and_cannot_mint(
    oidc_client: TestClient, issuer: LocalIssuer, signing_key: SigningKey
) -> None:
    """Issue 11, point 11: the exchange takes nothing from the caller; its token holds the CI
    scopes only, lives REGISTRY_OIDC__TOKEN_TTL_S, and cannot mint a wider token."""
    wf = unique("wf")
    c = oidc_client
    _publisher(c, issuer, [create_namespace(c)], workflow=wf)
    r = c.post(
        "/api/v1/oidc/token",
        json={"scopes": None, "ttl_days": None},  # ignored: the exchange reads no body
        headers=auth(_token(issuer, signing_key, wf)),
    )
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    listed = c.get("/api/v1/tokens", params={"principal": r.json()["principal"], "limit": 1})
    (row,) = listed.json()["items"]
    assert row["scopes"] == ["edit_metadata", "read", "register_version", "upload"]
    expires = datetime.fromisoformat(row["expires_at"]) - datetime.fromisoformat(row["created_at"])
    assert expires <= timedelta(seconds=900)
    minted = c.post("/api/v1/tokens", json={}, headers=auth(token))
    assert minted.status_code == 403
    assert minted.json()["context"]["policy"] == "token-scope"


def test_oidc_token_directly_as_bearer_on_push(
    oidc_client: TestClient, issuer: LocalIssuer, signing_key: SigningKey, tmp_path: Path
) -> None:
    wf = unique("wf")
    c = oidc_client
    ns = create_namespace(c)
    base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    _publisher(c, issuer, [ns], workflow=wf)
    # Each request consumes a token (single use): upload, PUT x2, register = 4 tokens here.
    previous = c.headers["Authorization"]
    c.headers.pop("Authorization")
    try:
        up = c.post("/api/v1/uploads", headers=auth(_token(issuer, signing_key, wf)))
        assert up.status_code == 201, up.text
        upload_id = up.json()["id"]
        src = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
        import hashlib

        for path in sorted(src.iterdir()):
            data = path.read_bytes()
            put = c.put(
                f"/api/v1/uploads/{upload_id}/files/{path.name}",
                content=data,
                headers={
                    **auth(_token(issuer, signing_key, wf)),
                    "X-Content-Digest": "sha256:" + hashlib.sha256(data).hexdigest(),
                },
            )
            assert put.status_code == 201, put.text
        reg = c.post(
            f"/api/v1/adapters/{ns}/direct/versions",
            json={"base": base, "upload_id": upload_id},
            headers=auth(_token(issuer, signing_key, wf, actor="carol")),
        )
        assert reg.status_code == 201, reg.text
    finally:
        c.headers["Authorization"] = previous


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        (
            {"repository": "mallory/trainer", "sub": "repo:mallory/trainer:ref:refs/heads/main"},
            "repository_mismatch",
        ),
        ({"repository_owner_id": "9999"}, "owner_id_mismatch"),
        (
            {"job_workflow_ref": "acme/trainer/.github/workflows/evil.yml@refs/heads/main"},
            "workflow_mismatch",
        ),
        ({"ref": "refs/heads/feature"}, "ref_mismatch"),
        ({"ref_protected": "false"}, "unprotected_ref"),
        ({"event_name": "pull_request_target"}, "pull_request_event"),
        ({"aud": "someone-else"}, "wrong_audience"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 3700}, "expired"),
    ],
)
def test_bad_tokens_are_refused_with_their_reason(
    oidc_client: TestClient,
    issuer: LocalIssuer,
    signing_key: SigningKey,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    wf = unique("wf")
    ns = create_namespace(oidc_client)
    _publisher(oidc_client, issuer, [ns], workflow=wf)
    r = oidc_client.post(
        "/api/v1/oidc/token", headers=auth(_token(issuer, signing_key, wf, **overrides))
    )
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "oidc_token_invalid"
    assert r.json()["context"]["reason"] == reason


def test_replayed_token_is_refused(
    oidc_client: TestClient, issuer: LocalIssuer, signing_key: SigningKey
) -> None:
    wf = unique("wf")
    ns = create_namespace(oidc_client)
    _publisher(oidc_client, issuer, [ns], workflow=wf)
    token = _token(issuer, signing_key, wf)
    assert oidc_client.post("/api/v1/oidc/token", headers=auth(token)).status_code == 201
    again = oidc_client.post("/api/v1/oidc/token", headers=auth(token))
    assert again.status_code == 401
    assert again.json()["error"] == "oidc_token_reused"


def test_publisher_bound_to_one_namespace_cannot_push_to_another(
    oidc_client: TestClient, issuer: LocalIssuer, signing_key: SigningKey
) -> None:
    wf = unique("wf")
    c = oidc_client
    mine, other = create_namespace(c), create_namespace(c)
    base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    principal = _publisher(c, issuer, [mine], workflow=wf)
    # Even if the service principal is (mistakenly) a member of the other namespace too.
    r = c.post(f"/api/v1/principals/{principal}/namespaces", json={"namespaces": [other]})
    assert r.status_code == 200
    minted = c.post("/api/v1/oidc/token", headers=auth(_token(issuer, signing_key, wf))).json()
    previous = c.headers["Authorization"]
    c.headers["Authorization"] = f"Bearer {minted['token']}"
    try:
        refused = push(c, other, "bot", PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", base)
    finally:
        c.headers["Authorization"] = previous
    assert refused.status_code == 404
    assert refused.json()["error"] == "namespace_not_found"


def test_human_behind_the_ci_identity_cannot_approve(
    oidc_client: TestClient, issuer: LocalIssuer, signing_key: SigningKey
) -> None:
    wf = unique("wf")
    c = oidc_client
    ns = create_namespace(c)
    base = register_base(c, PEFT_FIXTURES / "bases" / "tiny-gpt2", name=unique("gpt2"))
    _publisher(c, issuer, [ns], workflow=wf)
    minted = c.post(
        "/api/v1/oidc/token", headers=auth(_token(issuer, signing_key, wf, actor="Dana"))
    ).json()
    previous = c.headers["Authorization"]
    c.headers["Authorization"] = f"Bearer {minted['token']}"
    try:
        pushed = push(c, ns, "bot", PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn", base)
    finally:
        c.headers["Authorization"] = previous
    assert pushed.status_code == 201, pushed.text
    ref = f"{ns}/bot@v1"
    dana = make_principal(c, "approver", [ns], ci_identity="dana")
    operator = make_principal(c, "operator", [ns])
    record_eval(c, operator, ref, 0.9)  # operators may not record evaluations
    dev = make_principal(c, "developer", [ns])
    assert record_eval(c, dev, ref, 0.9).status_code == 201
    dep = create_deployment(c, operator, base, f"{ns}/bot")
    req = request_promotion(c, dev, ref, dep).json()
    assert req["state"] == "pending"
    refused = decide(c, dana, req["id"], "approve")
    assert refused.status_code == 403
    assert refused.json()["error"] == "separation_of_duties"
    assert refused.json()["context"]["rule"] == "ci_identity_owner"
    other = make_principal(c, "approver", [ns])
    assert decide(c, other, req["id"], "approve").json()["state"] == "completed"


@pytest.mark.slow
def test_hundred_parallel_uses_of_one_token_accept_exactly_one(
    database_url: str, tmp_path: Path, issuer: LocalIssuer, signing_key: SigningKey
) -> None:
    """jti single use is a unique constraint: racing requests on a real server, one wins."""
    wf = unique("wf")
    env = server_env(
        database_url, tmp_path / "artifacts", REGISTRY_OIDC__ALLOW_INSECURE_LOOPBACK="true"
    )
    env.pop("HTTP_PROXY", None)
    proc, url = start_server(env, tmp_path / "server.log")
    try:
        admin = bootstrap(database_url, unique("race-admin"))
        with httpx.Client(base_url=url, headers=auth(admin), timeout=30) as c:
            ns = c.post("/api/v1/namespaces", json={"name": unique("ns")}).json()["name"]
            r = c.post(
                "/api/v1/publishers",
                json={
                    "name": unique("pub"),
                    "issuer": issuer.url,
                    "audience": AUDIENCE,
                    "repository": "acme/trainer",
                    "repository_owner_id": "1001",
                    "workflow_ref": f"acme/trainer/.github/workflows/{wf}.yml",
                    "principal": unique("ci"),
                    "namespaces": [ns],
                },
            )
            assert r.status_code == 201, r.text
        token = _token(issuer, signing_key, wf)
        statuses: list[int] = []
        codes: list[str] = []
        lock = threading.Lock()
        start = threading.Barrier(min(100, 32))

        def use() -> None:
            with contextlib.suppress(threading.BrokenBarrierError):
                start.wait(timeout=10)
            with httpx.Client(base_url=url, timeout=60) as c:
                resp = c.post("/api/v1/oidc/token", headers=auth(token))
            with lock:
                statuses.append(resp.status_code)
                if resp.status_code != 201:
                    codes.append(resp.json()["error"])

        threads = [threading.Thread(target=use) for _ in range(100)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert len(statuses) == 100
        assert statuses.count(201) == 1, statuses
        assert set(codes) == {"oidc_token_reused"}
    finally:
        stop_server(proc)
        _ = os.environ  # the server's log stays in tmp_path for a failed run
