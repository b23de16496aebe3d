"""append / head / log: the chain grows in the caller's transaction; log filters and pages."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from registry.audit import canonical, service
from registry.audit.models import GENESIS_HASH, AuditEvent
from registry.audit.repository import AuditRepository
from registry.audit.service import AuditEntry, AuditHeadMissing, ChainHead
from registry.db.session import Sessions, unit_of_work
from registry.errors import BadRequest
from tests.audit.conftest import entry, tamper

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def seqs(events: list[AuditEvent]) -> list[int]:
    return [e.seq for e in events]


class TestAppend:
    def test_first_event_chains_from_genesis(self, sessions: Sessions) -> None:
        with unit_of_work(sessions.write) as session:
            event = service.append(session, entry(1), at=T0)

        document = canonical.event_document(
            **{f: getattr(event, f) for f in canonical.HASHED_FIELDS}
        )
        assert event.seq == 1
        assert event.prev_hash == GENESIS_HASH
        assert event.hash == canonical.chain_hash(GENESIS_HASH, document)
        assert event.at == T0
        with unit_of_work(sessions.read) as session:
            assert service.head(session) == ChainHead(1, event.hash)

    def test_events_link_to_the_previous_hash(self, sessions: Sessions) -> None:
        with unit_of_work(sessions.write) as session:
            first = service.append(session, entry(1))
        with unit_of_work(sessions.write) as session:
            second = service.append(session, entry(2))

        assert second.seq == 2
        assert second.prev_hash == first.hash

    def test_empty_log_head_is_genesis(self, sessions: Sessions) -> None:
        with unit_of_work(sessions.read) as session:
            assert service.head(session) == ChainHead(0, GENESIS_HASH)

    def test_rolled_back_transaction_leaves_no_event_and_no_head_move(
        self, sessions: Sessions
    ) -> None:
        def append_then_fail() -> None:
            with unit_of_work(sessions.write) as session:
                service.append(session, entry(1))
                raise RuntimeError("boom")

        with pytest.raises(RuntimeError, match="boom"):
            append_then_fail()

        with unit_of_work(sessions.read) as session:
            assert service.head(session) == ChainHead(0, GENESIS_HASH)
            assert service.log(session) == []

    def test_stale_head_in_identity_map_is_refreshed_under_the_lock(
        self, sessions: Sessions
    ) -> None:
        session = sessions.write()
        try:
            # Hold the head object: the identity map is weak, an unreferenced one would vanish.
            stale = AuditRepository(session).head()
            assert stale is not None
            assert stale.seq == 0
            session.commit()  # expire_on_commit=False: ``stale`` keeps seq 0
            with unit_of_work(sessions.write) as other:
                service.append(other, entry(1))

            event = service.append(session, entry(2))
            session.commit()
        finally:
            session.close()

        assert event.seq == 2
        assert stale.seq == 2

    def test_payloads_are_stored_as_hashed(self, sessions: Sessions) -> None:
        actor_id = uuid.uuid4()
        with unit_of_work(sessions.write) as session:
            service.append(
                session,
                AuditEntry(
                    action="policy.apply",
                    resource="policy:cafe\u0301",
                    actor_id=actor_id,
                    after={"when": T0, "who": actor_id, "name": "cafe\u0301", "pair": (1, 2)},
                ),
            )

        with unit_of_work(sessions.read) as session:
            (event,) = service.log(session)
        assert event.resource == "policy:caf\u00e9"
        assert event.actor_id == actor_id
        assert event.after == {
            "when": "2026-03-01T12:00:00.000000Z",
            "who": str(actor_id),
            "name": "caf\u00e9",
            "pair": [1, 2],
        }

    def test_naive_at_is_refused(self, sessions: Sessions) -> None:
        with pytest.raises(ValueError, match="naive"), unit_of_work(sessions.write) as session:
            service.append(session, entry(1), at=datetime(2026, 1, 1))

    @pytest.mark.parametrize(
        "fields",
        [
            {"action": "", "resource": "x"},
            {"action": "x", "resource": ""},
            {"action": "x" * 129, "resource": "x"},
            {"action": "x", "resource": "x" * 513},
            {"action": "x", "resource": "x", "actor": "a" * 129},
        ],
    )
    def test_invalid_entries_are_refused(self, fields: dict[str, Any]) -> None:
        with pytest.raises(ValueError, match="audit entr"):
            AuditEntry(**fields)

    def test_missing_head_row_raises(self, engine: Engine, sessions: Sessions) -> None:
        tamper(engine, ("DELETE FROM audit_head", {}))

        with pytest.raises(AuditHeadMissing), unit_of_work(sessions.write) as session:
            service.append(session, entry(1))


class TestLog:
    @pytest.fixture
    def populated(self, sessions: Sessions) -> Sessions:
        rows = [
            ("alice", "adapter.version.register", "adapter:acme/bot@v1"),
            ("bob", "adapter.version.archive", "adapter:acme/bot@v1"),
            ("alice", "policy.apply", "policy:default"),
            ("carol", "authz.denied", "adapter:acme/bot_x@v1"),
            ("alice", "adapter.version.register", "adapter:acme/botany@v1"),
            ("bob", "adapter.version.register", "adapter:other/bot@v1"),
        ]
        with unit_of_work(sessions.write) as session:
            for i, (actor, action, resource) in enumerate(rows):
                service.append(
                    session,
                    AuditEntry(action=action, resource=resource, actor=actor),
                    at=T0 + timedelta(minutes=i),
                )
        return sessions

    def log(self, sessions: Sessions, **filters: object) -> list[int]:
        with unit_of_work(sessions.read) as session:
            return seqs(service.log(session, **filters))  # type: ignore[arg-type]

    def test_unfiltered_in_seq_order(self, populated: Sessions) -> None:
        assert self.log(populated) == [1, 2, 3, 4, 5, 6]

    def test_actor_matches_exactly(self, populated: Sessions) -> None:
        assert self.log(populated, actor="alice") == [1, 3, 5]
        assert self.log(populated, actor="ali") == []

    def test_action_is_a_prefix(self, populated: Sessions) -> None:
        assert self.log(populated, action="adapter.") == [1, 2, 5, 6]
        assert self.log(populated, action="adapter.version.register") == [1, 5, 6]

    def test_resource_is_a_prefix_with_literal_wildcards(self, populated: Sessions) -> None:
        assert self.log(populated, resource="adapter:acme/bot") == [1, 2, 4, 5]
        assert self.log(populated, resource="adapter:acme/bot@") == [1, 2]
        assert self.log(populated, resource="adapter:acme/bot_") == [4]  # "_" is not a wildcard
        assert self.log(populated, resource="adapter:%") == []

    def test_time_window_since_inclusive_until_exclusive(self, populated: Sessions) -> None:
        since, until = T0 + timedelta(minutes=1), T0 + timedelta(minutes=3)

        assert self.log(populated, since=since, until=until) == [2, 3]

    def test_keyset_pages_with_after_seq(self, populated: Sessions) -> None:
        first = self.log(populated, limit=4)
        second = self.log(populated, limit=4, after_seq=first[-1])

        assert (first, second) == ([1, 2, 3, 4], [5, 6])
        assert self.log(populated, after_seq=6) == []

    def test_filters_combine(self, populated: Sessions) -> None:
        assert self.log(populated, actor="alice", action="adapter.", after_seq=1) == [5]

    @pytest.mark.parametrize("limit", [0, -1, 1001])
    def test_limit_out_of_range_is_bad_request(self, sessions: Sessions, limit: int) -> None:
        with pytest.raises(BadRequest), unit_of_work(sessions.read) as session:
            service.log(session, limit=limit)
