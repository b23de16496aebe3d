"""The sticky split (spec sha256-salt-key-v1): test vectors, validation, and its properties."""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.canary.hashing import (
    HASH_SPEC_V1,
    TEST_VECTORS,
    arm,
    bucket,
    check_key,
    check_salt,
    new_salt,
)

N_KEYS = 100_000

salts = st.text(
    st.characters(codec="utf-8", exclude_characters=":\x00"),
    min_size=1,
    max_size=64,
)
keys = st.text(
    st.characters(codec="utf-8", exclude_characters="\x00"),
    min_size=1,
    max_size=1024,
)
shares = st.integers(min_value=0, max_value=10_000)


def reference_bucket(salt: str, key: str) -> int:
    """The spec, written out independently of the module."""
    digest = hashlib.sha256(salt.encode("utf-8") + b":" + key.encode("utf-8")).digest()
    return int.from_bytes(digest[0:8], byteorder="big", signed=False) % 10_000


def random_keys(seed: int, n: int = N_KEYS) -> list[str]:
    rng = random.Random(seed)
    return [f"user-{rng.getrandbits(64):016x}" for _ in range(n)]


# --------------------------------------------------------------------------- vectors


def test_spec_name() -> None:
    assert HASH_SPEC_V1 == "sha256-salt-key-v1"


@pytest.mark.parametrize(("salt", "key", "expected"), TEST_VECTORS)
def test_vectors_recomputed_with_hashlib(salt: str, key: str, expected: int) -> None:
    assert reference_bucket(salt, key) == expected
    assert bucket(salt, key) == expected


def test_vectors_cover_the_awkward_cases() -> None:
    assert len(TEST_VECTORS) >= 12
    vector_keys = [key for _, key, _ in TEST_VECTORS]
    assert any(len(salt) == 1 for salt, _, _ in TEST_VECTORS)
    assert "tenant-ä" in vector_keys
    assert "用户-42" in vector_keys
    assert any(len(key) == 1024 for key in vector_keys)
    assert sum(":" in key for key in vector_keys) >= 3
    assert any(not key.isascii() and len(key.encode()) > len(key) + 2 for key in vector_keys)
    assert len({(s, k) for s, k, _ in TEST_VECTORS}) == len(TEST_VECTORS)


def test_arm_compares_bucket_with_share() -> None:
    salt, key, b = TEST_VECTORS[2]
    assert arm(salt, key, b) == "stable"  # bucket < share is false at equality
    assert arm(salt, key, b + 1) == "candidate"
    assert arm(salt, key, 0) == "stable"
    assert arm(salt, key, 10_000) == "candidate"


# --------------------------------------------------------------------------- validation


@pytest.mark.parametrize("share", [-1, 10_001, True, False, 1.5, 500.0, "500", None])
def test_bad_share_is_refused(share: object) -> None:
    with pytest.raises(ValueError, match="share_bp"):
        arm("s", "k", share)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "k" * 1025, "a\x00b", None, b"bytes", 42, "\ud800"])
def test_bad_key_is_refused(key: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages
        bucket("s", key)  # type: ignore[arg-type]
    with pytest.raises(ValueError):  # noqa: PT011
        arm("s", key, 0)  # type: ignore[arg-type]


@pytest.mark.parametrize("salt", ["", "a:b", "a\x00", "s" * 257, None, 7])
def test_bad_salt_is_refused(salt: object) -> None:
    with pytest.raises(ValueError, match="salt"):
        bucket(salt, "k")  # type: ignore[arg-type]


def test_limits_are_inclusive() -> None:
    assert check_key("k" * 1024) == "k" * 1024
    assert check_salt("s" * 256) == "s" * 256


def test_new_salt_is_random_hex_and_valid() -> None:
    drawn = {new_salt() for _ in range(100)}
    assert len(drawn) == 100
    assert all(re.fullmatch(r"[0-9a-f]{32}", s) and check_salt(s) == s for s in drawn)


# --------------------------------------------------------------------------- properties


@given(salt=salts, key=keys)
def test_bucket_is_the_spec(salt: str, key: str) -> None:
    b = bucket(salt, key)
    assert 0 <= b < 10_000
    assert b == reference_bucket(salt, key)


@given(salt=salts, key=keys, a=shares, b=shares)
def test_raising_the_share_never_moves_a_key_back(salt: str, key: str, a: int, b: int) -> None:
    low, high = min(a, b), max(a, b)
    if arm(salt, key, low) == "candidate":
        assert arm(salt, key, high) == "candidate"
    if arm(salt, key, high) == "stable":
        assert arm(salt, key, low) == "stable"


@given(salt=salts, key=keys, share=shares)
def test_same_inputs_same_arm(salt: str, key: str, share: int) -> None:
    first = arm(salt, key, share)
    assert all(arm(salt, key, share) == first for _ in range(3))
    assert first == ("candidate" if reference_bucket(salt, key) < share else "stable")


@settings(max_examples=50)
@given(salt=salts, steps=st.lists(shares, min_size=2, max_size=6))
def test_a_rollout_only_adds_candidate_keys(salt: str, steps: list[int]) -> None:
    """Along increasing shares, the candidate set only grows (over a fixed sample of keys)."""
    sample = random_keys(7, 200)
    previous: set[str] = set()
    for share in sorted(steps):
        current = {k for k in sample if arm(salt, k, share) == "candidate"}
        assert previous <= current
        previous = current


@pytest.mark.parametrize("seed", [1, 2])
def test_observed_share_within_one_percent(seed: int) -> None:
    salt = random.Random(seed).getrandbits(128).to_bytes(16, "big").hex()
    buckets = [bucket(salt, k) for k in random_keys(seed)]
    for share_bp in (100, 500, 2_500, 5_000, 9_000):
        observed = sum(b < share_bp for b in buckets) / N_KEYS * 10_000
        assert abs(observed - share_bp) <= 100, (share_bp, observed)


@pytest.mark.parametrize("share_bp", [1_000, 5_000])
def test_different_salts_are_decorrelated(share_bp: int) -> None:
    sample = random_keys(3)
    a = [bucket("0123456789abcdef0123456789abcdef", k) < share_bp for k in sample]
    b = [bucket("fedcba9876543210fedcba9876543210", k) < share_bp for k in sample]
    p = share_bp / 10_000
    both = sum(x and y for x, y in zip(a, b, strict=True)) / N_KEYS
    # independent arms: P(candidate under both) = p²; 0.005 is > 5 standard deviations here
    assert abs(both - p * p) < 0.005, (both, p * p)
    # and the candidate sets differ: with the same salt they would coincide
    assert sum(x != y for x, y in zip(a, b, strict=True)) / N_KEYS == pytest.approx(
        2 * p * (1 - p), abs=0.01
    )


def test_docs_list_the_same_vectors() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "serving.md").read_text()
    rows = [line for line in docs.splitlines() if line.startswith("| `")]
    for salt, key, expected in TEST_VECTORS:
        shown = '`"k"` \u00d7 1024' if len(key) == 1024 else f"`{key}`"
        prefix = f"| `{salt}` | {shown} | {len(key.encode())} |"
        matching = [row for row in rows if row.startswith(prefix)]
        assert len(matching) == 1, (salt, key)
        assert matching[0].endswith(f"| {expected} |"), matching[0]
        uint64 = int.from_bytes(hashlib.sha256(f"{salt}:{key}".encode()).digest()[:8], "big")
        assert f"| {uint64} |" in matching[0]
    assert len(rows) == len(TEST_VECTORS)
