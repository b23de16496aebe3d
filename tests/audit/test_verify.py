"""verify(): an intact log passes; every kind of tampering is found and named by its seq."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Engine

from registry.audit import canonical, service
from registry.audit.checkpoints import Checkpoint, export_checkpoint, sign_checkpoint
from registry.audit.verify import VerifyResult, verify
from registry.db.session import Sessions, unit_of_work
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import append_events, entry, event_rows, json_param, tamper


def run_verify(
    sessions: Sessions,
    store: LocalArtifactStore,
    key: Ed25519PrivateKey,
    *,
    batch_size: int = 1000,
    extra_keys: tuple[Ed25519PrivateKey, ...] = (),
) -> VerifyResult:
    public_keys = [k.public_key() for k in (key, *extra_keys)]
    with unit_of_work(sessions.read) as session:
        return verify(session, store, public_keys=public_keys, batch_size=batch_size)


def take_checkpoint(
    sessions: Sessions, store: LocalArtifactStore, key: Ed25519PrivateKey
) -> Checkpoint:
    with unit_of_work(sessions.read) as session:
        checkpoint = export_checkpoint(session, store, key)
    assert checkpoint is not None
    return checkpoint


def rewind_head(engine: Engine, seq: int) -> tuple[str, dict[str, Any]]:
    hash_at = {row["seq"]: row["hash"] for row in event_rows(engine)}[seq]
    return "UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1", {
        "seq": seq,
        "hash": hash_at,
    }


def failed(result: VerifyResult) -> tuple[bool, str | None, int | None]:
    return result.ok, result.reason, result.first_bad_seq


class TestIntact:
    def test_empty_log_verifies(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        assert run_verify(sessions, store, signing_key) == VerifyResult(
            True, 0, None, None, 0, warnings=("no_checkpoints",)
        )

    def test_chain_verifies(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 5)

        assert run_verify(sessions, store, signing_key) == VerifyResult(
            True, 5, None, None, 0, warnings=("no_checkpoints",)
        )

    def test_chain_verifies_across_batches(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 7)

        assert run_verify(sessions, store, signing_key, batch_size=2).ok

    def test_chain_and_checkpoints_verify(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 3)
        take_checkpoint(sessions, store, signing_key)
        append_events(sessions, 2, start=4)
        take_checkpoint(sessions, store, signing_key)

        assert run_verify(sessions, store, signing_key) == VerifyResult(
            True, 5, None, None, 2, last_checkpoint_seq=5
        )

    def test_several_appends_in_one_transaction_verify(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        with unit_of_work(sessions.write) as session:
            for n in range(1, 4):
                service.append(session, entry(n))

        assert run_verify(sessions, store, signing_key).events == 3

    def test_rotated_key_old_checkpoints_verify_with_both_keys(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        old_key = Ed25519PrivateKey.generate()
        append_events(sessions, 2)
        take_checkpoint(sessions, store, old_key)
        append_events(sessions, 1, start=3)
        take_checkpoint(sessions, store, signing_key)

        assert run_verify(sessions, store, signing_key, extra_keys=(old_key,)).checkpoints == 2
        assert run_verify(sessions, store, signing_key).reason == "checkpoint_key_unknown"


class TestTamperedEvents:
    @pytest.mark.parametrize(
        ("column", "sqlite_value", "pg_value"),
        [
            ("after", json.dumps({"version": 99}), json.dumps({"version": 99})),
            ("resource", "adapter:acme/other@v3", "adapter:acme/other@v3"),
            ("actor", "mallory", "mallory"),
            ("at", "2030-01-01 00:00:00.000000", "2030-01-01 00:00:00+00"),
        ],
    )
    def test_edited_event_is_the_first_bad_seq(
        self,
        engine: Engine,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
        column: str,
        sqlite_value: str,
        pg_value: str,
    ) -> None:
        append_events(sessions, 5)
        value = pg_value if engine.dialect.name == "postgresql" else sqlite_value
        param = json_param(engine, "v") if column == "after" else ":v"

        tamper(engine, (f"UPDATE audit_events SET {column} = {param} WHERE seq = 3", {"v": value}))

        result = run_verify(sessions, store, signing_key)
        assert failed(result) == (False, "hash_mismatch", 3)
        assert result.events == 2

    def test_deleted_middle_event_names_the_seq_after_the_gap(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)

        tamper(engine, ("DELETE FROM audit_events WHERE seq = 3", {}))

        assert failed(run_verify(sessions, store, signing_key)) == (False, "missing_event", 4)

    def test_reordered_events_break_the_chain(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)

        tamper(
            engine,
            ("UPDATE audit_events SET seq = -3 WHERE seq = 3", {}),
            ("UPDATE audit_events SET seq = 3 WHERE seq = 4", {}),
            ("UPDATE audit_events SET seq = 4 WHERE seq = -3", {}),
        )

        assert failed(run_verify(sessions, store, signing_key)) == (False, "chain_broken", 3)

    def test_swapped_payloads_are_caught(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)
        rows = {row["seq"]: row for row in event_rows(engine)}
        update = (
            f"UPDATE audit_events SET resource = :resource, after = {json_param(engine, 'after')},"
            " request_id = :request_id WHERE seq = :seq"
        )

        tamper(
            engine,
            *(
                (
                    update,
                    {
                        "seq": seq,
                        "resource": rows[other]["resource"],
                        "after": json.dumps(rows[other]["after"]),
                        "request_id": rows[other]["request_id"],
                    },
                )
                for seq, other in ((3, 4), (4, 3))
            ),
        )

        assert failed(run_verify(sessions, store, signing_key)) == (False, "hash_mismatch", 3)

    def test_edit_with_recomputed_hash_breaks_the_next_link(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)
        row = {r["seq"]: r for r in event_rows(engine)}[3]
        forged = canonical.chain_hash(
            row["prev_hash"], event_document_of({**row, "resource": "adapter:acme/forged"})
        )

        tamper(
            engine,
            (
                "UPDATE audit_events SET resource = 'adapter:acme/forged', hash = :h WHERE seq = 3",
                {"h": forged},
            ),
        )

        assert failed(run_verify(sessions, store, signing_key)) == (False, "chain_broken", 4)

    def test_rewritten_last_event_is_caught_by_the_head(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)
        row = {r["seq"]: r for r in event_rows(engine)}[5]
        forged = canonical.chain_hash(
            row["prev_hash"], event_document_of({**row, "actor": "mallory"})
        )

        tamper(
            engine,
            ("UPDATE audit_events SET actor = 'mallory', hash = :h WHERE seq = 5", {"h": forged}),
        )

        assert failed(run_verify(sessions, store, signing_key)) == (False, "head_mismatch", 5)

    def test_deleted_tail_with_head_left_in_place_is_truncated(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)

        tamper(engine, ("DELETE FROM audit_events WHERE seq > 3", {}))

        assert failed(run_verify(sessions, store, signing_key)) == (False, "truncated", 4)


class TestTruncationNeedsACheckpoint:
    """security.md §4.3: a hash chain alone cannot see its newest events disappear."""

    def test_deleted_tail_and_rewound_head_is_not_detected_without_checkpoint(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)

        tamper(engine, rewind_head(engine, 3), ("DELETE FROM audit_events WHERE seq > 3", {}))

        result = run_verify(sessions, store, signing_key)
        # The limitation, made explicit: only the warning says that nothing anchors the log.
        assert result == VerifyResult(True, 3, None, None, 0, warnings=("no_checkpoints",))

    def test_deleted_tail_and_rewound_head_is_detected_with_a_checkpoint(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)
        take_checkpoint(sessions, store, signing_key)

        tamper(engine, rewind_head(engine, 3), ("DELETE FROM audit_events WHERE seq > 3", {}))

        result = run_verify(sessions, store, signing_key)
        assert failed(result) == (False, "truncated", 4)
        assert result.checkpoint == "audit/checkpoints/00000000000000000005.json"

    def test_rewritten_and_rechained_history_is_caught_by_a_checkpoint(
        self, engine: Engine, sessions: Sessions, store: LocalArtifactStore, signing_key: Any
    ) -> None:
        append_events(sessions, 5)
        take_checkpoint(sessions, store, signing_key)
        statements = rechain(engine, edit_seq=2, after={"version": 666})

        tamper(engine, *statements)

        result = run_verify(sessions, store, signing_key)
        # The edited event is named, not only the checkpoint that no longer matches.
        assert failed(result) == (False, "checkpoint_mismatch", 2)
        assert (result.checkpoint_seq, result.bad_range) == (5, (2, 2))


def event_document_of(row: dict[str, Any]) -> dict[str, Any]:
    return canonical.event_document(**{f: row[f] for f in canonical.HASHED_FIELDS})


def rechain(
    engine: Engine, *, edit_seq: int, after: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """Statements that rewrite ``after`` of one event and re-chain every later event and the
    head so that the chain alone is consistent again (what a database owner could do)."""
    statements: list[tuple[str, dict[str, Any]]] = []
    prev = None
    for row in event_rows(engine):
        if row["seq"] < edit_seq:
            continue
        if row["seq"] == edit_seq:
            row["after"] = after
        prev = row["prev_hash"] if prev is None else prev
        new_hash = canonical.chain_hash(prev, event_document_of(row))
        statements.append(
            (
                "UPDATE audit_events SET after = "
                f"{json_param(engine, 'after')}, prev_hash = :prev, hash = :hash WHERE seq = :seq",
                {
                    "after": json.dumps(row["after"]),
                    "prev": prev,
                    "hash": new_hash,
                    "seq": row["seq"],
                },
            )
        )
        prev = new_hash
    statements.append(("UPDATE audit_head SET hash = :hash WHERE id = 1", {"hash": prev}))
    return statements


class TestTamperedCheckpoints:
    def rewrite(self, store: LocalArtifactStore, checkpoint: Checkpoint, **changes: Any) -> None:
        doc = json.loads(checkpoint.to_json()) | changes
        store.put_object(checkpoint.name, json.dumps(doc).encode())

    def test_flipped_signature_is_invalid(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 2)
        checkpoint = take_checkpoint(sessions, store, signing_key)
        flipped = bytearray(bytes.fromhex(checkpoint.signature))
        flipped[0] ^= 1

        self.rewrite(store, checkpoint, signature=flipped.hex())

        result = run_verify(sessions, store, signing_key)
        assert failed(result) == (False, "checkpoint_signature_invalid", 2)

    def test_edited_hash_invalidates_the_signature(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 2)
        checkpoint = take_checkpoint(sessions, store, signing_key)

        self.rewrite(store, checkpoint, hash="ab" * 32)

        assert run_verify(sessions, store, signing_key).reason == "checkpoint_signature_invalid"

    def test_checkpoint_signed_by_another_key_is_not_trusted(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 2)
        real = take_checkpoint(sessions, store, signing_key)
        forged = sign_checkpoint(
            Ed25519PrivateKey.generate(), seq=real.seq, hash="cd" * 32, at=real.at
        )

        store.put_object(real.name, forged.to_json())

        assert run_verify(sessions, store, signing_key).reason == "checkpoint_key_unknown"

    def test_our_key_id_with_another_public_key_is_not_trusted(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 2)
        real = take_checkpoint(sessions, store, signing_key)
        other = sign_checkpoint(
            Ed25519PrivateKey.generate(), seq=real.seq, hash=real.hash, at=real.at
        )

        self.rewrite(store, real, public_key=other.public_key, signature=other.signature)

        assert run_verify(sessions, store, signing_key).reason == "checkpoint_key_unknown"

    @pytest.mark.parametrize(
        "data", [b"not json", b"{}", b'{"seq": 1}', json.dumps([1, 2]).encode()]
    )
    def test_malformed_checkpoint_is_reported(
        self,
        sessions: Sessions,
        store: LocalArtifactStore,
        signing_key: Ed25519PrivateKey,
        data: bytes,
    ) -> None:
        append_events(sessions, 1)
        store.put_object("audit/checkpoints/00000000000000000001.json", data)

        result = run_verify(sessions, store, signing_key)
        assert failed(result) == (False, "checkpoint_malformed", None)

    def test_checkpoint_under_a_wrong_name_is_malformed(
        self, sessions: Sessions, store: LocalArtifactStore, signing_key: Ed25519PrivateKey
    ) -> None:
        append_events(sessions, 2)
        checkpoint = take_checkpoint(sessions, store, signing_key)
        store.put_object("audit/checkpoints/00000000000000000001.json", checkpoint.to_json())

        assert run_verify(sessions, store, signing_key).reason == "checkpoint_malformed"
