"""The CLI as CI uses it: a subprocess against a real server, checking JSON and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.factories.catalog import unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer, free_port

ADAPTERS = PEFT_FIXTURES / "adapters"


def cli(
    server: LiveServer | None, *args: str, token: str | None = None, url: str | None = None
) -> tuple[int, Any, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    if server is not None:
        env["REGISTRY_URL"] = url or server.url
        env["REGISTRY_TOKEN"] = token or server.token
    done = subprocess.run(
        [sys.executable, "-m", "registry", *args, "--output", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    try:
        body = json.loads(done.stdout) if done.stdout.strip() else None
    except json.JSONDecodeError:
        pytest.fail(f"stdout is not JSON: {done.stdout!r} (stderr {done.stderr!r})")
    return done.returncode, body, done.stderr


@pytest.fixture
def ready(live_server: LiveServer) -> tuple[LiveServer, str, str]:
    ns, base = unique("cli"), unique("llama")
    assert cli(live_server, "namespaces", "create", ns)[0] == 0
    code, _body, err = cli(
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
    return live_server, ns, f"{base}@main"


class TestPushPull:
    def test_push_then_pull_is_byte_identical(
        self, ready: tuple[LiveServer, str, str], tmp_path: Path
    ) -> None:
        server, ns, base = ready
        src = ADAPTERS / "llama-lora-r16-all-linear"
        code, body, err = cli(
            server, "adapters", "push", str(src), "--adapter", f"{ns}/bot", "--base", base
        )
        assert code == 0, err
        assert (body["version"], body["state"]) == (1, "validated")
        assert body["digest"].startswith("sha256:")
        code, _pulled, err = cli(
            server, "adapters", "pull", f"{ns}/bot@v1", "--to", str(tmp_path / "out")
        )
        assert code == 0, err
        for p in src.iterdir():
            assert (tmp_path / "out" / p.name).read_bytes() == p.read_bytes()
        code, listing, _ = cli(server, "adapters", "versions", f"{ns}/bot")
        assert [v["version"] for v in listing["items"]] == [1]

    def test_bad_adapter_exits_6_with_reason(self, ready: tuple[LiveServer, str, str]) -> None:
        server, ns, base = ready
        code, body, _ = cli(
            server,
            "adapters",
            "push",
            str(PEFT_FIXTURES / "broken" / "truncated-safetensors"),
            "--adapter",
            f"{ns}/bot",
            "--base",
            base,
        )
        assert code == 6
        assert (body["error"], body["context"]["reason"]) == ("corrupt_safetensors", "truncated")
        assert cli(server, "adapters", "show", f"{ns}/bot")[0] == 4

    def test_same_content_twice_exits_5(self, ready: tuple[LiveServer, str, str]) -> None:
        server, ns, base = ready
        args = (
            "adapters",
            "push",
            str(ADAPTERS / "llama-lokr-r4"),
            "--adapter",
            f"{ns}/bot",
            "--base",
            base,
        )
        assert cli(server, *args)[0] == 0
        code, body, _ = cli(server, *args)
        assert code == 5
        assert body["error"] == "version_exists"

    def test_tampered_blob_fails_pull_with_exit_8(
        self, ready: tuple[LiveServer, str, str], tmp_path: Path
    ) -> None:
        server, ns, base = ready
        work = tmp_path / "adapter"
        shutil.copytree(ADAPTERS / "llama-loha-r4", work)
        (work / "README.md").write_text(f"unique {unique()}\n")
        code, body, _ = cli(
            server, "adapters", "push", str(work), "--adapter", f"{ns}/bot", "--base", base
        )
        assert code == 0
        readme = next(f for f in body["files"] if f["name"] == "README.md")
        hex_ = readme["digest"].removeprefix("sha256:")
        blob = Path(server.env["REGISTRY_STORAGE__ROOT"]) / "blobs" / "sha256" / hex_[:2] / hex_
        blob.write_bytes(b"tampered at rest\n")
        code, body, _ = cli(
            server, "adapters", "pull", f"{ns}/bot@v1", "--to", str(tmp_path / "out")
        )
        assert code == 8
        assert body["error"] == "integrity_failure"
        assert not (tmp_path / "out" / "README.md").exists()

    def test_versions_all_follows_pages(
        self, ready: tuple[LiveServer, str, str], tmp_path: Path
    ) -> None:
        server, ns, base = ready
        for i in range(3):
            work = tmp_path / f"v{i}"
            shutil.copytree(ADAPTERS / "llama-adalora", work)
            (work / "README.md").write_text(f"variant {i}\n")
            assert (
                cli(
                    server,
                    "adapters",
                    "push",
                    str(work),
                    "--adapter",
                    f"{ns}/bot",
                    "--base",
                    base,
                    "--tag",
                    f"t{i}",
                )[0]
                == 0
            )
        code, body, _ = cli(server, "adapters", "versions", f"{ns}/bot", "--limit", "1", "--all")
        assert code == 0
        assert [v["version"] for v in body["items"]] == [3, 2, 1]
        code, body, _ = cli(server, "adapters", "versions", f"{ns}/bot", "--tag", "t1")
        assert [v["version"] for v in body["items"]] == [2]


class TestFailures:
    def test_wrong_token_exits_3(self, live_server: LiveServer) -> None:
        code, body, _ = cli(live_server, "namespaces", "list", token="ar_" + "x" * 43)
        assert code == 3
        assert body["error"] == "unauthenticated"

    def test_unreachable_server_exits_7(self, live_server: LiveServer) -> None:
        code, body, _ = cli(
            live_server, "namespaces", "list", url=f"http://127.0.0.1:{free_port()}"
        )
        assert code == 7
        assert body["error"] == "server_unavailable"

    def test_unknown_adapter_exits_4(self, ready: tuple[LiveServer, str, str]) -> None:
        server, ns, _ = ready
        code, body, _ = cli(server, "adapters", "show", f"{ns}/nobody@v1")
        assert code == 4
        assert body["error"] == "adapter_not_found"

    def test_import_outside_allowlist_exits_3(self, ready: tuple[LiveServer, str, str]) -> None:
        server, ns, base = ready
        code, body, _ = cli(
            server,
            "adapters",
            "register",
            "--from",
            "s3://elsewhere/x/",
            "--adapter",
            f"{ns}/bot",
            "--base",
            base,
        )
        assert code == 3
        assert body["error"] == "uri_not_allowed"


class TestServerSide:
    def test_bootstrap_refuses_when_an_admin_exists(self, live_server: LiveServer) -> None:
        env = {k: v for k, v in live_server.env.items()}
        done = subprocess.run(
            [sys.executable, "-m", "registry", "bootstrap", "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 5
        assert json.loads(done.stdout)["error"] == "admin_exists"

    def test_db_check_on_current_schema(self, live_server: LiveServer) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "registry", "db", "check", "--output", "json"],
            env=live_server.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["up_to_date"] is True
