"""Progress bars: drawn (bytes and bytes/s) when the CLI runs on a real pseudo-terminal against
a real server, absent with ``--output json`` and when the output goes to pipes.

The CLI runs as a subprocess whose stdout and stderr are the slave end of a ``pty`` (what a
terminal gives a program); what it wrote is read from the master end, ANSI sequences removed.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from rich import filesize

from registry.cli._output import State
from registry.cli._progress import on_terminal, progress_bars
from tests.cli.test_cli_e2e import cli
from tests.cli.test_maths_cli import register_base
from tests.factories.catalog import unique
from tests.fixtures.peft import PEFT_FIXTURES
from tests.fixtures.server import LiveServer

ADAPTER = PEFT_FIXTURES / "adapters" / "llama-lora-rank-pattern"
Setup = tuple[LiveServer, str, str]

#: An ANSI escape sequence (colours, cursor moves, show/hide cursor).
ANSI = re.compile(r"\x1b(\[[0-9;?]*[ -/]*[@-~]|[@-Z\\-_])")
#: A transfer rate as the bars print it: ``12.3 MB/s``, ``951 bytes/s``.
RATE = re.compile(r"\d+(\.\d+)? (bytes|[kMGT]B)/s")
#: Anything a progress line could leave behind.
PROGRESS_TEXT = re.compile(r"/s\b|━|upload |download ")


def last(text: str, needle: str) -> str:
    """The last frame of the line holding ``needle`` (the display redraws each line)."""
    return [line for line in text.splitlines() if needle in line][-1]


def _env(server: LiveServer) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("REGISTRY_")
        and k not in ("NO_COLOR", "FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")
    }
    env.update(REGISTRY_URL=server.url, REGISTRY_TOKEN=server.token, TERM="xterm-256color")
    return env


def on_pty(server: LiveServer, *args: str, timeout: float = 120.0) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on one pseudo-terminal (120 columns); → (exit code,
    everything it wrote, ANSI sequences removed, line ends normalised)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "registry", *args],
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        env=_env(server),
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed its end of the terminal
                break
            if not data:
                break
            chunks.append(data)
        code = proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    text = ANSI.sub("", b"".join(chunks).decode("utf-8", "replace"))
    return code, text.replace("\r\n", "\n")


@pytest.fixture(scope="module")
def stored(live_server: LiveServer) -> Setup:
    """A namespace, tiny-llama registered with its weights stored, and one LoRA version."""
    ns, base = unique("progress"), unique("llama")
    assert cli(live_server, "namespaces", "create", ns)[0] == 0
    register_base(live_server, base, "--upload-weights")
    code, _body, err = cli(
        live_server,
        "adapters",
        "push",
        str(ADAPTER),
        "--adapter",
        f"{ns}/a",
        "--base",
        f"{base}@main",
    )
    assert code == 0, err
    return live_server, ns, f"{base}@main"


def test_push_draws_a_bar_with_bytes_per_second_on_a_terminal(stored: Setup) -> None:
    server, ns, base = stored
    code, text = on_pty(
        server, "adapters", "push", str(ADAPTER), "--adapter", f"{ns}/pushed", "--base", base
    )
    assert code == 0, text
    size = (ADAPTER / "adapter_model.safetensors").stat().st_size
    bar = last(text, "upload adapter_model.safetensors")
    assert RATE.search(bar), bar
    assert f"{filesize.decimal(size)}/{filesize.decimal(size)}" in bar, bar
    assert f"{ns}/pushed@v1" in text


def test_pull_draws_a_bar_per_file_on_a_terminal(stored: Setup, tmp_path: Path) -> None:
    server, ns, _base = stored
    code, text = on_pty(server, "adapters", "pull", f"{ns}/a@v1", "--to", str(tmp_path / "out"))
    assert code == 0, text
    for name in ("adapter_model.safetensors", "adapter_config.json"):
        bar = last(text, f"download {name}")
        assert RATE.search(bar), bar
    assert f"pulled {ns}/a@v1" in text
    assert (tmp_path / "out" / "adapter_model.safetensors").read_bytes() == (
        ADAPTER / "adapter_model.safetensors"
    ).read_bytes()


def test_merge_draws_downloads_and_the_computation(stored: Setup, tmp_path: Path) -> None:
    server, ns, _base = stored
    out = tmp_path / "merged"
    code, text = on_pty(server, "adapters", "merge", f"{ns}/a@v1", "--to", str(out))
    assert code == 0, text
    lines = text.splitlines()
    adapter = last(text, "download adapter_model.safetensors")
    weights = last(text, "download model.safetensors")
    assert RATE.search(adapter), text
    assert RATE.search(weights), text
    merge = [line for line in lines if line.startswith("merge ") and "tensors" in line][-1]
    assert re.search(r"(\d+)/\1 tensors", merge), merge
    assert f"merged into {out}" in text


def test_mlflow_import_shows_that_the_server_is_working(stored: Setup) -> None:
    # No MLflow server is needed to see the spinner: the registry refuses an MLflow server it
    # does not allow-list, after the spinner has started.
    server, ns, base = stored
    args = ("adapters", "import", "--from-mlflow", "runs:/0123abcd/peft", "--adapter")
    code, text = on_pty(
        server, *args, f"{ns}/imp", "--base", base, "--mlflow-server", "http://127.0.0.1:9"
    )
    assert code == 3, text
    assert "import from MLflow" in text
    assert "mlflow_server_not_allowed" in text or "not allowed" in text


def test_json_on_a_terminal_prints_only_the_json(stored: Setup, tmp_path: Path) -> None:
    server, ns, base = stored
    code, text = on_pty(
        server,
        "adapters",
        "push",
        str(ADAPTER),
        "--adapter",
        f"{ns}/j",
        "--base",
        base,
        "-o",
        "json",
    )
    assert code == 0, text
    assert json.loads(text)["ref"] == f"{ns}/j@v1"
    code, text = on_pty(
        server, "adapters", "pull", f"{ns}/j@v1", "--to", str(tmp_path / "j"), "--output", "json"
    )
    assert code == 0, text
    assert json.loads(text)["ref"] == f"{ns}/j@v1"


def test_pipes_get_no_progress(stored: Setup, tmp_path: Path) -> None:
    server, ns, base = stored
    env = _env(server)
    for args in (
        ["adapters", "push", str(ADAPTER), "--adapter", f"{ns}/p", "--base", base],
        ["adapters", "pull", f"{ns}/p@v1", "--to", str(tmp_path / "p")],
    ):
        done = subprocess.run(
            [sys.executable, "-m", "registry", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert done.stderr == ""
        assert not PROGRESS_TEXT.search(done.stdout), done.stdout
        assert "\x1b" not in done.stdout


def test_on_terminal_needs_both_streams_and_no_json(monkeypatch: pytest.MonkeyPatch) -> None:
    master, slave = pty.openpty()
    try:
        with os.fdopen(os.dup(slave), "w") as tty, open(os.devnull, "w") as null:
            monkeypatch.setattr(sys, "stdout", tty)
            monkeypatch.setattr(sys, "stderr", tty)
            assert on_terminal(State())
            assert not on_terminal(State(output="json"))  # type: ignore[arg-type]
            monkeypatch.setattr(sys, "stdout", null)  # stdout redirected to a file
            assert not on_terminal(State())
            with progress_bars(State()) as bars:
                assert bars is None
            monkeypatch.setattr(sys, "stdout", tty)
            monkeypatch.setattr(sys, "stderr", null)  # 2>/dev/null
            assert not on_terminal(State())
    finally:
        os.close(master)
        os.close(slave)
