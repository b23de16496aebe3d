"""PostgreSQL: every deployment revision NOTIFYs ``registry_routing`` on commit, and each
replica's routing cache reads the epoch as soon as it hears it (polling stays the fallback when
the listening connection cannot be opened)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from registry.deployments.routing import RoutingCache
from tests.factories.rollouts import canary
from tests.fixtures.db import dialect
from tests.fixtures.governance import Team

pytestmark = pytest.mark.skipif(
    dialect() != "postgresql", reason="LISTEN/NOTIFY is PostgreSQL's (the SQLite leg polls)"
)


@contextmanager
def replica(team: Team, *, poll_s: float, **kw: object) -> Iterator[RoutingCache]:
    """A second routing cache on the same database, as another replica would have."""
    state = team.client.app.state  # type: ignore[attr-defined]
    cache = RoutingCache(state.sessions, state.store, presign_ttl_s=900, poll_s=poll_s, **kw)  # type: ignore[arg-type]
    cache.start()
    try:
        yield cache
    finally:
        cache.stop()


def wait_for(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


def test_a_revision_wakes_a_listening_replica_at_once(team: Team, fast_plans: None) -> None:
    with replica(team, poll_s=60) as cache:  # polling alone would take a minute
        time.sleep(0.2)  # LISTEN is issued by the cache's thread
        before = cache._epoch
        canary(team, plan="fast")
        assert wait_for(lambda: cache._epoch != before, 3.0)
        assert cache.notifications >= 1


def test_without_listening_only_the_poll_notices(team: Team, fast_plans: None) -> None:
    with replica(team, poll_s=60, listen=False) as cache:
        before = cache._epoch
        canary(team, plan="fast")
        assert not wait_for(lambda: cache._epoch != before, 1.0)
        assert cache.notifications == 0
        cache.sync()
        assert cache._epoch != before


def test_an_unreachable_listener_falls_back_to_polling(
    team: Team, fast_plans: None, caplog: pytest.LogCaptureFixture
) -> None:
    state = team.client.app.state  # type: ignore[attr-defined]
    cache = RoutingCache(state.sessions, state.store, presign_ttl_s=900, poll_s=0.1)
    # Nothing listens on port 1.
    cache._listen_params = {"host": "127.0.0.1", "port": 1, "user": "nobody", "dbname": "x"}
    with caplog.at_level(logging.WARNING, logger="registry.routing"):
        cache.start()
        try:
            before = cache._epoch
            canary(team, plan="fast")
            assert wait_for(lambda: cache._epoch != before, 3.0)
        finally:
            cache.stop()
    assert cache.notifications == 0
    # One failed attempt, then polling: no reconnect storm (the next try is 30 s later).
    assert caplog.text.count("routing LISTEN unavailable") == 1
