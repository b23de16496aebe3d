"""Naming the edited event of a re-chained history (issue 11, point 12): the checkpoint's
syndrome pins down one edited event; several edits give the range after the last matching
checkpoint. First the syndrome arithmetic as a property, then tampered databases."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from registry.audit import service, syndrome
from registry.audit.checkpoints import Checkpoint, export_checkpoint, sign_checkpoint
from registry.audit.verify import VerifyResult, verify
from registry.db.base import utcnow
from registry.db.session import Sessions, unit_of_work
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import append_events, tamper
from tests.audit.test_verify import rechain


def digests(count: int, salt: bytes = b"") -> list[bytes]:
    return [hashlib.sha256(salt + i.to_bytes(8, "big")).digest() for i in range(count)]


def values(after: int, items: list[bytes]) -> list[str]:
    acc = syndrome.Syndrome(after)
    for i, digest in enumerate(items):
        acc.add(after + 1 + i, digest)
    return acc.values()


class TestSyndrome:
    @given(count=st.integers(1, 300), data=st.data())
    def test_one_changed_event_is_located(self, count: int, data: st.DataObject) -> None:
        index = data.draw(st.integers(0, count - 1))
        original = digests(count)
        edited = list(original)
        edited[index] = hashlib.sha256(b"forged").digest()

        found = syndrome.locate(values(40, original), values(40, edited), after=40, count=count)

        assert found == 41 + index

    @given(count=st.integers(2, 300), data=st.data())
    def test_two_changed_events_are_not_located(self, count: int, data: st.DataObject) -> None:
        first, second = data.draw(
            st.lists(st.integers(0, count - 1), min_size=2, max_size=2, unique=True)
        )
        original = digests(count)
        edited = list(original)
        edited[first] = hashlib.sha256(b"one").digest()
        edited[second] = hashlib.sha256(b"two").digest()

        assert syndrome.locate(values(0, original), values(0, edited), after=0, count=count) is None

    def test_width_is_logarithmic(self) -> None:
        assert [syndrome.width(n) for n in (1, 2, 3, 4, 5, 1024, 1025, 10**6)] == [
            1,
            2,
            3,
            3,
            4,
            11,
            12,
            21,
        ]

    def test_out_of_order_add_is_refused(self) -> None:
        acc = syndrome.Syndrome(0)
        with pytest.raises(ValueError, match="seq order"):
            acc.add(2, b"\0" * 32)

    @pytest.mark.parametrize("stored", [None, [], ["ab" * 32], ["zz" * 32, "ab" * 32], [1, 2]])
    def test_malformed_stored_syndrome_is_refused(self, stored: Any) -> None:
        with pytest.raises(ValueError, match="syndrome"):
            syndrome.check_values(stored, 2)


def take(sessions: Sessions, store: LocalArtifactStore, key: Ed25519PrivateKey) -> Checkpoint:
    with unit_of_work(sessions.read) as session:
        made = export_checkpoint(session, store, key)
    assert made is not None
    return made


def run_verify(
    sessions: Sessions, store: LocalArtifactStore, key: Ed25519PrivateKey
) -> VerifyResult:
    with unit_of_work(sessions.read) as session:
        return verify(session, store, public_keys=[key.public_key()])


def located(result: VerifyResult) -> tuple[str | None, int | None, tuple[int, int] | None]:
    return result.reason, result.first_bad_seq, result.bad_range


class TestRechainedHistory:
    @pytest.mark.parametrize("edit_seq", [1, 4, 7])
    def test_one_edited_event_is_named(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
        edit_seq: int,
    ) -> None:
        append_events(sessions, 7)
        take(sessions, store, signing_key)

        tamper(engine, *rechain(engine, edit_seq=edit_seq, after={"version": 666}))

        result = run_verify(sessions, store, signing_key)
        assert located(result) == ("checkpoint_mismatch", edit_seq, (edit_seq, edit_seq))
        assert result.checkpoint_seq == 7

    def test_edit_after_a_matching_checkpoint_is_named(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        append_events(sessions, 3)
        take(sessions, store, signing_key)
        append_events(sessions, 6, start=4)
        take(sessions, store, signing_key)

        tamper(engine, *rechain(engine, edit_seq=6, after={"version": 666}))

        result = run_verify(sessions, store, signing_key)
        assert located(result) == ("checkpoint_mismatch", 6, (6, 6))
        assert (result.checkpoint_seq, result.checkpoints) == (9, 1)

    def test_two_edits_give_the_range_after_the_last_matching_checkpoint(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        append_events(sessions, 3)
        take(sessions, store, signing_key)
        append_events(sessions, 6, start=4)
        take(sessions, store, signing_key)

        tamper(engine, *rechain(engine, edit_seq=5, after={"version": 1}))
        tamper(engine, *rechain(engine, edit_seq=8, after={"version": 2}))

        assert located(run_verify(sessions, store, signing_key)) == (
            "checkpoint_mismatch",
            4,
            (4, 9),
        )

    def test_checkpoint_without_a_segment_gives_the_range(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
    ) -> None:
        """Checkpoints written before segments existed still verify and bound the edit."""
        append_events(sessions, 4)
        with unit_of_work(sessions.read) as session:
            head = service.head(session)
        legacy = sign_checkpoint(signing_key, seq=head.seq, hash=head.hash, at=utcnow())
        store.put_object(legacy.name, legacy.to_json())
        assert run_verify(sessions, store, signing_key).ok

        tamper(engine, *rechain(engine, edit_seq=2, after={"version": 666}))

        assert located(run_verify(sessions, store, signing_key)) == (
            "checkpoint_mismatch",
            1,
            (1, 4),
        )
