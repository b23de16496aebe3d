"""Client-side adapter maths from the CLI against the real HTTP app: compose ``cat`` registered
with its lineage and audit event, ``--to DIR`` without registering, refusals (policy, bad
``REF=WEIGHT``, no torch); base checkpoints pulled back byte for byte; base lineage."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from registry.cli import app
from registry.cli.adapters_maths import parse_weighted
from tests.cli.test_cli_e2e import cli
from tests.factories.catalog import unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

ADAPTERS = PEFT_FIXTURES / "adapters"
LLAMA = PEFT_FIXTURES / "bases" / "tiny-llama"


def _api(server: LiveServer) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.token}"})


def _ok(server: LiveServer, *args: str, token: str | None = None) -> Any:
    code, body, err = cli(server, *args, token=token)
    assert code == 0, (body, err)
    return body


def register_base(server: LiveServer, name: str, *extra: str) -> None:
    """``base-models register NAME --revision main --from tiny-llama [EXTRA…]``."""
    _ok(server, "base-models", "register", name, "--revision", "main", "--from", str(LLAMA), *extra)


def _registered(server: LiveServer, ns: str) -> list[tuple[str, int]]:
    """(adapter, latest version) of every adapter in ``ns``."""
    with _api(server) as api:
        items = api.get("/api/v1/adapters", params={"namespace": ns, "limit": 500}).json()["items"]
    return sorted((a["name"], a["latest_version"]) for a in items)


@pytest.fixture(scope="module")
def two_loras(
    live_server: LiveServer,
) -> tuple[LiveServer, str, str, dict[str, Any], dict[str, Any]]:
    """A namespace, tiny-llama registered (headers only) and two LoRA versions on it (shared
    by the module's tests: each registers under its own adapter name)."""
    server, ns, base = live_server, unique("maths"), unique("llama")
    _ok(server, "namespaces", "create", ns)
    register_base(server, base)
    pushed = [
        _ok(
            server,
            "adapters",
            "push",
            str(ADAPTERS / src),
            "--adapter",
            f"{ns}/{name}",
            "--base",
            f"{base}@main",
        )
        for src, name in (("llama-lora-rank-pattern", "a"), ("llama-rslora-r8", "b"))
    ]
    return server, ns, f"{base}@main", pushed[0], pushed[1]


class TestCompose:
    def test_cat_registers_a_version_with_lineage_and_audit(
        self, two_loras: tuple[LiveServer, str, str, dict[str, Any], dict[str, Any]]
    ) -> None:
        server, ns, base, a, b = two_loras
        by_digest = f"{ns}/b@{b['digest']}"  # holds ':' and no '=': split on the last '='
        body = _ok(
            server,
            "adapters",
            "compose",
            "--adapter",
            f"{ns}/mix",
            "--from",
            f"{ns}/a@v1=0.7",
            "--from",
            f"{by_digest}=0.3",
            "--method",
            "cat",
            "--seed",
            "7",
        )
        assert (body["ref"], body["state"], body["base"]) == (f"{ns}/mix@v1", "validated", base)
        assert body["digest"].startswith("sha256:")
        assert (body["report"]["operation"], body["report"]["method"]) == ("compose", "cat")
        assert sorted(body["report"]["files"]) == [
            "adapter_config.json",
            "adapter_model.safetensors",
        ]
        assert body["r"] >= a["r"] + b["r"]  # ranks concatenate

        lineage = _ok(server, "adapters", "lineage", f"{ns}/mix@v1")["edges"]
        composed = {e["parent"]: e["recipe"] for e in lineage if e["relation"] == "composed_from"}
        assert set(composed) == {a["ref"], b["ref"]}
        for parent, weight, digest in ((a["ref"], 0.7, a["digest"]), (b["ref"], 0.3, b["digest"])):
            recipe = composed[parent]
            assert (recipe["weight"], recipe["digest"]) == (weight, digest)
            # cat draws nothing at random: a --seed it does not use is recorded as null
            assert (recipe["method"], recipe["seed"]) == ("cat", None)
            assert recipe["parameters"]["seed"] is None
            assert recipe["implementation"].startswith("adapter-registry-maths/")
        assert {(e["relation"], e["parent"]) for e in lineage if e["depth"] == 1} >= {
            ("trained_on", base)
        }
        down = _ok(server, "adapters", "lineage", f"{ns}/a@v1", "--descendants")["edges"]
        assert (f"{ns}/mix@v1", "composed_from") in {(e["child"], e["relation"]) for e in down}

        with _api(server) as api:
            events = api.get(
                "/api/v1/audit/events",
                params={"action": "adapter.compose", "resource": f"adapter:{ns}/mix@v1"},
            ).json()["items"]
        [event] = events
        assert {(i["ref"], i["digest"]) for i in event["after"]["inputs"]} == {
            (a["ref"], a["digest"]),
            (b["ref"], b["digest"]),
        }
        assert event["after"]["output"]["digest"] == body["digest"]

    def test_to_dir_writes_without_registering(
        self,
        two_loras: tuple[LiveServer, str, str, dict[str, Any], dict[str, Any]],
        tmp_path: Path,
    ) -> None:
        server, ns, _base, _a, _b = two_loras
        out = tmp_path / "mix"
        before = _registered(server, ns)
        body = _ok(
            server,
            "adapters",
            "compose",
            "--from",
            f"{ns}/a@v1=1",
            "--from",
            f"{ns}/b@v1=-0.5",
            "--method",
            "cat",
            "--to",
            str(out),
        )
        assert body["dir"] == str(out)
        assert sorted(p.name for p in out.iterdir()) == sorted(body["report"]["files"])
        assert [i["weight"] for i in body["report"]["recipe"]["inputs"]] == [1.0, -0.5]
        # Valid against the base, and nothing registered.
        assert cli(server, "adapters", "validate", str(out), "--base-dir", str(LLAMA))[0] == 0
        assert _registered(server, ns) == before

    def test_not_allowed_to_compose_exits_3_and_registers_nothing(
        self, two_loras: tuple[LiveServer, str, str, dict[str, Any], dict[str, Any]]
    ) -> None:
        server, ns, _base, _a, _b = two_loras
        dev = unique("dev")
        _ok(server, "principals", "create", dev, "--role", "developer", "--namespace", ns)
        scoped = _ok(
            server,
            "tokens",
            "create",
            "--principal",
            dev,
            "--scope",
            "read",
            "--scope",
            "upload",
            "--scope",
            "register_version",
        )["token"]
        code, body, _ = cli(
            server,
            "adapters",
            "compose",
            "--adapter",
            f"{ns}/denied",
            "--from",
            f"{ns}/a@v1=1",
            "--method",
            "cat",
            token=scoped,
        )
        assert code == 3
        assert (body["error"], body["context"]["action"]) == ("policy_denied", "compose_adapters")
        assert cli(server, "adapters", "show", f"{ns}/denied")[0] == 4

    def test_incompatible_inputs_exit_6(
        self, two_loras: tuple[LiveServer, str, str, dict[str, Any], dict[str, Any]]
    ) -> None:
        server, ns, base, _a, _b = two_loras
        _ok(
            server,
            "adapters",
            "push",
            str(ADAPTERS / "llama-dora-r4"),
            "--adapter",
            f"{ns}/dora",
            "--base",
            base,
        )
        code, body, _ = cli(
            server,
            "adapters",
            "compose",
            "--adapter",
            f"{ns}/bad",
            "--from",
            f"{ns}/a@v1=1",
            "--from",
            f"{ns}/dora@v1=1",
            "--method",
            "cat",
        )
        assert (code, body["error"]) == (6, "incompatible_adapters")
        assert body["context"]["reason"] == "dora_not_combinable"


@pytest.mark.parametrize(
    "value",
    [
        "acme/a@v1",
        "acme/a@v1=",
        "=0.5",
        "acme/a@v1=abc",
        "acme/a@v1=nan",
        "acme/a@v1=inf",
        "acme/a@v1=1e9",
        "noslash=0.5",
    ],
)
def test_bad_from_values_are_usage_errors(value: str) -> None:
    args = ["adapters", "compose", "--adapter", "acme/mix", "--from", value, "--method", "cat"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output


@pytest.mark.parametrize("value", ["acme/a@v1=0", "acme/a@v1=1.5", "acme/a@v1=-3"])
def test_bad_site_values_are_usage_errors(value: str) -> None:
    args = ["adapters", "aggregate", "--adapter", "acme/g", "--site", value]
    assert CliRunner().invoke(app, args).exit_code == 2


def test_destination_is_an_adapter_or_a_dir(tmp_path: Path) -> None:
    for extra in ([], ["--adapter", "acme/mix", "--to", str(tmp_path)], ["--adapter", "acme"]):
        args = ["adapters", "compose", "--from", "acme/a@v1=1", "--method", "cat", *extra]
        assert CliRunner().invoke(app, args).exit_code == 2


def test_weighted_refs_split_on_the_last_equals_sign() -> None:
    digest = "sha256:" + "ab" * 32
    assert parse_weighted(f"acme/a@{digest}=0.25", "--from") == (f"acme/a@{digest}", 0.25)
    assert parse_weighted("acme/a@v3=-1", "--from") == ("acme/a@v3", -1.0)
    assert parse_weighted("acme/site-a@v3=1200", "--site", samples=True) == ("acme/site-a@v3", 1200)
    with pytest.raises(typer.BadParameter):
        parse_weighted("acme/a@v3=1200.5", "--site", samples=True)


def test_without_torch_the_commands_say_so(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    env["REGISTRY_URL"] = "http://127.0.0.1:9"  # never reached: torch is checked first
    prelude = "import sys; sys.modules['torch'] = None; from registry.cli import main; main()"
    for args in (
        [
            "adapters",
            "compose",
            "--adapter",
            "acme/mix",
            "--from",
            "acme/a@v1=1",
            "--method",
            "cat",
        ],
        ["adapters", "merge", "acme/a@v1", "--to", str(tmp_path / "m")],
    ):
        done = subprocess.run(
            [sys.executable, "-c", prelude, *args, "--output", "json"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert '"error": "maths_unavailable"' in done.stdout
    assert not (tmp_path / "m").exists()


class TestBaseCheckpoints:
    def test_pull_a_stored_base_byte_for_byte(
        self, live_server: LiveServer, tmp_path: Path
    ) -> None:
        base = unique("llama")
        register_base(live_server, base, "--upload-weights")
        body = _ok(live_server, "base-models", "pull", f"{base}@main", "--to", str(tmp_path / "b"))
        assert body["ref"] == f"{base}@main"
        assert body["manifest_digest"].startswith("sha256:")
        names = {f["name"] for f in body["files"]}
        assert names == {"config.json", "model.safetensors"}
        for name in names:
            assert (tmp_path / "b" / name).read_bytes() == (LLAMA / name).read_bytes()
        again = _ok(live_server, "base-models", "pull", f"{base}@main", "--to", str(tmp_path / "b"))
        assert (again["skipped"], again["resumed"]) == (sorted(names), [])  # a rerun: complete
        (tmp_path / "b" / "notes.txt").write_text("mine\n")
        code, refused, _ = cli(
            live_server, "base-models", "pull", f"{base}@main", "--to", str(tmp_path / "b")
        )
        assert (code, refused["error"]) == (5, "target_not_empty")

    def test_a_tampered_base_blob_fails_with_exit_8(
        self, live_server: LiveServer, tmp_path: Path
    ) -> None:
        src, base = tmp_path / "src", unique("llama")
        shutil.copytree(LLAMA, src)
        config = json.loads((src / "config.json").read_text())
        (src / "config.json").write_text(json.dumps({**config, "note": base}))  # a blob of its own
        _ok(
            live_server,
            "base-models",
            "register",
            base,
            "--revision",
            "main",
            "--from",
            str(src),
            "--upload-weights",
        )
        shown = _ok(live_server, "base-models", "show", f"{base}@main")
        hex_ = next(f for f in shown["files"] if f["name"] == "config.json")["digest"][7:]
        root = Path(live_server.env["REGISTRY_STORAGE__ROOT"])
        (root / "blobs" / "sha256" / hex_[:2] / hex_).write_bytes(b"tampered at rest\n")
        out = tmp_path / "out"
        code, body, _ = cli(live_server, "base-models", "pull", f"{base}@main", "--to", str(out))
        assert (code, body["error"]) == (8, "integrity_failure")
        assert not (out / "config.json").exists()

    def test_a_base_without_stored_weights(self, live_server: LiveServer, tmp_path: Path) -> None:
        base = unique("llama")
        register_base(live_server, base)
        code, body, _ = cli(
            live_server, "base-models", "pull", f"{base}@main", "--to", str(tmp_path / "b")
        )
        assert (code, body["error"]) == (4, "file_not_found")
        assert (
            cli(live_server, "base-models", "pull", f"{base}@nope", "--to", str(tmp_path))[0] == 4
        )

    def test_base_lineage(self, live_server: LiveServer) -> None:
        base, nf4 = unique("llama"), unique("llama-nf4")
        register_base(live_server, base)
        with _api(live_server) as api:
            body = {**_ok(live_server, "base-models", "show", f"{base}@main"), "name": nf4}
            manifest = api.get(f"/api/v1/base-models/{base}/revisions/main/manifest").json()
            parent = {
                "ref": f"{base}@main",
                "relation": "quantized_from",
                "kind": "base_model_version",
            }
            r = api.post(
                "/api/v1/base-models",
                json={
                    "name": nf4,
                    "revision": "main",
                    "config": manifest["config"],
                    "tensors": manifest["tensors"],
                    "parents": [parent],
                },
            )
            assert r.status_code == 201, (r.text, body)
        up = _ok(live_server, "base-models", "lineage", f"{nf4}@main")["edges"]
        assert [(e["child_kind"], e["relation"], e["parent"]) for e in up] == [
            ("base_model_version", "quantized_from", f"{base}@main")
        ]
        down = _ok(live_server, "base-models", "lineage", f"{base}@main", "--descendants")
        assert [e["child"] for e in down["edges"]] == [f"{nf4}@main"]
