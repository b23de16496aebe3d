"""Adapter versions over the real HTTP app: pushing, pulling, numbering, metadata, evaluations
and search."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from registry.settings import Settings
from tests.factories.catalog import error_of, open_upload, push, staging_files, unique, upload_dir
from tests.fixtures.peft import PEFT_FIXTURES

Variant = Callable[[int], Path]


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
        upload_dirs = {p.parent.name for p in staging_files(settings)}
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
