"""The checkpoint signing key: created 0600 on first use, reloaded after, one key under races."""

from __future__ import annotations

import hashlib
import logging
import stat
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from registry.audit.keys import (
    key_id,
    load_or_create_signing_key,
    load_signing_key,
    public_key_from_hex,
    raw_public_key,
)
from registry.settings import AuditSettings


def test_missing_key_is_created_owner_only_with_parent(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "audit.key"

    key = load_or_create_signing_key(path)

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert [p.name for p in path.parent.iterdir()] == ["audit.key"]  # no temp file left
    assert raw_public_key(load_signing_key(path).public_key()) == raw_public_key(key.public_key())


def test_existing_key_is_loaded_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "audit.key"
    first = load_or_create_signing_key(path)

    second = load_or_create_signing_key(path)

    assert raw_public_key(first.public_key()) == raw_public_key(second.public_key())


def test_settings_path_is_usable(tmp_path: Path) -> None:
    settings = AuditSettings(signing_key_path=tmp_path / "var" / "audit-signing.key")

    load_or_create_signing_key(settings.signing_key_path)

    assert settings.signing_key_path.is_file()


def test_key_id_is_first_16_hex_of_sha256_of_raw_public_key(tmp_path: Path) -> None:
    public = load_or_create_signing_key(tmp_path / "k").public_key()

    raw = raw_public_key(public)
    assert len(raw) == 32
    assert key_id(public) == hashlib.sha256(raw).hexdigest()[:16]
    assert raw_public_key(public_key_from_hex(raw.hex())) == raw


def test_concurrent_first_use_yields_one_key(tmp_path: Path) -> None:
    path = tmp_path / "race" / "audit.key"
    start = threading.Barrier(8)
    found: list[bytes] = []

    def worker() -> None:
        start.wait(timeout=30)
        found.append(raw_public_key(load_or_create_signing_key(path).public_key()))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert len(found) == 8
    assert len(set(found)) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["audit.key"]


def test_non_ed25519_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()
    )
    path.write_bytes(pem)

    with pytest.raises(ValueError, match="not an Ed25519"):
        load_or_create_signing_key(path)


def test_readable_key_file_is_warned_about(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "audit.key"
    load_or_create_signing_key(path)
    path.chmod(0o644)

    with caplog.at_level(logging.WARNING, logger="registry.audit.keys"):
        load_signing_key(path)

    assert "readable by other users" in caplog.text
