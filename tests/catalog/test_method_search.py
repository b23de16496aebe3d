"""``?peft_type=`` / ``--peft-type`` over the real app: case-insensitive, LoRA variants stored as
LORA plus a flag (DoRA, rsLoRA), ``family:NAME``, and ``unknown_method`` for anything else.

The adapters are peft's own (the shared fixtures), pushed against the tiny Llama base."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.fixtures.peft import PEFT_FIXTURES

#: Version number -> fixture, pushed in this order to one adapter.
FIXTURES = {
    1: "llama-lora-r2-qv-notask",
    2: "llama-dora-r4",
    3: "llama-rslora-r8",
    4: "llama-adalora",
    5: "llama-loha-r4",
    6: "llama-prefix-tuning",
}

CASES: list[tuple[str, set[int]]] = [
    ("LORA", {1, 2, 3}),
    ("lora", {1, 2, 3}),
    ("dora", {2}),
    ("DoRA", {2}),
    ("rslora", {3}),
    ("rsLoRA", {3}),
    ("adalora", {4}),
    ("AdaLoRA", {4}),
    ("loha", {5}),
    ("prefix-tuning", {6}),
    ("Prefix_Tuning", {6}),
    ("family:lora", {1, 2, 3, 4, 5}),
    ("FAMILY:Prompt", {6}),
    ("family:orthogonal", set()),
    ("IA3", set()),
    ("VERA", set()),
]


@pytest.fixture
def catalog(client: TestClient) -> tuple[str, str]:
    """``(namespace, base)`` with one adapter ``mix`` (a version per fixture) and one adapter
    per fixture (``a<N>``), for the version and the adapter listings."""
    namespace = create_namespace(client)
    base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-llama", name=unique("llama"))
    for number, fixture in FIXTURES.items():
        directory = PEFT_FIXTURES / "adapters" / fixture
        for adapter in ("mix", f"a{number}"):
            r = push(client, namespace, adapter, directory, base)
            assert r.status_code == 201, r.text
    return namespace, base


def _versions(client: TestClient, namespace: str, term: str) -> set[int]:
    r = client.get(f"/api/v1/adapters/{namespace}/mix/versions", params={"peft_type": term})
    assert r.status_code == 200, (term, r.text)
    return {v["version"] for v in r.json()["items"]}


def _adapters(client: TestClient, namespace: str, term: str) -> set[int]:
    r = client.get("/api/v1/adapters", params={"namespace": namespace, "peft_type": term})
    assert r.status_code == 200, (term, r.text)
    return {int(a["name"][1:]) for a in r.json()["items"] if a["name"] != "mix"}


class TestMethodFilter:
    def test_version_listing_filters_by_method_variant_and_family(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        got = {term: _versions(client, namespace, term) for term, _ in CASES}
        assert got == dict(CASES)

    def test_adapter_listing_filters_by_method_variant_and_family(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        got = {term: _adapters(client, namespace, term) for term, _ in CASES}
        assert got == dict(CASES)

    def test_variant_filter_combines_with_other_filters(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        url = f"/api/v1/adapters/{namespace}/mix/versions"
        r = client.get(url, params={"peft_type": "dora", "rank": 4})
        assert [v["version"] for v in r.json()["items"]] == [2]
        r = client.get(url, params={"peft_type": "dora", "rank": 8})
        assert r.json()["items"] == []

    def test_stored_variant_flags_are_what_the_filter_reads(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        items = client.get(f"/api/v1/adapters/{namespace}/mix/versions").json()["items"]
        flags = {v["version"]: (v["peft_type"], v["use_dora"], v["use_rslora"]) for v in items}
        assert flags[2] == ("LORA", True, False)
        assert flags[3] == ("LORA", False, True)


class TestUnknownMethod:
    @pytest.mark.parametrize("term", ["SUPER_LORA", "family:nope", "family:", "", "lora2"])
    def test_unknown_method_is_refused_with_its_code(
        self, client: TestClient, namespace: str, term: str
    ) -> None:
        r = client.get("/api/v1/adapters", params={"namespace": namespace, "peft_type": term})
        body: dict[str, Any] = r.json()
        assert (r.status_code, body["error"]) == (400, "unknown_method"), r.text
        assert body["context"]["peft_type"] == term
        assert "dora" in body["context"]["known"]
        assert "orthogonal" in body["context"]["families"]

    def test_unknown_method_on_an_existing_adapter(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        r = client.get(
            f"/api/v1/adapters/{namespace}/mix/versions", params={"peft_type": "SUPER_LORA"}
        )
        assert (r.status_code, r.json()["error"]) == (400, "unknown_method")

    def test_real_peft_type_not_yet_accepted_is_an_empty_result(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        """A peft method the validator refuses today is still a method name: no versions."""
        namespace, _ = catalog
        assert _versions(client, namespace, "xlora") == set()


class TestMethodDisplay:
    def test_version_names_its_method_and_family(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        url = f"/api/v1/adapters/{namespace}/mix/versions"
        shown = {n: client.get(f"{url}/v{n}").json() for n in FIXTURES}
        words = {n: (v["method"], v["method_family"]) for n, v in shown.items()}
        assert words[1] == ("Low-Rank Adaptation (LoRA)", "lora")
        assert "DoRA" in words[2][0]
        assert "rsLoRA" in words[3][0]
        assert "AdaLoRA" in words[4][0]
        assert words[6] == ("Prefix tuning", "prompt")
        listed = {v["version"]: v for v in client.get(url).json()["items"]}
        assert {n: (v["method"], v["method_family"]) for n, v in listed.items()} == words

    def test_listing_gives_parameter_count_and_size_per_version(
        self, client: TestClient, catalog: tuple[str, str]
    ) -> None:
        namespace, _ = catalog
        url = f"/api/v1/adapters/{namespace}/mix/versions"
        listed = {v["version"]: v for v in client.get(url).json()["items"]}
        for number, fixture in FIXTURES.items():
            directory = PEFT_FIXTURES / "adapters" / fixture
            files = sum(p.stat().st_size for p in directory.iterdir() if p.is_file())
            assert listed[number]["size"] == files, fixture
            assert listed[number]["trainable_params"] > 0, fixture
            assert client.get(f"{url}/v{number}").json()["size"] == files

    def test_push_answer_has_method_and_size(self, client: TestClient, namespace: str) -> None:
        base = register_base(client, PEFT_FIXTURES / "bases" / "tiny-llama", name=unique("l"))
        directory = PEFT_FIXTURES / "adapters" / "llama-dora-r4"
        body = push(client, namespace, "d", directory, base).json()
        assert (body["method_family"], body["size"]) == (
            "lora",
            sum(p.stat().st_size for p in directory.iterdir() if p.is_file()),
        )
        assert "DoRA" in body["method"]
