"""An interrupted ``adapters pull`` / ``base-models pull``: never a half-written file under its
final name, and a rerun skips complete files and resumes the partial one with a Range request.

Interruptions are real: a proxy (tests/fixtures/cutting_proxy.py) that cuts or stalls the
download's TCP stream part-way, and a CLI subprocess killed (SIGKILL) or interrupted (SIGINT,
Ctrl-C) while it waits mid-file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from registry.client import ClientError, RegistryClient
from tests.cli.test_cli_e2e import cli, ready
from tests.factories.catalog import unique
from tests.fixtures.cutting_proxy import cutting_proxy
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

__all__ = ["ready"]  # the fixture

SRC = PEFT_FIXTURES / "adapters" / "llama-lora-r16-all-linear"
BIG = "adapter_model.safetensors"  # 134,616 bytes: the file the proxy cuts
CUT = 50_000


def _pushed(world: tuple[LiveServer, str, str]) -> tuple[LiveServer, str]:
    server, ns, base = world
    code, _, err = cli(
        server, "adapters", "push", str(SRC), "--adapter", f"{ns}/bot", "--base", base
    )
    assert code == 0, err
    return server, f"{ns}/bot@v1"


def _partials(out: Path) -> list[Path]:
    return sorted(p for p in out.iterdir() if p.name.endswith(".part"))


def _identical(out: Path) -> None:
    for p in SRC.iterdir():
        assert (out / p.name).read_bytes() == p.read_bytes(), p.name
    assert _partials(out) == []


def test_a_cut_download_leaves_a_partial_and_the_rerun_resumes_it(
    ready: tuple[LiveServer, str, str], tmp_path: Path
) -> None:
    server, ref = _pushed(ready)
    out = tmp_path / "out"
    with cutting_proxy(server.url, CUT, "close") as proxy:
        api = RegistryClient(proxy.url, server.token, 30.0, max_attempts=1)
        with pytest.raises(ClientError) as failed:
            api.pull(ref, out)
        api.close()
        assert proxy.cuts == 1
    assert failed.value.code == "server_unavailable"
    assert not (out / BIG).exists()  # nothing under the final name
    [partial] = _partials(out)
    assert partial.name.startswith(f".{BIG}.")
    assert partial.stat().st_size == CUT
    code, body, err = cli(server, "adapters", "pull", ref, "--to", str(out))
    assert code == 0, err
    assert body["resumed"] == [BIG]
    assert body["skipped"] == sorted(p.name for p in SRC.iterdir() if p.name != BIG)
    _identical(out)
    code, body, _ = cli(server, "adapters", "pull", ref, "--to", str(out))  # all complete
    assert (code, body["skipped"], body["resumed"]) == (
        0,
        sorted(p.name for p in SRC.iterdir()),
        [],
    )


def test_a_retry_within_the_same_pull_resumes(
    ready: tuple[LiveServer, str, str], tmp_path: Path
) -> None:
    server, ref = _pushed(ready)
    out = tmp_path / "out"
    with cutting_proxy(server.url, CUT, "close") as proxy:
        with RegistryClient(proxy.url, server.token, 30.0, sleep=lambda _s: None) as api:
            body = api.pull(ref, out)
        assert proxy.cuts == 1  # the second attempt asked for a range, which passes whole
    assert body["resumed"] == [BIG]
    _identical(out)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "kill"])
def test_an_interrupted_cli_pull_resumes(
    ready: tuple[LiveServer, str, str], tmp_path: Path, sig: signal.Signals
) -> None:
    server, ref = _pushed(ready)
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    with cutting_proxy(server.url, CUT, "stall") as proxy:
        env |= {"REGISTRY_URL": proxy.url, "REGISTRY_TOKEN": server.token}
        proc = subprocess.Popen(
            [sys.executable, "-m", "registry", "adapters", "pull", ref, "--to", str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            # Wait (bounded; not a timing assertion) until the pull sits mid-file.
            deadline = time.monotonic() + 120
            while not (out.is_dir() and any(p.stat().st_size == CUT for p in _partials(out))):
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline, "the pull never reached the cut"
                time.sleep(0.05)
            proc.send_signal(sig)
            proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode != 0
    assert not (out / BIG).exists()
    assert [p.stat().st_size for p in _partials(out)] == [CUT]
    code, body, err = cli(server, "adapters", "pull", ref, "--to", str(out))
    assert code == 0, err
    assert body["resumed"] == [BIG]
    _identical(out)


def test_a_wrong_partial_fails_the_digest_check_and_is_removed(
    ready: tuple[LiveServer, str, str], tmp_path: Path
) -> None:
    server, ref = _pushed(ready)
    out = tmp_path / "out"
    with (
        cutting_proxy(server.url, CUT, "close") as proxy,
        RegistryClient(proxy.url, server.token, 30.0, max_attempts=1) as api,
        pytest.raises(ClientError),
    ):
        api.pull(ref, out)
    [partial] = _partials(out)
    partial.write_bytes(b"\0" * CUT)  # the disk lied: same length, other bytes
    code, body, _ = cli(server, "adapters", "pull", ref, "--to", str(out))
    assert (code, body["error"]) == (8, "integrity_failure")
    assert _partials(out) == []
    assert not (out / BIG).exists()
    code, body, err = cli(server, "adapters", "pull", ref, "--to", str(out))
    assert code == 0, err
    assert body["resumed"] == []
    _identical(out)


def test_a_directory_with_other_files_still_needs_force(
    ready: tuple[LiveServer, str, str], tmp_path: Path
) -> None:
    server, ref = _pushed(ready)
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine\n")
    code, body, _ = cli(server, "adapters", "pull", ref, "--to", str(out))
    assert (code, body["error"]) == (5, "target_not_empty")
    assert body["context"]["file"] == "notes.txt"
    code, body, err = cli(server, "adapters", "pull", ref, "--to", str(out), "--force")
    assert code == 0, err
    assert (out / "notes.txt").read_text() == "mine\n"


def test_an_interrupted_base_pull_resumes(live_server: LiveServer, tmp_path: Path) -> None:
    base_dir = PEFT_FIXTURES / "bases" / "tiny-llama"
    name = unique("base")
    args = ("base-models", "register", name, "--revision", "main", "--from", str(base_dir))
    code, _, err = cli(live_server, *args, "--upload-weights")
    assert code == 0, err
    weights = base_dir / "model.safetensors"
    cut = weights.stat().st_size // 3
    out = tmp_path / "base"
    with (
        cutting_proxy(live_server.url, cut, "close") as proxy,
        RegistryClient(proxy.url, live_server.token, 30.0, max_attempts=1) as api,
        pytest.raises(ClientError),
    ):
        api.pull_base(f"{name}@main", out)
    assert not (out / "model.safetensors").exists()
    code, body, err = cli(live_server, "base-models", "pull", f"{name}@main", "--to", str(out))
    assert code == 0, err
    assert body["resumed"] == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == weights.read_bytes()
    assert _partials(out) == []
