"""The sticky, deterministic traffic split between a deployment's stable and candidate versions.

Hash spec ``sha256-salt-key-v1`` (stored on every deployment revision, documented for other
languages in ``docs/serving.md``)::

    digest = sha256(utf8(salt) + b":" + utf8(key))
    bucket = uint64_big_endian(digest[0:8]) mod 10000
    arm    = "candidate" if bucket < share_bp else "stable"

``share_bp`` is the candidate's share in basis points (0..10000). Because the comparison is
``bucket < share_bp``, raising the share only ever moves keys from stable to candidate, and a key
keeps its arm for as long as the salt and the share stay put. Each rollout draws a new salt
(``new_salt``), so the keys that were canaries in one rollout are not the canaries of the next.

Salts never contain ``":"`` (so ``salt ":" key`` splits back unambiguously); keys are 1 to 1024
characters of any Unicode text except NUL.
"""

from __future__ import annotations

import secrets
from hashlib import sha256
from typing import Literal

HASH_SPEC_V1 = "sha256-salt-key-v1"
HASH_SPECS: frozenset[str] = frozenset({HASH_SPEC_V1})
BUCKETS = 10_000
MAX_SHARE_BP = BUCKETS
MAX_KEY_CHARS = 1024
MAX_SALT_CHARS = 256

Arm = Literal["stable", "candidate"]
STABLE: Arm = "stable"
CANDIDATE: Arm = "candidate"

# (salt, key, bucket): recomputed independently in tests/rollout/test_hashing.py and listed in
# docs/serving.md, for implementers of the spec in other languages.
TEST_VECTORS: tuple[tuple[str, str, int], ...] = (
    ("s", "a", 2107),
    ("s", "user-1", 8382),
    ("9f2c4e1a7b3d5f60a1b2c3d4e5f60718", "user-1", 4700),
    ("9f2c4e1a7b3d5f60a1b2c3d4e5f60718", "user-2", 701),
    ("9f2c4e1a7b3d5f60a1b2c3d4e5f60718", "tenant-ä", 45),
    ("9f2c4e1a7b3d5f60a1b2c3d4e5f60718", "用户-42", 2763),
    ("0123456789abcdef0123456789abcdef", "session:abc:123", 5192),
    ("0123456789abcdef0123456789abcdef", ":", 2689),
    ("0123456789abcdef0123456789abcdef", "a:b", 1326),
    ("salt", "with:colons:key", 9259),
    ("0123456789abcdef0123456789abcdef", "k" * 1024, 7795),
    ("0123456789abcdef0123456789abcdef", "😀 emoji key", 7163),
    ("deadbeefdeadbeefdeadbeefdeadbeef", "12345", 9219),
)


def check_salt(salt: object) -> str:
    """``salt`` if it is a valid salt (1..256 characters, no ``":"``, no NUL), else ValueError."""
    if not isinstance(salt, str) or not 0 < len(salt) <= MAX_SALT_CHARS:
        raise ValueError(f"salt must be a string of 1 to {MAX_SALT_CHARS} characters")
    if ":" in salt or "\x00" in salt:
        raise ValueError("salt must not contain ':' or NUL")
    return salt


def check_key(key: object) -> str:
    """``key`` if it is a valid routing key (1..1024 characters, no NUL), else ValueError."""
    if not isinstance(key, str) or not 0 < len(key) <= MAX_KEY_CHARS:
        raise ValueError(f"routing key must be a string of 1 to {MAX_KEY_CHARS} characters")
    if "\x00" in key:
        raise ValueError("routing key must not contain NUL")
    return key


def check_share_bp(share_bp: object) -> int:
    """``share_bp`` if it is an int in 0..10000 (bool refused), else ValueError."""
    if not isinstance(share_bp, int) or isinstance(share_bp, bool):
        raise ValueError("share_bp must be an integer")
    if not 0 <= share_bp <= MAX_SHARE_BP:
        raise ValueError(f"share_bp must lie in 0..{MAX_SHARE_BP}, got {share_bp}")
    return share_bp


def bucket(salt: str, key: str) -> int:
    """The key's bucket in 0..9999 under ``salt`` (spec ``sha256-salt-key-v1``)."""
    raw = (check_salt(salt) + ":" + check_key(key)).encode("utf-8")
    return int.from_bytes(sha256(raw).digest()[:8], "big") % BUCKETS


def arm(salt: str, key: str, share_bp: int) -> Arm:
    """``"candidate"`` when the key's bucket is below ``share_bp``, else ``"stable"``."""
    share = check_share_bp(share_bp)
    return CANDIDATE if bucket(salt, key) < share else STABLE


def new_salt() -> str:
    """A fresh random salt (32 hex characters): one per rollout, stored on its revisions."""
    return secrets.token_hex(16)
