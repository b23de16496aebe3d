"""Adapters of the methods beyond peft's LoRA family go through ``push`` like any other: an
AdapterHub bottleneck adapter (made by the real ``adapters``) and a registry-native BITFIT
delta are stored, listed under their method and pulled back byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.factories.catalog import create_namespace, push, register_base, unique
from tests.maths.tiny import tiny_gpt2
from tests.validation.methods.test_bitfit import bitfit_adapter

HUB = Path(__file__).parents[1] / "validation" / "hub" / "fixtures"


@pytest.fixture(scope="module")
def client(anon_client: TestClient, admin_token: str) -> Iterator[TestClient]:
    # anon_client is the worker's shared unauthenticated client: its credentials go afterwards
    # (tests/api/test_auth.py, run later on the same worker, expects none).
    anon_client.headers["Authorization"] = f"Bearer {admin_token}"
    try:
        yield anon_client
    finally:
        anon_client.headers.pop("Authorization", None)


def _pushed(client: TestClient, adapter: Path, base: Path, peft_type: str) -> None:
    ns = create_namespace(client)
    ref = register_base(client, base, name=unique("base"))
    r = push(client, ns, "adapter", adapter, ref)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["peft_type"], body["state"]) == (peft_type, "validated")
    listed = client.get(f"/api/v1/adapters/{ns}/adapter/versions", params={"peft_type": peft_type})
    assert listed.status_code == 200, listed.text
    assert [v["version"] for v in listed.json()["items"]] == [1]
    for path in sorted(p for p in adapter.iterdir() if p.is_file()):
        got = client.get(f"/api/v1/adapters/{ns}/adapter/versions/1/files/{path.name}")
        assert got.status_code == 200, (path.name, got.text)
        assert hashlib.sha256(got.content).digest() == hashlib.sha256(path.read_bytes()).digest()


def test_an_adapterhub_adapter_is_pushed_and_pulled(client: TestClient) -> None:
    _pushed(client, HUB / "double", HUB / "bert-base", "ADAPTERHUB_DOUBLE_SEQ_BN")


def test_a_bitfit_delta_is_pushed_and_pulled(client: TestClient, tmp_path: Path) -> None:
    base = tiny_gpt2(tmp_path / "base")
    adapter = bitfit_adapter(base, tmp_path / "bitfit", ("c_attn", "ln_f"))
    _pushed(client, adapter, base, "BITFIT")
