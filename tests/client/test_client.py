"""``RegistryClient`` against an in-memory fake of the API: errors, retries, idempotency keys,
streamed uploads, verified downloads."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import httpx
import pytest

from registry.client import CHUNK_BYTES, ClientError, RegistryClient
from tests.fixtures.fake_registry import FakeRegistry, error, make_client

FILES = {"adapter_config.json": b'{"peft_type": "LORA"}', "adapter_model.safetensors": b"x" * 100}


def test_error_body_is_parsed() -> None:
    server = FakeRegistry()
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.get_version("acme/bot@v1")
    assert (info.value.code, info.value.status) == ("adapter_not_found", 404)
    assert info.value.to_body() == {
        "error": "adapter_not_found",
        "detail": "no such adapter",
        "context": {},
    }


def test_non_json_gateway_error_is_server_unavailable() -> None:
    server = FakeRegistry(overrides=[lambda r: httpx.Response(502, text="<html>bad gateway")])
    with make_client(server, max_attempts=2) as api, pytest.raises(ClientError) as info:
        api.list_namespaces()
    assert info.value.code == "server_unavailable"
    assert len(server.requests) == 1  # 502 is not retried (it may be integrity_failure)


def test_connection_refused_is_server_unavailable_after_retries() -> None:
    calls: list[httpx.Request] = []

    def refuse(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        raise httpx.ConnectError("refused", request=request)

    slept: list[float] = []
    api = RegistryClient(
        "http://registry.test", transport=httpx.MockTransport(refuse), sleep=slept.append
    )
    with api, pytest.raises(ClientError) as info:
        api.list_adapters()
    assert info.value.code == "server_unavailable"
    assert len(calls) == 5
    assert len(slept) == 4
    assert all(0 < s <= 4.0 for s in slept)


def test_get_is_retried_on_503() -> None:
    answers = iter([error(503, "unavailable"), error(503, "unavailable")])
    server = FakeRegistry(overrides=[lambda r: next(answers, None)])
    server.add_version(FILES)
    with make_client(server) as api:
        assert api.get_version("acme/bot@v1")["version"] == 1
    assert len(server.requests) == 3


def test_post_retries_reuse_one_idempotency_key() -> None:
    answers = iter([error(503, "unavailable"), error(409, "idempotency_key_in_flight", "busy")])
    server = FakeRegistry(overrides=[lambda r: next(answers, None)])
    with make_client(server) as api:
        api.create_upload()
    keys = {r.headers["Idempotency-Key"] for r in server.requests}
    assert len(server.requests) == 3
    assert len(keys) == 1


def test_each_call_gets_its_own_idempotency_key() -> None:
    server = FakeRegistry()
    with make_client(server) as api:
        api.create_upload()
        api.create_upload()
    assert (
        server.requests[0].headers["Idempotency-Key"]
        != server.requests[1].headers["Idempotency-Key"]
    )


def test_client_errors_are_not_retried() -> None:
    server = FakeRegistry(overrides=[lambda r: error(400, "invalid_name", "bad", kind="x")])
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.create_namespace("Bad")
    assert info.value.code == "invalid_name"
    assert info.value.context == {"kind": "x"}
    assert len(server.requests) == 1


def test_token_is_sent_as_bearer() -> None:
    server = FakeRegistry()
    with make_client(server) as api:
        api.create_upload()
    assert server.requests[0].headers["Authorization"] == "Bearer tok"


def test_put_file_streams_with_digest_claim(tmp_path: Path) -> None:
    data = os.urandom(CHUNK_BYTES * 2 + 17)
    path = tmp_path / "adapter_model.safetensors"
    path.write_bytes(data)
    server = FakeRegistry()
    with make_client(server) as api:
        upload_id = api.upload_files([path])
    put = server.requests[1]
    assert put.method == "PUT"
    assert put.headers["X-Content-Digest"] == "sha256:" + hashlib.sha256(data).hexdigest()
    assert put.headers["Content-Length"] == str(len(data))
    assert "Transfer-Encoding" not in put.headers
    assert server.uploads[upload_id]["adapter_model.safetensors"] == data


def _pushed(server: FakeRegistry) -> None:
    server.add_version(FILES)


def test_pull_refuses_tampered_bytes(tmp_path: Path) -> None:
    server = FakeRegistry(tampered={"adapter_model.safetensors": b"y" * 100})
    _pushed(server)
    dest = tmp_path / "out"
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.pull("acme/bot@v1", dest)
    assert info.value.code == "integrity_failure"
    assert not (dest / "adapter_model.safetensors").exists()
    assert not [p for p in dest.iterdir() if p.name.endswith(".part")]


def test_pull_refuses_a_wrong_digest_header(tmp_path: Path) -> None:
    server = FakeRegistry(wrong_header=True)
    _pushed(server)
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.pull("acme/bot@v1", tmp_path / "out")
    assert info.value.code == "integrity_failure"


def test_pull_refuses_a_listing_that_does_not_match_the_version_digest(tmp_path: Path) -> None:
    server = FakeRegistry()
    _pushed(server)
    server.versions[0]["files"][0]["size"] += 1
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.pull("acme/bot@v1", tmp_path / "out")
    assert info.value.code == "integrity_failure"


def test_pull_refuses_unsafe_file_names(tmp_path: Path) -> None:
    server = FakeRegistry()
    _pushed(server)
    version = server.versions[0]
    version["files"][0]["name"] = "../evil"
    from registry.client import version_digest

    version["digest"] = version_digest(version["files"])
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.pull("acme/bot@v1", tmp_path / "out")
    assert info.value.code == "integrity_failure"
    assert not (tmp_path / "evil").exists()


def test_download_is_retried_on_503(tmp_path: Path) -> None:
    failures = iter([error(503, "unavailable")])

    def flaky(request: httpx.Request) -> httpx.Response | None:
        return next(failures, None) if "/files/" in request.url.path else None

    server = FakeRegistry(overrides=[flaky])
    _pushed(server)
    with make_client(server) as api:
        api.pull("acme/bot@v1", tmp_path / "out")
    assert (tmp_path / "out" / "adapter_config.json").read_bytes() == FILES["adapter_config.json"]


def test_compare_checks_refs_locally() -> None:
    server = FakeRegistry()
    with make_client(server) as api, pytest.raises(ClientError) as info:
        api.compare_evaluations("nope", "acme/bot@v1")
    assert info.value.code == "invalid_reference"
    assert server.requests == []


def _recording_client(sent: list[httpx.Request]) -> RegistryClient:
    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json={})

    return RegistryClient("http://registry.test", transport=httpx.MockTransport(answer))


def test_governance_bodies_leave_out_what_is_not_given() -> None:
    """Optional fields left at None are not sent (the server's default applies); ``no_expiry``
    sends ``ttl_days: null``; every POST but the OIDC exchange carries an Idempotency-Key."""
    sent: list[httpx.Request] = []
    with _recording_client(sent) as api:
        api.create_token(name="t")
        api.create_token(principal="bot", ttl_days=7, scopes=("read",), idempotency_key="k1")
        api.create_token(ttl_days=7, no_expiry=True)
        api.request_promotion("acme/bot@v1", deployment="prod")
        api.request_promotion(
            "acme/bot@v1", deployment="prod", reason="r", plan="slow", plan_spec={"steps": []}
        )
        api.revoke_token("abc")
        api.exchange_oidc_token()
        api.audit_events(actor="ann", limit=5)
    bodies = [json.loads(r.content) if r.content else None for r in sent]
    assert bodies == [
        {"principal": None, "name": "t"},
        {"principal": "bot", "name": "", "ttl_days": 7, "scopes": ["read"]},
        {"principal": None, "name": "", "ttl_days": None},
        {"ref": "acme/bot@v1", "deployment": "prod", "reason": None, "override_reason": None},
        {
            "ref": "acme/bot@v1",
            "deployment": "prod",
            "reason": "r",
            "override_reason": None,
            "plan": "slow",
            "plan_spec": {"steps": []},
        },
        None,
        None,
        None,
    ]
    assert sent[1].headers["Idempotency-Key"] == "k1"
    keyed = ["Idempotency-Key" in r.headers for r in sent]
    assert keyed == [True, True, True, True, True, True, False, False]
    assert [r.url.path for r in sent[5:]] == [
        "/api/v1/tokens/abc/revoke",
        "/api/v1/oidc/token",
        "/api/v1/audit/events",
    ]
    assert dict(sent[7].url.params) == {"actor": "ann", "limit": "5"}
