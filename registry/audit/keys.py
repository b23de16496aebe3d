"""The Ed25519 key that signs audit checkpoints.

The private key is a PKCS#8 PEM file (``AuditSettings.signing_key_path``), created with mode
0600 on first use (its directory 0700) if it does not exist. Creation is race-free: the key is
written to a private temp file and hard-linked into place, so two processes starting at once
end up with the same key. The key id is the first 16 hex characters of sha256 over the raw
32-byte public key.

Whoever can read the private key can sign checkpoints for a rewritten history: keep it off the
database host where possible and back it up. Replace it only with ``audit rotate-key``
(:mod:`registry.audit.keyring`), which has the new key vouch for the old one so that the
checkpoints the old key signed keep verifying; a key that is simply lost or swapped leaves its
checkpoints signed by a key nobody vouches for (``checkpoint_key_unknown``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
)

logger = logging.getLogger(__name__)


def raw_public_key(public_key: Ed25519PublicKey) -> bytes:
    """The 32 raw bytes of an Ed25519 public key."""
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex characters of sha256(raw public key)."""
    return hashlib.sha256(raw_public_key(public_key)).hexdigest()[:16]


def public_key_from_hex(value: str) -> Ed25519PublicKey:
    """An Ed25519 public key from its raw hex (ValueError if malformed)."""
    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(value))


def _parse(data: bytes, path: Path) -> Ed25519PrivateKey:
    key = load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


def load_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the PEM private key at ``path`` (FileNotFoundError if missing)."""
    path = Path(path)
    data = path.read_bytes()
    if stat.S_IMODE(path.stat().st_mode) & 0o077:
        logger.warning("audit signing key %s is readable by other users; chmod 600 it", path)
    return _parse(data, path)


def write_key_file(path: Path, key: Ed25519PrivateKey) -> Path:
    """Write ``key`` as PKCS#8 PEM to a new private (0600) temp file next to ``path`` (its
    directory created 0700) and return the temp file's path; the caller links or renames it
    into place."""
    pem = key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        view = memoryview(pem)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    return tmp


def load_or_create_signing_key(path: Path) -> Ed25519PrivateKey:
    """Load the signing key at ``path``, creating it (0600, parent 0700) if it is missing."""
    path = Path(path)
    try:
        return load_signing_key(path)
    except FileNotFoundError:
        pass
    key = Ed25519PrivateKey.generate()
    tmp = write_key_file(path, key)
    try:
        os.link(tmp, path)  # atomic, and refuses to replace a key another process just made
    except FileExistsError:
        return load_signing_key(path)
    finally:
        tmp.unlink(missing_ok=True)
    logger.warning(
        "created audit signing key %s (key id %s); back it up",
        path,
        key_id(key.public_key()),
    )
    return key
