"""``adapters show`` names the method in words; ``adapters versions`` lists method, parameter
count and size per version; ``--peft-type`` understands variants, families and refuses unknown
methods (exit 6). A subprocess CLI against a real server, table output as people read it."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.cli.test_cli_e2e import cli
from tests.factories.catalog import unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

ADAPTERS = PEFT_FIXTURES / "adapters"


def text(server: LiveServer, *args: str) -> tuple[int, str]:
    """Run the CLI with its human (table) output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env.update(REGISTRY_URL=server.url, REGISTRY_TOKEN=server.token)
    done = subprocess.run(
        [sys.executable, "-m", "registry", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    return done.returncode, done.stdout


@pytest.fixture
def pushed(live_server: LiveServer) -> tuple[LiveServer, str]:
    """``NS/bot`` with v1 = plain LoRA and v2 = DoRA (peft's own adapters)."""
    ns, base = unique("cli"), unique("llama")
    assert cli(live_server, "namespaces", "create", ns)[0] == 0
    code, _, err = cli(
        live_server,
        "base-models",
        "register",
        base,
        "--revision",
        "main",
        "--from",
        str(PEFT_FIXTURES / "bases" / "tiny-llama"),
    )
    assert code == 0, err
    for fixture in ("llama-lora-r2-qv-notask", "llama-dora-r4"):
        code, _, err = cli(
            live_server,
            "adapters",
            "push",
            str(ADAPTERS / fixture),
            "--adapter",
            f"{ns}/bot",
            "--base",
            f"{base}@main",
        )
        assert code == 0, err
    return live_server, ns


class TestMethodDisplay:
    def test_show_names_the_method_and_its_family(self, pushed: tuple[LiveServer, str]) -> None:
        server, ns = pushed
        code, out = text(server, "adapters", "show", f"{ns}/bot@v2")
        assert code == 0, out
        line = next(ln for ln in out.splitlines() if ln.startswith("method "))
        assert "Weight-Decomposed Low-Rank Adaptation (DoRA) (lora)" in line
        size = sum(p.stat().st_size for p in (ADAPTERS / "llama-dora-r4").iterdir())
        assert any(ln.split() == ["size", str(size)] for ln in out.splitlines()), out

    def test_versions_table_has_method_params_and_size(
        self, pushed: tuple[LiveServer, str]
    ) -> None:
        server, ns = pushed
        code, out = text(server, "adapters", "versions", f"{ns}/bot")
        assert code == 0, out
        header, *rows = out.splitlines()
        for column in ("method", "params", "size"):
            assert column.upper() in header.split()
        assert "DoRA (lora)" in rows[0]
        assert "LoRA (lora)" in rows[1]
        _, listing, _ = cli(server, "adapters", "versions", f"{ns}/bot")
        for row, version in zip(rows, listing["items"], strict=True):
            assert str(version["trainable_params"]) in row.split()
            assert str(version["size"]) in row.split()


class TestPeftTypeOption:
    def test_variant_filter(self, pushed: tuple[LiveServer, str]) -> None:
        server, ns = pushed
        code, body, err = cli(server, "adapters", "versions", f"{ns}/bot", "--peft-type", "DoRA")
        assert code == 0, err
        assert [v["version"] for v in body["items"]] == [2]
        code, body, err = cli(server, "adapters", "list", "--peft-type", "family:LoRA")
        assert code == 0, err
        assert f"{ns}/bot" in {f"{a['namespace']}/{a['name']}" for a in body["items"]}

    def test_unknown_method_exits_6(self, pushed: tuple[LiveServer, str]) -> None:
        server, ns = pushed
        code, body, _ = cli(server, "adapters", "versions", f"{ns}/bot", "--peft-type", "nope")
        assert (code, body["error"]) == (6, "unknown_method")
