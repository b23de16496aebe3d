"""Base model files and lineage: downloading a stored checkpoint, base versions as lineage
children (merged_from, quantized_from), the walks through them, and the governance of derived
versions (merge / compose / aggregate actions, their audit events)."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from registry.validation.manifest import read_base_dir
from tests.factories.catalog import create_namespace, push, register_base, unique, upload_dir
from tests.factories.governance import auth, make_principal
from tests.fixtures.peft import PEFT_FIXTURES

LLAMA = PEFT_FIXTURES / "bases" / "tiny-llama"
LORA = PEFT_FIXTURES / "adapters" / "llama-lora-rank-pattern"
RSLORA = PEFT_FIXTURES / "adapters" / "llama-rslora-r8"


def _base_body(name: str, revision: str = "main", **extra: Any) -> dict[str, Any]:
    manifest = read_base_dir(LLAMA).to_json()
    return {
        "name": name,
        "revision": revision,
        "config": manifest["config"],
        "tensors": manifest["tensors"],
        **extra,
    }


def _push(client: TestClient, ns: str, adapter: str, base: str, **metadata: Any) -> str:
    src = RSLORA if adapter.endswith("-b") else LORA
    r = push(client, ns, adapter, src, base, **metadata)
    assert r.status_code == 201, r.text
    return str(r.json()["ref"])


def _merged_parents(adapter_ref: str, base_ref: str) -> list[dict[str, Any]]:
    recipe = {"operation": "merge", "implementation": "adapter-registry-maths/1"}
    return [
        {"ref": adapter_ref, "relation": "merged_from", "recipe": recipe},
        {"ref": base_ref, "relation": "merged_from", "kind": "base_model_version"},
    ]


def _events(client: TestClient, action: str, resource: str) -> list[dict[str, Any]]:
    r = client.get("/api/v1/audit/events", params={"action": action, "resource": resource})
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


class TestBaseFileDownload:
    def test_a_stored_file_streams_with_its_digest(self, client: TestClient) -> None:
        name = unique("org") + "/Llama"
        upload_id = upload_dir(client, LLAMA, purpose="base_model")
        r = client.post("/api/v1/base-models", json=_base_body(name, upload_id=upload_id))
        assert r.status_code == 201, r.text
        listed = {f["name"]: f["digest"] for f in r.json()["files"]}
        for file_name in ("config.json", "model.safetensors"):
            got = client.get(f"/api/v1/base-models/{name}/revisions/main/files/{file_name}")
            assert got.status_code == 200
            data = (LLAMA / file_name).read_bytes()
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            assert got.content == data
            assert got.headers["X-Content-Digest"] == digest == listed[file_name]
            assert got.headers["Content-Length"] == str(len(data))

    def test_missing_files_revisions_and_credentials(self, client: TestClient) -> None:
        name, _ = register_base(client, LLAMA).split("@")  # headers only: no files stored
        url = f"/api/v1/base-models/{name}/revisions/main/files/config.json"
        r = client.get(url)
        assert (r.status_code, r.json()["error"]) == (404, "file_not_found")
        r = client.get(f"/api/v1/base-models/{name}/revisions/nope/files/config.json")
        assert (r.status_code, r.json()["error"]) == (404, "base_model_not_found")
        r = client.get(url, headers={"Authorization": "Bearer ar_not-a-token"})
        assert (r.status_code, r.json()["error"]) == (401, "unauthenticated")


class TestMergedBaseLineage:
    def test_lineage_walks_through_a_merged_base(self, client: TestClient) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        adapter = _push(client, ns, "bot", base)
        merged_name = unique("merged")
        body = _base_body(merged_name, parents=_merged_parents(adapter, base))
        r = client.post("/api/v1/base-models", json=body)
        assert r.status_code == 201, r.text
        merged = f"{merged_name}@main"
        # An adapter trained on the merged checkpoint is built from `adapter` too.
        on_merged = _push(client, ns, "bot-b", merged)

        up = client.get(f"/api/v1/base-models/{merged_name}/revisions/main/lineage").json()
        assert {
            (e["child"], e["child_kind"], e["relation"], e["parent"], e["depth"]) for e in up
        } == {
            (merged, "base_model_version", "merged_from", adapter, 1),
            (merged, "base_model_version", "merged_from", base, 1),
            (adapter, "adapter_version", "trained_on", base, 2),
        }
        recipe = next(e["recipe"] for e in up if e["parent"] == adapter)
        assert recipe["operation"] == "merge"

        ns_name, rest = adapter.split("/")
        down = client.get(
            f"/api/v1/adapters/{ns_name}/{rest.replace('@', '/versions/')}/lineage",
            params={"descendants": "true"},
        ).json()
        assert {(e["child"], e["relation"], e["parent"]) for e in down} == {
            (merged, "merged_from", adapter),
            (on_merged, "trained_on", merged),
        }
        # Ancestors of the adapter on the merged base reach the merge's inputs.
        on_ns, on_rest = on_merged.split("/")
        up2 = client.get(
            f"/api/v1/adapters/{on_ns}/{on_rest.replace('@', '/versions/')}/lineage"
        ).json()
        assert (merged, "merged_from", adapter) in {
            (e["child"], e["relation"], e["parent"]) for e in up2
        }
        base_name = base.split("@")[0]
        blast = client.get(
            f"/api/v1/base-models/{base_name}/revisions/main/lineage",
            params={"descendants": "true"},
        ).json()
        assert {e["child"] for e in blast} == {adapter, merged, on_merged}

    def test_the_merge_is_audited_with_digests(self, client: TestClient) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        adapter = _push(client, ns, "bot", base)
        merged_name = unique("merged")
        upload_id = upload_dir(client, LLAMA, purpose="base_model")
        body = _base_body(merged_name, upload_id=upload_id, parents=_merged_parents(adapter, base))
        registered = client.post("/api/v1/base-models", json=body).json()
        [event] = _events(client, "adapter.merge", f"base_model:{merged_name}@main")
        after = event["after"]
        adapter_digest = client.get(
            f"/api/v1/adapters/{adapter.replace('@', '/versions/')}"
        ).json()["digest"]
        assert {(i["ref"], i["digest"]) for i in after["inputs"]} == {
            (adapter, adapter_digest),
            (base, read_base_dir(LLAMA).digest),
        }
        assert after["output"]["manifest_digest"] == registered["manifest_digest"]
        assert after["output"]["digest"].startswith("sha256:")
        assert event["decision"]["action"] == "merge_adapter"

    @pytest.mark.parametrize(
        ("relation", "kind"), [("continued_from", None), ("composed_from", None)]
    )
    def test_a_base_refuses_adapter_relations(
        self, client: TestClient, relation: str, kind: str | None
    ) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        adapter = _push(client, ns, "bot", base)
        name = unique("merged")
        parent = {"ref": adapter, "relation": relation}
        r = client.post("/api/v1/base-models", json=_base_body(name, parents=[parent]))
        assert r.status_code == 400
        assert (r.json()["error"], r.json()["context"]["reason"]) == (
            "bad_request",
            "relation_not_for_base",
        )
        assert client.get(f"/api/v1/base-models/{name}/revisions/main").status_code == 404

    def test_quantized_from_a_base_and_missing_parents(self, client: TestClient) -> None:
        base = register_base(client, LLAMA)
        name = unique("nf4")
        parent = {"ref": base, "relation": "quantized_from", "kind": "base_model_version"}
        r = client.post("/api/v1/base-models", json=_base_body(name, parents=[parent]))
        assert r.status_code == 201, r.text
        missing = {"ref": f"{unique('ns')}/bot@v1", "relation": "merged_from"}
        r = client.post("/api/v1/base-models", json=_base_body(unique("m"), parents=[missing]))
        assert (r.status_code, r.json()["error"]) == (404, "namespace_not_found")

    def test_trained_on_must_name_a_base(self, client: TestClient) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        adapter = _push(client, ns, "bot", base)
        parent = {"ref": adapter, "relation": "trained_on", "kind": "adapter_version"}
        r = push(client, ns, "bot-b", RSLORA, base, parents=[parent])
        assert (r.status_code, r.json()["context"]["reason"]) == (400, "trained_on_needs_base")


class TestGovernance:
    def test_who_may_register_a_merged_base(self, client: TestClient) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        adapter = _push(client, ns, "bot", base)
        parents = _merged_parents(adapter, base)
        developer = make_principal(client, "developer", [ns])
        outsider = make_principal(client, "operator", [create_namespace(client)])
        operator = make_principal(client, "operator", [ns])
        for who, status, code in (
            (developer, 403, "policy_denied"),
            (outsider, 404, "namespace_not_found"),  # may not read the adapter: hidden
            (operator, 201, None),
        ):
            name = unique("merged")
            r = client.post(
                "/api/v1/base-models",
                json=_base_body(name, parents=parents),
                headers=auth(who.token),
            )
            assert r.status_code == status, r.text
            if code is not None:
                assert r.json()["error"] == code

    def test_lineage_leaves_out_what_the_caller_may_not_read(self, client: TestClient) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        adapter = _push(client, ns, "bot", base)
        name = base.split("@")[0]
        url = f"/api/v1/base-models/{name}/revisions/main/lineage"
        member = make_principal(client, "viewer", [ns])
        outsider = make_principal(client, "viewer", [create_namespace(client)])
        seen = {
            who.name: client.get(
                url, params={"descendants": "true"}, headers=auth(who.token)
            ).json()
            for who in (member, outsider)
        }
        assert [e["child"] for e in seen[member.name]] == [adapter]
        assert seen[outsider.name] == []

    def test_a_composition_needs_compose_adapters(self, client: TestClient) -> None:
        ns, base = create_namespace(client), register_base(client, LLAMA)
        a = _push(client, ns, "bot", base)
        dev = make_principal(client, "developer", [ns])
        scopes = ["read", "upload", "register_version"]
        scoped = _token(client, dev.name, scopes)
        parents = [{"ref": a, "relation": "composed_from", "recipe": {"weight": 0.5}}]
        r = _push_as(scoped, client, ns, "mix", base, parents)
        assert (r.status_code, r.json()["error"]) == (403, "policy_denied")
        assert r.json()["context"]["action"] == "compose_adapters"
        assert client.get(f"/api/v1/adapters/{ns}/mix").status_code == 404
        allowed = _token(client, dev.name, [*scopes, "compose_adapters"])
        r = _push_as(allowed, client, ns, "mix", base, parents)
        assert r.status_code == 201, r.text
        ref, digest = r.json()["ref"], r.json()["digest"]
        [event] = _events(client, "adapter.compose", f"adapter:{ref}")
        assert event["after"]["output"] == {"ref": ref, "kind": "adapter_version", "digest": digest}
        [parent] = event["after"]["inputs"]
        assert parent["ref"] == a
        assert parent["digest"].startswith("sha256:")
        assert event["decision"]["action"] == "compose_adapters"


def _token(client: TestClient, principal: str, scopes: list[str]) -> str:
    r = client.post("/api/v1/tokens", json={"principal": principal, "scopes": scopes})
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _push_as(
    token: str, client: TestClient, ns: str, adapter: str, base: str, parents: list[Any]
) -> httpx.Response:
    previous = client.headers["Authorization"]
    client.headers["Authorization"] = f"Bearer {token}"
    try:
        src = PEFT_FIXTURES / "adapters" / "llama-lora-r2-qv-notask"
        return push(client, ns, adapter, src, base, parents=parents)
    finally:
        client.headers["Authorization"] = previous
