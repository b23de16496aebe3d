"""``adapters merge`` and ``adapters aggregate`` from the CLI against the real HTTP app: the
merged checkpoint registered as a base revision with merged_from lineage, a site aggregate
registered with aggregated_from lineage (sample counts), ``--to DIR`` without registering.

(These need ``registry.maths.merge`` and ``registry.maths.aggregate``.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_cli_e2e import cli
from tests.cli.test_maths_cli import register_base
from tests.factories.catalog import unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

ADAPTERS = PEFT_FIXTURES / "adapters"
LLAMA = PEFT_FIXTURES / "bases" / "tiny-llama"
Setup = tuple[LiveServer, str, str]


def _ok(server: LiveServer, *args: str) -> Any:
    code, body, err = cli(server, *args)
    assert code == 0, (body, err)
    return body


def _audit(server: LiveServer, action: str, resource: str) -> list[dict[str, Any]]:
    with httpx.Client(
        base_url=server.url, headers={"Authorization": f"Bearer {server.token}"}
    ) as api:
        r = api.get("/api/v1/audit/events", params={"action": action, "resource": resource})
    items: list[dict[str, Any]] = r.json()["items"]
    return items


@pytest.fixture(scope="module")
def stored(live_server: LiveServer) -> Setup:
    """tiny-llama registered with its weights stored, and LoRA versions on it: ``a``, and two
    sites with the same structure."""
    ns, base = unique("maths"), unique("llama")
    _ok(live_server, "namespaces", "create", ns)
    register_base(live_server, base, "--upload-weights")
    for name in ("a", "site-a", "site-b"):
        src = ADAPTERS / "llama-lora-rank-pattern"
        _ok(
            live_server,
            "adapters",
            "push",
            str(src),
            "--adapter",
            f"{ns}/{name}",
            "--base",
            f"{base}@main",
        )
    return live_server, ns, f"{base}@main"


def test_merge_registers_a_base_revision_with_lineage(stored: Setup, tmp_path: Path) -> None:
    server, ns, base = stored
    merged, out = unique("merged"), tmp_path / "merged"
    body = _ok(
        server,
        "adapters",
        "merge",
        f"{ns}/a@v1",
        "--to",
        str(out),
        "--register-as",
        merged,
        "--revision",
        "r1",
    )
    assert body["dir"] == str(out)
    assert (out / "config.json").is_file()
    assert any(p.suffix == ".safetensors" for p in out.iterdir())
    assert (body["registered"]["name"], body["registered"]["revision"]) == (merged, "r1")
    assert body["registered_ref"] == f"{merged}@r1"
    edges = _ok(server, "base-models", "lineage", f"{merged}@r1")["edges"]
    assert {(e["relation"], e["parent"]) for e in edges if e["depth"] == 1} == {
        ("merged_from", f"{ns}/a@v1"),
        ("merged_from", base),
    }
    assert all("implementation" in e["recipe"] for e in edges if e["depth"] == 1)
    [event] = _audit(server, "adapter.merge", f"base_model:{merged}@r1")
    assert {i["ref"] for i in event["after"]["inputs"]} == {f"{ns}/a@v1", base}


def test_merge_with_a_local_base_writes_only(stored: Setup, tmp_path: Path) -> None:
    server, ns, _base = stored
    out = tmp_path / "merged"
    body = _ok(
        server,
        "adapters",
        "merge",
        f"{ns}/a@v1",
        "--to",
        str(out),
        "--base-dir",
        str(LLAMA),
        "--dtype",
        "float32",
    )
    assert (body["registered"], body["registered_ref"]) == (None, None)
    assert (out / "config.json").is_file()


def test_prefix_tuning_is_not_mergeable(stored: Setup, tmp_path: Path) -> None:
    server, ns, base = stored
    _ok(
        server,
        "adapters",
        "push",
        str(ADAPTERS / "llama-prefix-tuning"),
        "--adapter",
        f"{ns}/prefix",
        "--base",
        base,
    )
    code, body, _ = cli(server, "adapters", "merge", f"{ns}/prefix@v1", "--to", str(tmp_path / "m"))
    assert (code, body["error"]) == (6, "not_mergeable")


def test_aggregate_registers_with_sample_counts(stored: Setup) -> None:
    server, ns, base = stored
    body = _ok(
        server,
        "adapters",
        "aggregate",
        "--adapter",
        f"{ns}/global",
        "--site",
        f"{ns}/site-a@v1=1200",
        "--site",
        f"{ns}/site-b@v1=800",
        "--method",
        "stack",
    )
    assert (body["ref"], body["base"]) == (f"{ns}/global@v1", base)
    edges = _ok(server, "adapters", "lineage", f"{ns}/global@v1")["edges"]
    weights = {
        e["parent"]: e["recipe"]["weight"] for e in edges if e["relation"] == "aggregated_from"
    }
    assert weights == {f"{ns}/site-a@v1": 1200, f"{ns}/site-b@v1": 800}
    [event] = _audit(server, "adapter.aggregate", f"adapter:{ns}/global@v1")
    assert event["after"]["output"]["digest"] == body["digest"]


def test_aggregate_to_dir_registers_nothing(stored: Setup, tmp_path: Path) -> None:
    server, ns, _base = stored
    out = tmp_path / "global"
    body = _ok(
        server,
        "adapters",
        "aggregate",
        "--to",
        str(out),
        "--site",
        f"{ns}/site-a@v1=10",
        "--site",
        f"{ns}/site-b@v1=30",
    )
    assert sorted(p.name for p in out.iterdir()) == sorted(body["report"]["files"])
    assert body["report"]["operation"] == "aggregate"
    assert "ref" not in body  # written, not registered
