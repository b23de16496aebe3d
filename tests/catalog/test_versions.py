"""Pushing, pulling, numbering, idempotency and metadata of adapter versions (real HTTP app)."""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.settings import Settings
from tests.factories.catalog import (
    error_of,
    open_upload,
    push,
    put_file,
    sha256_hex,
    unique,
    upload_dir,
)
from tests.fixtures.peft import PEFT_FIXTURES

Variant = Callable[[int], Path]


def _staging_files(settings: Settings) -> list[Path]:
    root = Path(settings.storage.root) / "staging"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


class TestPushAndPull:
    def test_pull_returns_pushed_bytes(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        src = adapter_variant(1)
        r = push(client, namespace, "bot", src, gpt2_base)
        assert r.status_code == 201, r.text
        body = r.json()
        names = sorted(f["name"] for f in body["files"])
        assert names == sorted(p.name for p in src.iterdir())
        for f in body["files"]:
            got = client.get(f"/api/v1/adapters/{namespace}/bot/versions/v1/files/{f['name']}")
            assert got.status_code == 200
            original = (src / f["name"]).read_bytes()
            assert got.content == original
            assert (
                got.headers["X-Content-Digest"] == f"sha256:{hashlib.sha256(original).hexdigest()}"
            )

    def test_versions_are_numbered_without_gaps(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        numbers = [
            push(client, namespace, "bot", adapter_variant(i), gpt2_base).json()["version"]
            for i in range(3)
        ]
        assert numbers == [1, 2, 3]
        listing = client.get(f"/api/v1/adapters/{namespace}/bot/versions").json()
        assert [v["version"] for v in listing["items"]] == [3, 2, 1]

    def test_same_content_twice_is_conflict(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        src = adapter_variant(7)
        assert push(client, namespace, "bot", src, gpt2_base).status_code == 201
        r = push(client, namespace, "bot", src, gpt2_base)
        assert r.status_code == 409
        assert r.json()["error"] == "version_exists"
        assert r.json()["context"]["ref"] == f"{namespace}/bot@v1"

    def test_rejected_push_leaves_nothing(
        self, client: TestClient, namespace: str, gpt2_base: str, settings: Settings
    ) -> None:
        before = {p.name for p in (Path(settings.storage.root) / "blobs").rglob("*") if p.is_file()}
        r = push(
            client,
            namespace,
            "broken",
            PEFT_FIXTURES / "broken" / "gpt2-lora-shape-mismatch",
            gpt2_base,
        )
        assert error_of(r) == ("incompatible_base", "shape_mismatch")
        after = {p.name for p in (Path(settings.storage.root) / "blobs").rglob("*") if p.is_file()}
        assert after == before
        assert client.get(f"/api/v1/adapters/{namespace}/broken").status_code == 404
        upload_dirs = {p.parent.name for p in _staging_files(settings)}
        assert r.json()["context"].get("upload_id") not in upload_dirs

    def test_retry_after_refusal_needs_a_new_upload(
        self, client: TestClient, namespace: str, gpt2_base: str
    ) -> None:
        upload_id = upload_dir(client, PEFT_FIXTURES / "broken" / "gpt2-lora-shape-mismatch")
        body = {"base": gpt2_base, "upload_id": upload_id}
        first = client.post(f"/api/v1/adapters/{namespace}/bot/versions", json=body)
        assert error_of(first) == ("incompatible_base", "shape_mismatch")
        again = client.post(f"/api/v1/adapters/{namespace}/bot/versions", json=body)
        assert again.status_code == 409
        assert again.json()["error"] == "upload_state_conflict"

    def test_unknown_base_is_not_found(
        self, client: TestClient, namespace: str, adapter_variant: Variant
    ) -> None:
        r = push(client, namespace, "bot", adapter_variant(1), "nobody@main")
        assert r.status_code == 404
        assert r.json()["error"] == "base_model_not_found"

    def test_unknown_namespace_is_not_found(
        self, client: TestClient, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        r = push(client, unique("nons"), "bot", adapter_variant(1), gpt2_base)
        assert r.status_code == 404
        assert r.json()["error"] == "namespace_not_found"

    def test_unknown_field_in_push_is_refused(
        self, client: TestClient, namespace: str, gpt2_base: str
    ) -> None:
        upload_id = open_upload(client)
        r = client.post(
            f"/api/v1/adapters/{namespace}/bot/versions",
            json={"base": gpt2_base, "upload_id": upload_id, "sneaky": 1},
        )
        assert r.status_code == 422
        assert r.json()["error"] == "invalid_request"


class TestUploadRefusals:
    def test_wrong_digest_claim_is_refused(self, client: TestClient, settings: Settings) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, "README.md", b"hello\n", digest="sha256:" + "0" * 64)
        assert r.status_code == 400
        assert error_of(r) == ("digest_mismatch", "upload")
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []
        assert not [p for p in _staging_files(settings) if upload_id in str(p)]

    @pytest.mark.parametrize(
        "digest",
        [
            "sha256:" + "0" * 63,
            "sha256:" + "A" * 64,
            "sha512:" + "0" * 128,
            "md5:abc",
            "sha256:../../x",
            "",
            "sha256:" + "0" * 10_000,
        ],
    )
    def test_malformed_digest_is_refused(self, client: TestClient, digest: str) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, "README.md", b"x", digest=digest)
        assert 400 <= r.status_code < 500
        assert r.json()["error"] in ("invalid_digest", "invalid_request")

    @pytest.mark.parametrize(
        ("name", "data", "reason"),
        [
            ("adapter_model.bin", b"\x80\x04\x95" + b"\x00" * 600, "pickle"),
            ("adapter_model.safetensors", b"\x80\x02cos\nsystem\n" + b"\x00" * 600, "pickle"),
            ("adapter_model.safetensors", b"PK\x03\x04" + b"\x00" * 600, "archive"),
            ("README.md", b"cos\nsystem\n(S'echo hi'\ntR." + b" " * 600, "pickle"),
            ("weights.dat", b"x" * 10, "forbidden_name"),
            ("model.gz", b"\x1f\x8b" + b"\x00" * 600, "forbidden_name"),
        ],
    )
    def test_forbidden_file_is_refused(
        self, client: TestClient, name: str, data: bytes, reason: str
    ) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, name, data)
        assert r.status_code == 400, r.text
        assert error_of(r) == ("forbidden_file", reason)
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []

    @pytest.mark.parametrize("name", ["..%2Fx", "%2e%2e%2fx", "%252e%252e%252f", "a%00b", ".."])
    def test_path_like_file_name_is_refused(self, client: TestClient, name: str) -> None:
        upload_id = open_upload(client)
        r = put_file(client, upload_id, name, b"x")
        # Refused by name, or never routed to a file (the client normalised "..").
        assert r.status_code in (400, 404, 405), r.text
        assert r.json()["error"] in ("forbidden_file", "not_found", "method_not_allowed")
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []

    def test_missing_digest_claim_is_refused(self, client: TestClient) -> None:
        upload_id = open_upload(client)
        r = client.put(f"/api/v1/uploads/{upload_id}/files/README.md", content=b"x")
        assert r.status_code == 422
        assert r.json()["error"] == "invalid_request"
        assert client.get(f"/api/v1/uploads/{upload_id}").json()["files"] == []

    def test_oversized_safetensors_header_is_refused(
        self, client: TestClient, namespace: str, gpt2_base: str, tmp_path: Path
    ) -> None:
        src = PEFT_FIXTURES / "adapters" / "gpt2-lora-r4-cattn"
        (tmp_path / "adapter_config.json").write_bytes((src / "adapter_config.json").read_bytes())
        (tmp_path / "adapter_model.safetensors").write_bytes(
            struct.pack("<Q", 100_000_001) + b"{" + b" " * 64
        )
        r = push(client, namespace, "big", tmp_path, gpt2_base)
        assert r.status_code == 400
        assert error_of(r) == ("corrupt_safetensors", "header_too_large")

    def test_someone_elses_upload_is_not_found(
        self, client: TestClient, anon_client: TestClient, database_url: str
    ) -> None:
        from tests.fixtures.app import bootstrap

        upload_id = open_upload(client)
        other = bootstrap(database_url, unique("other"))
        r = anon_client.put(
            f"/api/v1/uploads/{upload_id}/files/README.md",
            content=b"x",
            headers={
                "Authorization": f"Bearer {other}",
                "X-Content-Digest": f"sha256:{sha256_hex(b'x')}",
            },
        )
        assert r.status_code == 404
        assert r.json()["error"] == "upload_not_found"


class TestIdempotency:
    def test_same_key_same_body_replays(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        upload_id = open_upload(client)
        for p in adapter_variant(3).iterdir():
            assert put_file(client, upload_id, p.name, p.read_bytes()).status_code == 201
        body = {"base": gpt2_base, "upload_id": upload_id}
        headers = {"Idempotency-Key": unique("key")}
        first = client.post(
            f"/api/v1/adapters/{namespace}/bot/versions", json=body, headers=headers
        )
        second = client.post(
            f"/api/v1/adapters/{namespace}/bot/versions", json=body, headers=headers
        )
        assert first.status_code == second.status_code == 201
        assert first.json() == second.json()
        assert second.headers.get("Idempotent-Replayed") == "true"
        assert client.get(f"/api/v1/adapters/{namespace}/bot").json()["latest_version"] == 1

    def test_same_key_different_body_is_422(self, client: TestClient) -> None:
        headers = {"Idempotency-Key": unique("key")}
        assert (
            client.post(
                "/api/v1/namespaces", json={"name": unique("ns")}, headers=headers
            ).status_code
            == 201
        )
        r = client.post("/api/v1/namespaces", json={"name": unique("ns")}, headers=headers)
        assert r.status_code == 422
        assert r.json()["error"] == "idempotency_key_reused"

    @pytest.mark.parametrize("key", ["", "a" * 256, "spa ce", "ü"])
    def test_malformed_key_is_refused(self, client: TestClient, key: str) -> None:
        r = client.post(
            "/api/v1/namespaces",
            json={"name": unique("ns")},
            headers={"Idempotency-Key": key.encode("latin-1")},
        )
        assert r.status_code == 400
        assert r.json()["error"] == "bad_request"


class TestMetadata:
    def test_lineage_datasets_and_tags(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        assert push(client, namespace, "bot", adapter_variant(1), gpt2_base).status_code == 201
        ds = "sha256:" + hashlib.sha256(b"data").hexdigest()
        r = push(
            client,
            namespace,
            "bot",
            adapter_variant(2),
            gpt2_base,
            datasets=[{"name": "support-tickets", "digest": ds, "uri": "s3://d/tickets"}],
            parents=[{"ref": f"{namespace}/bot@v1", "relation": "continued_from"}],
            tags=["candidate"],
            git_commit="abc1234",
            mlflow_run_id="run-1",
        )
        assert r.status_code == 201, r.text
        v2 = r.json()
        assert v2["tags"] == ["candidate"]
        assert v2["datasets"] == [
            {"name": "support-tickets", "digest": ds, "uri": "s3://d/tickets"}
        ]
        assert v2["git_commit"] == "abc1234"
        ancestors = client.get(f"/api/v1/adapters/{namespace}/bot/versions/v2/lineage").json()
        relations = {(e["relation"], e["parent"]) for e in ancestors}
        assert ("continued_from", f"{namespace}/bot@v1") in relations
        assert ("trained_on", gpt2_base) in relations
        desc = client.get(
            f"/api/v1/adapters/{namespace}/bot/versions/v1/lineage", params={"descendants": "true"}
        ).json()
        assert [(e["child"], e["relation"]) for e in desc] == [
            (f"{namespace}/bot@v2", "continued_from")
        ]

    def test_register_response_equals_show(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        """The push response is built from what registration holds; it must match a read."""
        assert push(client, namespace, "bot", adapter_variant(1), gpt2_base).status_code == 201
        ds = "sha256:" + hashlib.sha256(b"d").hexdigest()
        pushed = push(
            client,
            namespace,
            "bot",
            adapter_variant(2),
            gpt2_base,
            datasets=[{"name": "b-set", "digest": ds}, {"name": "a-set", "digest": ds}],
            parents=[{"ref": f"{namespace}/bot@v1", "relation": "continued_from"}],
            tags=["z", "a"],
        ).json()
        shown = client.get(f"/api/v1/adapters/{namespace}/bot/versions/v2").json()
        assert pushed == shown

    def test_unknown_parent_is_not_found(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        r = push(
            client,
            namespace,
            "bot",
            adapter_variant(1),
            gpt2_base,
            parents=[{"ref": f"{namespace}/bot@v9", "relation": "continued_from"}],
        )
        assert r.status_code == 404
        assert client.get(f"/api/v1/adapters/{namespace}/bot").status_code == 404

    def test_unknown_relation_is_refused(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        r = push(
            client,
            namespace,
            "bot",
            adapter_variant(1),
            gpt2_base,
            parents=[{"ref": f"{namespace}/bot@v1", "relation": "stolen_from"}],
        )
        assert r.status_code == 400

    def test_tag_filter_and_archive(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        for i in range(3):
            assert push(client, namespace, "bot", adapter_variant(i), gpt2_base).status_code == 201
        base = f"/api/v1/adapters/{namespace}/bot/versions"
        r = client.post(f"{base}/v2/tags", json={"add": ["best", "prod-ready"]})
        assert r.json()["tags"] == ["best", "prod-ready"]
        tagged = client.get(base, params={"tag": "best"}).json()["items"]
        assert [v["version"] for v in tagged] == [2]
        assert client.post(f"{base}/v1/archive", json={}).json()["state"] == "archived"
        again = client.post(f"{base}/v1/archive", json={})
        assert again.status_code == 409
        assert again.json()["error"] == "invalid_transition"
        archived = client.get(base, params={"state": "archived"}).json()["items"]
        assert [v["version"] for v in archived] == [1]

    def test_filters_and_pagination(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        for i in range(5):
            assert push(client, namespace, "bot", adapter_variant(i), gpt2_base).status_code == 201
        ia3 = PEFT_FIXTURES / "adapters" / "gpt2-ia3"
        assert push(client, namespace, "bot", ia3, gpt2_base).status_code == 201
        base = f"/api/v1/adapters/{namespace}/bot/versions"
        lora = client.get(base, params={"peft_type": "LORA", "rank": 4}).json()["items"]
        assert [v["version"] for v in lora] == [5, 4, 3, 2, 1]
        assert [
            v["version"] for v in client.get(base, params={"peft_type": "IA3"}).json()["items"]
        ] == [6]
        by_base = client.get(base, params={"base": gpt2_base.split("@")[0]}).json()["items"]
        assert len(by_base) == 6
        pages, token = [], None
        while True:
            params: dict[str, str | int] = {"limit": 4}
            if token:
                params["page_token"] = token
            body = client.get(base, params=params).json()
            pages.append([v["version"] for v in body["items"]])
            token = body["next_page_token"]
            if not token:
                break
        assert pages == [[6, 5, 4, 3], [2, 1]]

    def test_show_by_digest_and_latest(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        v1 = push(client, namespace, "bot", adapter_variant(1), gpt2_base).json()
        push(client, namespace, "bot", adapter_variant(2), gpt2_base)
        base = f"/api/v1/adapters/{namespace}/bot/versions"
        assert client.get(f"{base}/{v1['digest']}").json()["version"] == 1
        assert client.get(f"{base}/latest").json()["version"] == 2
        assert client.get(f"{base}/v9").json()["error"] == "version_not_found"
        assert client.get(f"{base}/bogus").status_code == 400
        assert v1["serving_name"].startswith(f"{namespace}--bot--v1--")


class TestEvaluations:
    def test_record_list_compare(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        push(client, namespace, "bot", adapter_variant(1), gpt2_base)
        push(client, namespace, "bot", adapter_variant(2), gpt2_base)
        base = f"/api/v1/adapters/{namespace}/bot/versions"
        ds = "sha256:" + "ab" * 32
        for v, acc in ((1, 0.80), (2, 0.85)):
            r = client.post(
                f"{base}/v{v}/evaluations",
                json={"suite": "support", "metric": "accuracy", "value": acc, "dataset_digest": ds},
            )
            assert r.status_code == 201, r.text
        client.post(
            f"{base}/v2/evaluations",
            json={
                "suite": "support",
                "metric": "latency_ms",
                "value": 12.0,
                "higher_is_better": False,
            },
        )
        listed = client.get(f"{base}/v2/evaluations").json()["items"]
        assert {(e["metric"], e["value"]) for e in listed} == {
            ("accuracy", 0.85),
            ("latency_ms", 12.0),
        }
        cmp = client.get(
            "/api/v1/evaluations/compare",
            params={"a": f"{namespace}/bot@v1", "b": f"{namespace}/bot@v2"},
        ).json()
        rows = {r["metric"]: r for r in cmp["rows"]}
        assert rows["accuracy"]["better"] == "b"
        assert rows["accuracy"]["delta"] == pytest.approx(0.05)
        assert rows["latency_ms"]["a"] is None
        assert rows["latency_ms"]["better"] is None

    @pytest.mark.parametrize("value", ["NaN", "Infinity"])
    def test_non_finite_value_is_refused(
        self,
        client: TestClient,
        namespace: str,
        gpt2_base: str,
        adapter_variant: Variant,
        value: str,
    ) -> None:
        push(client, namespace, "bot", adapter_variant(1), gpt2_base)
        r = client.post(
            f"/api/v1/adapters/{namespace}/bot/versions/v1/evaluations",
            content=json.dumps({"suite": "s", "metric": "m"})[:-1] + f', "value": {value}}}',
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422


class TestAdapterSearch:
    def test_adapters_filtered_by_their_versions(
        self, client: TestClient, namespace: str, gpt2_base: str, adapter_variant: Variant
    ) -> None:
        assert push(client, namespace, "lora-bot", adapter_variant(1), gpt2_base).status_code == 201
        ia3 = PEFT_FIXTURES / "adapters" / "gpt2-ia3"
        assert push(client, namespace, "ia3-bot", ia3, gpt2_base).status_code == 201
        client.post(f"/api/v1/adapters/{namespace}/ia3-bot/versions/v1/tags", json={"add": ["x"]})

        def names(**params: str | int) -> list[str]:
            body = client.get("/api/v1/adapters", params={"namespace": namespace, **params})
            return [a["name"] for a in body.json()["items"]]

        assert names() == ["ia3-bot", "lora-bot"]
        assert names(peft_type="LORA") == ["lora-bot"]
        assert names(rank=4) == ["lora-bot"]
        assert names(tag="x") == ["ia3-bot"]
        assert names(state="archived") == []
        assert names(base=gpt2_base) == ["ia3-bot", "lora-bot"]
