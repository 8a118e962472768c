"""Several senders on one campaign (issue 9): each claim is owned by the sender that made it, only
its owner settles it (fencing), a lost sender's claims - and only those - become `unknown`. On both
dialects; the concurrent claims on PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import select, update

from campaign.domain import AttemptOutcome, Settlement
from campaign.ledger import Ledger
from campaign.ledger.engine import db_now, open_ledger_engine
from campaign.ledger.senders import SenderLost, SenderState
from campaign.ledger.tables import campaigns, recipients, senders
from tests.ledger.helpers import (
    S,
    add_campaign,
    attempt_rows,
    back_to_pending,
    pending_claims,
    sent,
    start_run,
    states,
)

TIMEOUT = 30.0


def owners(ledger: Ledger, campaign_id: int) -> dict[int, int | None]:
    with ledger.engine.connect() as conn:
        return dict(
            conn.execute(  # type: ignore[arg-type,unused-ignore]
                select(recipients.c.id, recipients.c.sender_id).where(
                    recipients.c.campaign_id == campaign_id
                )
            ).all()
        )


def silence(ledger: Ledger, sender_id: int, seconds: float) -> None:
    """As if the sender's last heartbeat was `seconds` ago, on the database's clock."""
    with ledger.engine.begin() as conn:
        conn.execute(
            update(senders).where(senders.c.id == sender_id).values(heartbeat_at=db_now(seconds))
        )


def test_a_claim_is_owned_and_only_its_owner_settles_it(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=3)
    a = ledger.register_sender(campaign.id, host="a", pid=1)
    b = ledger.register_sender(campaign.id, host="b", pid=2)
    run_a, run_b = start_run(ledger, campaign), start_run(ledger, campaign)
    first, second, third = pending_claims(ledger, campaign)
    assert ledger.claim(campaign.id, run_a, [first, second], sender_id=a) == [first, second]
    # B reaches for rows A holds, and one that is free: it gets the free one only.
    assert ledger.claim(campaign.id, run_b, [second, third], sender_id=b) == [third]
    assert owners(ledger, campaign.id) == {
        first.recipient_id: a,
        second.recipient_id: a,
        third.recipient_id: b,
    }
    # B settling A's claims - from its own run, or even naming A's run - changes nothing: B
    # cannot mark them nor put them back to pending.
    ledger.settle(run_b, [sent(first, "from-b"), back_to_pending(second)], sender_id=b)
    ledger.settle(run_a, [back_to_pending(second)], sender_id=b)
    assert states(ledger, campaign)[first.recipient_id] == S.SENDING
    assert states(ledger, campaign)[second.recipient_id] == S.SENDING
    # A's own outcomes are written; the owner alone puts a call it never made back to pending.
    ledger.settle(run_a, [sent(first)], sender_id=a)
    ledger.settle(run_b, [sent(third)], sender_id=b)
    assert states(ledger, campaign) == {
        first.recipient_id: S.SENT,
        second.recipient_id: S.SENDING,
        third.recipient_id: S.SENT,
    }


def test_only_the_owner_puts_a_claim_back_to_pending(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=1)
    a = ledger.register_sender(campaign.id, host="a", pid=1)
    b = ledger.register_sender(campaign.id, host="b", pid=2)
    run_a, run_b = start_run(ledger, campaign), start_run(ledger, campaign)
    (only,) = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, run_a, [only], sender_id=a)
    ledger.settle(run_b, [back_to_pending(only)], sender_id=b)
    assert states(ledger, campaign)[only.recipient_id] == S.SENDING
    ledger.settle(run_a, [back_to_pending(only)], sender_id=a)
    assert states(ledger, campaign)[only.recipient_id] == S.PENDING


def test_a_sender_no_longer_live_claims_nothing(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=2)
    me = ledger.register_sender(campaign.id, host="a", pid=1)
    run_id = start_run(ledger, campaign)
    first, second = pending_claims(ledger, campaign)
    assert ledger.claim(campaign.id, run_id, [first], sender_id=me) == [first]
    ledger.settle(run_id, [sent(first)], sender_id=me)
    assert ledger.stop_sender(me)
    assert ledger.claim(campaign.id, run_id, [second], sender_id=me) == []
    assert states(ledger, campaign)[second.recipient_id] == S.PENDING
    assert attempt_rows(ledger, second.recipient_id) == []


def test_a_lost_sender_loses_only_its_own_claims(ledger: Ledger) -> None:
    spring = add_campaign(ledger, "spring", pending=4)
    autumn = add_campaign(ledger, "autumn", pending=1)
    dead = ledger.register_sender(spring.id, host="a", pid=1)
    alive = ledger.register_sender(spring.id, host="b", pid=2)
    other = ledger.register_sender(autumn.id, host="c", pid=3)
    run_dead, run_alive, run_other = (start_run(ledger, c) for c in (spring, spring, autumn))
    one, two, three, four = pending_claims(ledger, spring)
    (five,) = pending_claims(ledger, autumn)
    ledger.claim(spring.id, run_dead, [one, two], sender_id=dead)
    ledger.claim(spring.id, run_alive, [three], sender_id=alive)
    ledger.claim(autumn.id, run_other, [five], sender_id=other)

    silence(ledger, dead, TIMEOUT + 5)
    silence(ledger, other, TIMEOUT - 10)  # quiet, but not for long enough
    assert ledger.sweep_lost_senders(timeout=TIMEOUT, by=alive) == {spring.id: 2}
    assert states(ledger, spring) == {
        one.recipient_id: S.UNKNOWN,
        two.recipient_id: S.UNKNOWN,
        three.recipient_id: S.SENDING,  # a live peer's call: never touched
        four.recipient_id: S.PENDING,
    }
    assert states(ledger, autumn) == {five.recipient_id: S.SENDING}
    assert [a.outcome for a in attempt_rows(ledger, one.recipient_id)] == [S.UNKNOWN]
    assert attempt_rows(ledger, three.recipient_id)[0].outcome is None

    # The lost sender wakes up: its heartbeat says it is lost, its late outcomes write nothing
    # (not even after another sender claimed the row again), and it claims nothing more.
    with pytest.raises(SenderLost, match="declared lost by another sender"):
        ledger.sender_heartbeat(dead, rate=10.0)
    ledger.retry_unknown(spring.id)  # the user asks: the row is pending again
    run_again = start_run(ledger, spring)
    assert ledger.claim(spring.id, run_again, [one], sender_id=alive) == [one]
    ledger.settle(run_dead, [sent(one, "late"), sent(two, "late")], sender_id=dead)
    assert states(ledger, spring)[one.recipient_id] == S.SENDING
    assert states(ledger, spring)[two.recipient_id] == S.PENDING
    assert ledger.claim(spring.id, run_dead, [four], sender_id=dead) == []
    # A second sweep finds nothing more; the live senders are still live.
    assert ledger.sweep_lost_senders(timeout=TIMEOUT, by=alive) == {}
    live = {s.id: s.state for s in ledger.list_senders()}
    assert live == {dead: SenderState.LOST, alive: SenderState.LIVE, other: SenderState.LIVE}


def test_claims_left_by_a_stopped_sender_are_recovered(ledger: Ledger) -> None:
    """A sender that ended with calls it could not record (a worker process died)."""
    campaign = add_campaign(ledger, pending=2)
    gone = ledger.register_sender(campaign.id, host="a", pid=1)
    run_id = start_run(ledger, campaign)
    first, _ = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, run_id, [first], sender_id=gone)
    ledger.stop_sender(gone)
    me = ledger.register_sender(campaign.id, host="b", pid=2)
    assert ledger.sweep_lost_senders(timeout=TIMEOUT, by=me) == {campaign.id: 1}
    assert states(ledger, campaign)[first.recipient_id] == S.UNKNOWN


def test_recovery_at_start(ledger: Ledger) -> None:
    """SQLite: the new sender holds the campaign's lock, so every `sending` row is an orphan and
    the campaign's other senders are declared lost. PostgreSQL: a live peer's claims are kept;
    a silent one's, and those without an owner (an older release), become `unknown`."""
    campaign = add_campaign(ledger, pending=4)
    peer = ledger.register_sender(campaign.id, host="a", pid=1)
    silent = ledger.register_sender(campaign.id, host="b", pid=2)
    runs = [start_run(ledger, campaign) for _ in range(3)]
    one, two, three, _ = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, runs[0], [one], sender_id=peer)
    ledger.claim(campaign.id, runs[1], [two], sender_id=silent)
    ledger.claim(campaign.id, runs[2], [three])  # no owner: a sender of an older release
    silence(ledger, silent, TIMEOUT + 1)
    me = ledger.register_sender(campaign.id, host="c", pid=3)
    recovered = ledger.recover_orphans(campaign.id, sender_id=me, timeout=TIMEOUT)
    found = {s.id: s.state for s in ledger.list_senders(campaign.id)}
    if ledger.shared_ledger:
        assert recovered == 2
        assert states(ledger, campaign)[one.recipient_id] == S.SENDING
        assert found == {peer: SenderState.LIVE, silent: SenderState.LOST, me: SenderState.LIVE}
    else:
        assert recovered == 3
        assert states(ledger, campaign)[one.recipient_id] == S.UNKNOWN
        assert found == {peer: SenderState.LOST, silent: SenderState.LOST, me: SenderState.LIVE}
    assert states(ledger, campaign)[two.recipient_id] == S.UNKNOWN
    assert states(ledger, campaign)[three.recipient_id] == S.UNKNOWN


def test_ownerless_claims_wait_while_an_older_sender_holds_the_lock(postgres_url: str) -> None:
    """On PostgreSQL a sender of the release before (the campaign's lock, no claim owner) may still
    be running: its claims are not recovered under it."""
    ledger = Ledger(open_ledger_engine(postgres_url))
    campaign = add_campaign(ledger, pending=1)
    ledger.acquire_sender(
        campaign.id, token="old", pid=1, host="elsewhere", is_alive=lambda _: True
    )
    run_id = start_run(ledger, campaign)
    (only,) = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, run_id, [only])
    me = ledger.register_sender(campaign.id, host="c", pid=3)
    assert ledger.recover_orphans(campaign.id, sender_id=me) == 0
    assert states(ledger, campaign)[only.recipient_id] == S.SENDING
    ledger.release_sender(campaign.id, "old")
    assert ledger.recover_orphans(campaign.id, sender_id=me) == 1
    with ledger.engine.connect() as conn:
        assert conn.execute(select(campaigns.c.sender_token)).scalar() is None
    ledger.engine.dispose()


def test_concurrent_senders_never_claim_one_recipient_twice(postgres_url: str) -> None:
    """Four senders, each on its own connections, all reaching for the same candidates at once
    (the worst case): every recipient is claimed exactly once, and nobody waits for another."""
    engine = open_ledger_engine(postgres_url)
    ledger = Ledger(engine)
    campaign = add_campaign(ledger, pending=2000)
    candidates = pending_claims(ledger, campaign)
    won: Counter[int] = Counter()
    by_sender: dict[int, int] = {}
    lock = threading.Lock()
    start = threading.Barrier(4)

    def sender(n: int) -> None:
        mine = Ledger(open_ledger_engine(postgres_url))
        me = mine.register_sender(campaign.id, host=f"h{n}", pid=n)
        run_id = start_run(mine, campaign, pid=n)
        start.wait()
        got = 0
        for i in range(0, len(candidates), 25):
            claimed = mine.claim(campaign.id, run_id, candidates[i : i + 25], sender_id=me)
            mine.settle(
                run_id,
                [Settlement(c.recipient_id, AttemptOutcome.SENT, S.SENT, "m") for c in claimed],
                sender_id=me,
            )
            got += len(claimed)
            with lock:
                won.update(c.recipient_id for c in claimed)
        by_sender[me] = got
        mine.engine.dispose()

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 2000 and set(won.values()) == {1}
    assert sum(by_sender.values()) == 2000
    assert set(states(ledger, campaign).values()) == {S.SENT}
    # Each recipient is recorded as claimed by the sender that got it (a sender may get none: on a
    # busy machine one thread can take every batch before another is scheduled).
    claimed_by = Counter(owners(ledger, campaign.id).values())
    assert claimed_by == {me: got for me, got in by_sender.items() if got}
    engine.dispose()


def test_claim_statistics_are_refreshed_once_when_missing(ledger: Ledger) -> None:
    """A fresh import has no planner statistics on PostgreSQL: the sender's start gathers them
    (without, each claim read the whole table), and not again while they are fresh."""
    add_campaign(ledger, pending=20)
    if not ledger.shared_ledger:
        assert ledger.refresh_claim_statistics() is False  # SQLite: nothing to do
        return
    assert ledger.refresh_claim_statistics() is True
    assert ledger.refresh_claim_statistics() is False
