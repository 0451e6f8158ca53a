"""One active scheduler: the database lease, its renewal, takeover and release."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from bot.scheduler.lease import Lease, new_holder_id
from bot.store.session import make_engine, session_factory

T0 = datetime(2026, 11, 2, 8, 0, 0)
TTL = timedelta(seconds=90)


def test_first_holder_wins_and_renews(engine):
    f = session_factory(engine)
    a, b = Lease(f, "a", ttl=TTL), Lease(f, "b", ttl=TTL)
    assert a.acquire(T0)
    assert not b.acquire(T0 + timedelta(seconds=1))
    # renewing keeps it past the first expiry
    assert a.acquire(T0 + timedelta(seconds=60))
    assert not b.acquire(T0 + timedelta(seconds=120))
    st = a.state()
    assert st is not None and st.holder == "a" and st.generation == 1
    assert st.expires_at == T0 + timedelta(seconds=60) + TTL


def test_takeover_after_the_holder_stops_renewing(engine):
    f = session_factory(engine)
    a, b = Lease(f, "a", ttl=TTL), Lease(f, "b", ttl=TTL)
    assert a.acquire(T0)
    assert not b.acquire(T0 + TTL - timedelta(seconds=1))
    assert b.acquire(T0 + TTL)  # a died: its lease ran out
    st = b.state()
    assert st is not None and st.holder == "b" and st.generation == 2
    # the old holder comes back and finds it taken
    assert not a.acquire(T0 + TTL + timedelta(seconds=5))
    assert a.held is False


def test_release_hands_over_at_once(engine):
    f = session_factory(engine)
    a, b = Lease(f, "a", ttl=TTL), Lease(f, "b", ttl=TTL)
    assert a.acquire(T0)
    a.release(T0 + timedelta(seconds=5))
    assert b.acquire(T0 + timedelta(seconds=5))
    assert b.state().holder == "b"  # type: ignore[union-attr]


def test_holder_ids_are_unique_per_process_start():
    assert new_holder_id() != new_holder_id()


def _race(lease: Lease, now: datetime, barrier: threading.Barrier, out: dict[str, bool]) -> None:
    barrier.wait()
    out[lease.holder] = lease.acquire(now)


def test_racing_processes_never_both_hold_it(db_url):
    """Eight schedulers with their own connections race for the lease at the same instants."""
    engines = [make_engine(db_url) for _ in range(8)]
    leases = [Lease(session_factory(e), f"h{i}", ttl=TTL) for i, e in enumerate(engines)]
    try:
        for step in range(6):
            now = T0 + step * (TTL + timedelta(seconds=1))  # every step: the lease has expired
            barrier = threading.Barrier(len(leases))
            results: dict[str, bool] = {}

            threads = [
                threading.Thread(target=_race, args=(lease, now, barrier, results))
                for lease in leases
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            winners = [h for h, ok in results.items() if ok]
            assert len(winners) == 1, results
            assert leases[0].state().holder == winners[0]  # type: ignore[union-attr]
    finally:
        for e in engines:
            e.dispose()
