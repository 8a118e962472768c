"""The sender registry (campaign/ledger/senders.py): on both dialects, and the races on PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, select, text, update

from campaign.ledger import senders as registry
from campaign.ledger.engine import db_now, open_ledger_engine
from campaign.ledger.senders import SenderLost, SenderState
from campaign.ledger.tables import campaigns, senders

TIMEOUT = 30.0


def _campaign(engine: Engine, name: str = "spring") -> int:
    stamp = datetime.now(UTC)
    with engine.begin() as conn:
        return int(
            conn.execute(
                insert(campaigns)
                .values(
                    name=name,
                    template="Hi",
                    origination_identity="+12065550100",
                    created_at=stamp,
                    updated_at=stamp,
                )
                .returning(campaigns.c.id)
            ).scalar_one()
        )


def _silence(engine: Engine, sender_id: int, seconds: float) -> None:
    """As if the sender's last heartbeat was `seconds` ago (on the database's clock)."""
    with engine.begin() as conn:
        conn.execute(
            update(senders).where(senders.c.id == sender_id).values(heartbeat_at=db_now(seconds))
        )


def _states(engine: Engine) -> dict[int, str]:
    with engine.connect() as conn:
        return dict(conn.execute(select(senders.c.id, senders.c.state)).all())  # type: ignore[arg-type,unused-ignore]


@pytest.fixture
def engine(sqlite_or_postgres_url: str) -> Engine:
    return open_ledger_engine(sqlite_or_postgres_url)


def test_register_heartbeat_stop(engine: Engine) -> None:
    campaign_id = _campaign(engine)
    first = registry.register(engine, campaign_id, host="host-a", pid=101)
    second = registry.register(engine, campaign_id, host="host-b", pid=202)
    assert first != second
    registry.heartbeat(engine, first, rate=42.5, rate_note="throttled: 42.5 of 50 MPS")
    listed = registry.list_senders(engine, campaign_id)
    assert [(s.id, s.host, s.pid, s.state) for s in listed] == [
        (first, "host-a", 101, SenderState.LIVE),
        (second, "host-b", 202, SenderState.LIVE),
    ]
    assert (listed[0].rate, listed[0].rate_note) == (42.5, "throttled: 42.5 of 50 MPS")
    assert listed[1].rate is None
    assert all(0 <= s.silent_for < 10 and s.lost_at is None for s in listed)
    assert all(s.heartbeat_at.tzinfo is not None for s in listed)

    assert registry.stop(engine, second) is True
    assert registry.stop(engine, second) is False  # already stopped
    assert [s.id for s in registry.list_senders(engine, campaign_id)] == [first]
    everyone = registry.list_senders(engine, include_stopped=True)
    assert [(s.id, s.state) for s in everyone] == [
        (first, SenderState.LIVE),
        (second, SenderState.STOPPED),
    ]
    with pytest.raises(SenderLost, match="has already stopped"):
        registry.heartbeat(engine, second)


def test_heartbeat_uses_the_database_clock(engine: Engine) -> None:
    sender = registry.register(engine, _campaign(engine), host="h", pid=1)
    _silence(engine, sender, 100)
    assert registry.list_senders(engine)[0].silent_for == pytest.approx(100, abs=10)
    registry.heartbeat(engine, sender)
    assert registry.list_senders(engine)[0].silent_for < 10


def test_declare_lost_marks_only_stale_senders_once(engine: Engine) -> None:
    campaign_id = _campaign(engine)
    other_campaign = _campaign(engine, "autumn")
    fresh, stale, stale_elsewhere, stopped, me = (
        registry.register(engine, cid, host="h", pid=n)
        for n, cid in enumerate(
            [campaign_id, campaign_id, other_campaign, campaign_id, campaign_id]
        )
    )
    _silence(engine, fresh, TIMEOUT - 10)
    for sender in (stale, stale_elsewhere, stopped, me):
        _silence(engine, sender, TIMEOUT + 10)
    registry.stop(engine, stopped)

    # Any live sender declares the silent ones lost, whatever their campaign; never itself.
    assert registry.declare_lost(engine, timeout=TIMEOUT, by=me) == [stale, stale_elsewhere]
    assert registry.declare_lost(engine, timeout=TIMEOUT, by=me) == []
    assert _states(engine) == {
        fresh: "live",
        stale: "lost",
        stale_elsewhere: "lost",
        stopped: "stopped",
        me: "live",
    }
    lost = {s.id: s for s in registry.list_senders(engine)}
    assert lost[stale].lost_at is not None and lost[fresh].lost_at is None

    # A lost sender is fenced: its heartbeat fails, and it never becomes live again.
    with pytest.raises(SenderLost, match=r"declared lost by another sender at .* UTC after 4\ds"):
        registry.heartbeat(engine, stale)
    assert registry.stop(engine, stale) is False
    assert _states(engine)[stale] == "lost"
    # Without `by`, the caller's own stale row is fair game too.
    assert registry.declare_lost(engine, timeout=TIMEOUT) == [me]


def test_declare_lost_in_the_callers_transaction(engine: Engine) -> None:
    # The caller recovers the lost senders' claims in the same commit: a rollback undoes both.
    sender = registry.register(engine, _campaign(engine), host="h", pid=1)
    _silence(engine, sender, TIMEOUT + 10)
    with engine.connect() as conn:
        conn.begin()
        assert registry.declare_lost(conn, timeout=TIMEOUT) == [sender]
        conn.rollback()
    assert _states(engine) == {sender: "live"}
    assert registry.declare_lost(engine, timeout=TIMEOUT) == [sender]


def test_unknown_sender_heartbeat(engine: Engine) -> None:
    with pytest.raises(SenderLost, match="not registered"):
        registry.heartbeat(engine, 9999)


# -- races: PostgreSQL only (a SQLite ledger has one sender per campaign, one writer at a time) ----


@pytest.fixture
def pg_engine(postgres_url: str) -> Engine:
    return open_ledger_engine(postgres_url)


def _declare_without_waiting(engine: Engine) -> list[int]:
    """declare_lost on its own connection in a thread; waiting for a lock fails it (lock_timeout)
    instead of hanging the test."""

    def declare() -> list[int]:
        with engine.connect() as conn:
            conn.execute(text("SET lock_timeout = '5s'"))
            return registry.declare_lost(conn, timeout=TIMEOUT)

    with ThreadPoolExecutor(1) as pool:
        return pool.submit(declare).result()


def test_a_second_declarer_skips_rows_the_first_holds(pg_engine: Engine) -> None:
    campaign_id = _campaign(pg_engine)
    stale = [registry.register(pg_engine, campaign_id, host="h", pid=n) for n in range(3)]
    for sender in stale:
        _silence(pg_engine, sender, TIMEOUT + 10)
    with pg_engine.connect() as first:
        first.begin()
        assert registry.declare_lost(first, timeout=TIMEOUT) == stale
        # Uncommitted: the second declarer neither waits for the locks nor declares them again.
        assert _declare_without_waiting(pg_engine) == []
        first.commit()
    assert registry.declare_lost(pg_engine, timeout=TIMEOUT) == []
    assert set(_states(pg_engine).values()) == {"lost"}


def test_racing_declarers_split_the_stale_senders(pg_engine: Engine) -> None:
    campaign_id = _campaign(pg_engine)
    live = [registry.register(pg_engine, campaign_id, host="h", pid=n) for n in range(4)]
    start = threading.Barrier(len(live))

    def declare(me: int) -> list[int]:
        start.wait()
        return registry.declare_lost(pg_engine, timeout=TIMEOUT, by=me)

    # Several rounds with many rows: without the row locks, duplicates show up in most rounds.
    for _ in range(3):
        stale = [registry.register(pg_engine, campaign_id, host="h", pid=n) for n in range(200)]
        for sender in stale:
            _silence(pg_engine, sender, TIMEOUT + 10)
        with ThreadPoolExecutor(len(live)) as pool:
            results = list(pool.map(declare, live))
        declared = [sender for result in results for sender in result]
        assert sorted(declared) == stale  # every stale sender exactly once
    assert all(_states(pg_engine)[sender] == "live" for sender in live)


def test_heartbeat_racing_a_declarer_is_fenced(pg_engine: Engine) -> None:
    sender = registry.register(pg_engine, _campaign(pg_engine), host="h", pid=1)
    _silence(pg_engine, sender, TIMEOUT + 10)
    with pg_engine.connect() as declarer:
        declarer.begin()
        assert registry.declare_lost(declarer, timeout=TIMEOUT) == [sender]
        # The late heartbeat waits for the declarer's row lock, then finds the row lost.
        beat = threading.Thread(target=lambda: outcome.append(_heartbeat(pg_engine, sender)))
        outcome: list[str] = []
        beat.start()
        beat.join(0.5)
        assert beat.is_alive(), "the heartbeat should wait for the declarer's commit"
        declarer.commit()
    beat.join(30)
    assert outcome == ["lost"]


def test_fresh_heartbeat_wins_over_a_slower_declarer(pg_engine: Engine) -> None:
    sender = registry.register(pg_engine, _campaign(pg_engine), host="h", pid=1)
    _silence(pg_engine, sender, TIMEOUT + 10)
    with pg_engine.connect() as beating:
        beating.begin()
        registry.heartbeat(beating, sender)  # holds the row until it commits
        # A declarer now skips the locked row, and after the commit it is no longer stale.
        assert _declare_without_waiting(pg_engine) == []
        beating.commit()
    assert registry.declare_lost(pg_engine, timeout=TIMEOUT) == []
    assert _states(pg_engine) == {sender: "live"}


def _heartbeat(engine: Engine, sender: int) -> str:
    try:
        registry.heartbeat(engine, sender)
    except SenderLost:
        return "lost"
    return "live"
