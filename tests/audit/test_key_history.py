"""The key history (issue 11, point 12): after ``rotate-key`` the old checkpoints verify with the
old key and the new ones with the new key, trusting only the configured key; a key nobody
trusted vouches for is refused, and so is a retired key signing after its retirement."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from registry.audit import keyring, keys
from registry.audit.checkpoints import Checkpoint, export_checkpoint, sign_checkpoint
from registry.audit.keyring import KEYS_PREFIX, endorse, rotate_signing_key, trusted_windows
from registry.audit.verify import VerifyResult, verify
from registry.db.base import utcnow
from registry.db.session import Sessions, unit_of_work
from registry.errors import AuditKeyRetired
from registry.storage.local import LocalArtifactStore
from tests.audit.conftest import append_events


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "audit.key"
    keys.load_or_create_signing_key(path)
    return path


def configured(path: Path) -> Ed25519PrivateKey:
    return keys.load_signing_key(path)


def checkpoint_now(
    sessions: Sessions, store: LocalArtifactStore, key: Ed25519PrivateKey
) -> Checkpoint:
    with unit_of_work(sessions.read) as session:
        made = export_checkpoint(session, store, key)
    assert made is not None
    return made


def verify_with(sessions: Sessions, store: LocalArtifactStore, path: Path) -> VerifyResult:
    """Verify as a server configured with the key at ``path`` would (only it is an anchor)."""
    with unit_of_work(sessions.read) as session:
        return verify(session, store, public_keys=[configured(path).public_key()])


class TestRotation:
    def test_old_checkpoints_verify_with_the_old_key_new_ones_with_the_new(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        old = configured(key_path)
        append_events(sessions, 3)
        first = checkpoint_now(sessions, store, old)

        rotation = rotate_signing_key(store, key_path)

        new = configured(key_path)
        assert keys.key_id(new.public_key()) == rotation.new_key_id != first.key_id
        assert rotation.retired.key_id == first.key_id
        append_events(sessions, 2, start=4)
        second = checkpoint_now(sessions, store, new)
        assert second.key_id == rotation.new_key_id
        result = verify_with(sessions, store, key_path)
        assert result == VerifyResult(True, 5, None, None, 2, last_checkpoint_seq=5)

    def test_a_key_swapped_without_rotate_key_vouches_for_nothing(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        """Replacing the key file by hand (the only rotation there was before): nobody vouches
        for the old key, so its checkpoints are refused, not silently trusted."""
        append_events(sessions, 2)
        checkpoint_now(sessions, store, configured(key_path))
        key_path.unlink()
        keys.load_or_create_signing_key(key_path)

        assert verify_with(sessions, store, key_path).reason == "checkpoint_key_unknown"

    def test_two_rotations_chain_back_to_the_first_key(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        for n in range(3):
            append_events(sessions, 1, start=n + 1)
            checkpoint_now(sessions, store, configured(key_path))
            if n < 2:
                rotate_signing_key(store, key_path)

        result = verify_with(sessions, store, key_path)

        assert (result.ok, result.checkpoints) == (True, 3)
        windows = trusted_windows(store, [configured(key_path).public_key()])
        assert len(windows) == 3
        ordered = sorted(windows.values(), key=lambda w: (w.not_before is not None, w.not_before))
        first, second, third = ordered
        assert first.not_before is None
        assert first.not_after == second.not_before
        assert second.not_after == third.not_before
        assert third.not_after is None

    def test_a_server_holding_the_retired_key_refuses_to_sign(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        old = configured(key_path)
        append_events(sessions, 1)
        rotate_signing_key(store, key_path)
        append_events(sessions, 1, start=2)

        with pytest.raises(AuditKeyRetired):
            checkpoint_now(sessions, store, old)

    def test_rotating_a_retired_key_again_is_refused(
        self, store: LocalArtifactStore, key_path: Path, tmp_path: Path
    ) -> None:
        backup = key_path.read_bytes()
        rotate_signing_key(store, key_path)
        key_path.write_bytes(backup)  # the old key file restored from a backup

        with pytest.raises(AuditKeyRetired):
            rotate_signing_key(store, key_path)

    def test_a_new_key_never_dates_a_checkpoint_before_its_window(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        """The rotating host's clock ahead of the server's: the new key's checkpoints are dated
        at its window's start, so they verify."""
        append_events(sessions, 1)
        ahead = utcnow() + timedelta(hours=1)
        rotate_signing_key(store, key_path, now=ahead)

        made = checkpoint_now(sessions, store, configured(key_path))

        assert made.at == ahead
        assert verify_with(sessions, store, key_path).ok


class TestUntrustedKeys:
    def test_checkpoint_vouched_for_by_an_unknown_key_is_refused(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        """Store write access without a trusted key: the attacker's key record, endorsed by a
        second key of the attacker's, grants nothing."""
        append_events(sessions, 2)
        real = checkpoint_now(sessions, store, configured(key_path))
        mallory, accomplice = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
        record = endorse(accomplice, mallory.public_key(), not_before=None, not_after=utcnow())
        store.put_object(record.name, record.to_json())
        forged = sign_checkpoint(
            mallory, seq=real.seq, hash=real.hash, at=real.at - timedelta(seconds=1)
        )
        store.put_object(real.name, forged.to_json())

        assert verify_with(sessions, store, key_path).reason == "checkpoint_key_unknown"

    def test_record_claiming_our_endorsement_without_our_signature_is_refused(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        append_events(sessions, 2)
        real = checkpoint_now(sessions, store, configured(key_path))
        mallory = Ed25519PrivateKey.generate()
        record = endorse(mallory, mallory.public_key(), not_before=None, not_after=utcnow())
        doc = json.loads(record.to_json()) | {"endorsed_by": real.key_id}
        store.put_object(record.name, json.dumps(doc).encode())
        store.put_object(
            real.name,
            sign_checkpoint(
                mallory, seq=real.seq, hash=real.hash, at=real.at - timedelta(seconds=1)
            ).to_json(),
        )

        assert verify_with(sessions, store, key_path).reason == "checkpoint_key_unknown"

    def test_retired_key_signing_after_its_retirement_is_refused(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        """A retired key that leaks cannot vouch for history written after its retirement."""
        leaked = configured(key_path)
        append_events(sessions, 2)
        checkpoint_now(sessions, store, leaked)
        rotation = rotate_signing_key(store, key_path)
        append_events(sessions, 2, start=3)
        with unit_of_work(sessions.read) as session:
            from registry.audit import service

            head = service.head(session)
        late = sign_checkpoint(leaked, seq=head.seq, hash=head.hash, at=rotation.retired.not_after)
        store.put_object(late.name, late.to_json())

        result = verify_with(sessions, store, key_path)
        assert (result.reason, result.checkpoint_seq) == ("checkpoint_key_out_of_window", 4)

    def test_malformed_key_records_are_ignored(
        self, sessions: Sessions, store: LocalArtifactStore, key_path: Path
    ) -> None:
        append_events(sessions, 1)
        checkpoint_now(sessions, store, configured(key_path))
        store.put_object(f"{KEYS_PREFIX}garbage.json", b"not json")
        store.put_object(f"{KEYS_PREFIX}0000000000000000.json", b"{}")

        assert verify_with(sessions, store, key_path).ok
        assert keyring.read_records(store) == []
