"""recover_orphans and retry_unknown, a real crash between claim and settle, and the no-double-send
rule over many crashed runs, straight against the ledger (any database, see conftest.py)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
from collections import Counter

from campaign.domain import AttemptOutcome, Campaign, RecipientState, Settlement, aware, now
from campaign.ledger import Ledger
from campaign.ledger.claims import ORPHAN_REASON, RETRY_UNKNOWN_REASON
from campaign.ledger.engine import open_ledger_engine
from campaign.sending.sender import pid_alive
from tests.ledger.helpers import (
    add_campaign,
    attempt_rows,
    back_to_pending,
    between,
    ids_in,
    pending_claims,
    recipient_rows,
    sent,
    start_run,
    states,
)

S = RecipientState
HOST = "test-host"


def test_recovery_makes_sending_recipients_unknown_never_pending(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=5, also=[S.SENT, S.FAILED])
    run_id = start_run(ledger, campaign)
    candidates = pending_claims(ledger, campaign)
    in_flight = ledger.claim(campaign.id, run_id, candidates[:3])
    ledger.settle(run_id, [sent(in_flight[0])])
    before = now()

    assert ledger.recover_orphans(campaign.id) == 2

    after = now()
    rows = {r.id: r for r in recipient_rows(ledger, campaign)}
    for orphan in in_flight[1:]:
        row = rows[orphan.recipient_id]
        assert (row.state, row.reason, row.attempts) == (S.UNKNOWN, ORPHAN_REASON, 1)
        assert between(aware(row.updated_at), before, after)
        (attempt,) = attempt_rows(ledger, orphan.recipient_id)
        assert (attempt.outcome, attempt.reason) == ("unknown", ORPHAN_REASON)
        assert between(aware(attempt.finished_at), before, after)
    assert rows[in_flight[0].recipient_id].state == S.SENT
    assert sorted(ids_in(ledger, campaign, S.PENDING)) == [c.recipient_id for c in candidates[3:]]
    assert Counter(states(ledger, campaign).values()) == {
        S.UNKNOWN: 2,
        S.PENDING: 2,
        S.SENT: 2,
        S.FAILED: 1,
    }
    assert ledger.recover_orphans(campaign.id) == 0  # nothing left sending


def test_recovery_touches_only_its_own_campaign(ledger: Ledger) -> None:
    spring = add_campaign(ledger, "spring", pending=2)
    autumn = add_campaign(ledger, "autumn", pending=2)
    for campaign in (spring, autumn):
        ledger.claim(campaign.id, start_run(ledger, campaign), pending_claims(ledger, campaign))

    assert ledger.recover_orphans(spring.id) == 2

    assert set(states(ledger, spring).values()) == {S.UNKNOWN}
    assert set(states(ledger, autumn).values()) == {S.SENDING}
    for rid in states(ledger, autumn):
        assert attempt_rows(ledger, rid)[0].outcome is None


def test_retry_unknown_makes_only_unknown_recipients_pending(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=3, also=[S.UNKNOWN, S.FAILED, S.SENT, S.INVALID])
    run_id = start_run(ledger, campaign)
    (orphan, in_flight, _) = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, run_id, [orphan])
    ledger.recover_orphans(campaign.id)
    ledger.claim(campaign.id, run_id, [in_flight])
    before = dict(states(ledger, campaign))

    assert ledger.retry_unknown(campaign.id) == 2

    after = states(ledger, campaign)
    changed = {rid for rid in after if after[rid] != before[rid]}
    assert {before[rid] for rid in changed} == {S.UNKNOWN}
    assert {after[rid] for rid in changed} == {S.PENDING}
    assert after[in_flight.recipient_id] == S.SENDING  # a call in flight is not unknown
    rows = {r.id: r for r in recipient_rows(ledger, campaign)}
    assert {rows[rid].reason for rid in changed} == {RETRY_UNKNOWN_REASON}
    # The history stays: the orphaned attempt keeps its outcome, the next claim counts a second.
    assert attempt_rows(ledger, orphan.recipient_id)[0].outcome == "unknown"
    assert ledger.claim(campaign.id, run_id, [orphan]) == [orphan]
    assert recipient_rows(ledger, campaign)[0].attempts == 2
    assert ledger.retry_unknown(campaign.id) == 0


CRASHING_SENDER = textwrap.dedent(
    """
    import os, signal, sys
    from campaign.ledger import Ledger
    from campaign.ledger.engine import open_ledger_engine

    url, campaign_id, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    ledger = Ledger(open_ledger_engine(url))
    ledger.acquire_sender(
        campaign_id, token="crashing", pid=os.getpid(), host="test-host", is_alive=lambda pid: True
    )
    run_id = ledger.start_run(
        campaign_id, pid=os.getpid(), host="test-host", dry_run=False, mps=1.0, concurrency=count
    )
    candidates = ledger.next_pending(campaign_id, after_id=0, limit=count)
    claimed = ledger.claim(campaign_id, run_id, candidates)
    print(" ".join(str(c.recipient_id) for c in claimed), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # after the claim's commit, before any settle
    """
)


def test_a_sender_killed_between_claim_and_settle_leaves_exactly_its_claims_unknown(
    ledger: Ledger, ledger_url: str
) -> None:
    campaign = add_campaign(ledger, pending=6)
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_SENDER, ledger_url, str(campaign.id), "4"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    claimed = sorted(int(i) for i in crashed.stdout.split())
    assert len(claimed) == 4
    assert sorted(ids_in(ledger, campaign, S.SENDING)) == claimed

    # The next sender on the same host sees the dead pid, takes the lock over and recovers.
    ledger.acquire_sender(campaign.id, token="next", pid=os.getpid(), host=HOST, is_alive=pid_alive)
    assert ledger.recover_orphans(campaign.id) == 4

    assert sorted(ids_in(ledger, campaign, S.UNKNOWN)) == claimed
    assert len(ids_in(ledger, campaign, S.PENDING)) == 2
    assert all(attempt_rows(ledger, rid)[0].outcome == "unknown" for rid in claimed)


def test_no_recipient_is_claimed_twice_across_many_crashed_senders(ledger_url: str) -> None:
    """Runs of a model sender that dies at random moments (seeded): every call that may have gone
    out is made once at most, each crash leaves at most its claims unknown, and the last run
    finishes the campaign."""
    rng = random.Random(20240607)
    setup = Ledger(open_ledger_engine(ledger_url))
    campaign = add_campaign(setup, pending=80)
    setup.engine.dispose()
    may_have_gone_out: Counter[int] = Counter()
    for run in range(200):
        engine = open_ledger_engine(ledger_url)  # each run a new process, as after a crash
        try:
            crashed, in_flight = _model_run(Ledger(engine), campaign, rng, may_have_gone_out, run)
            if crashed:
                assert len(ids_in(Ledger(engine), campaign, S.SENDING)) == in_flight
            elif not pending_claims(Ledger(engine), campaign):
                break
        finally:
            engine.dispose()
    else:
        raise AssertionError("the model sender never finished the campaign")
    ledger = Ledger(open_ledger_engine(ledger_url))
    final = states(ledger, campaign)
    assert set(final.values()) <= {S.SENT, S.FAILED, S.UNKNOWN}
    assert max(may_have_gone_out.values()) == 1
    assert set(may_have_gone_out) == set(final)
    for rid, state in final.items():
        outcomes = [a.outcome for a in attempt_rows(ledger, rid)]
        assert None not in outcomes
        assert sum(o in ("sent", "failed", "unknown") for o in outcomes) == 1
        assert state == next(o for o in outcomes if o in ("sent", "failed", "unknown"))
    ledger.engine.dispose()


def _model_run(
    ledger: Ledger, campaign: Campaign, rng: random.Random, calls: Counter[int], run: int
) -> tuple[bool, int]:
    """One sender run: claims small batches, 'calls' each claim, and saves the outcomes with the
    next claim, as the sender does. It dies (returns, saving nothing more) at random moments.
    Returns (crashed, how many claims it left in flight)."""
    ledger.acquire_sender(
        campaign.id, token=f"run-{run}", pid=1000 + run, host=HOST, is_alive=lambda pid: False
    )
    recovered = ledger.recover_orphans(campaign.id)
    assert recovered <= 4  # at most one batch (the "concurrency") was in flight when it died
    run_id = start_run(ledger, campaign, pid=1000 + run)
    settle: list[Settlement] = []
    cursor = 0
    while True:
        candidates = ledger.next_pending(campaign.id, after_id=cursor, limit=rng.randint(1, 4))
        if not candidates:
            break
        cursor = candidates[-1].recipient_id
        claimed = ledger.claim(campaign.id, run_id, candidates, settle=settle)
        settle = []
        for claim in claimed:
            calls[claim.recipient_id] += 1
        if rng.random() < 0.1:  # dies with these calls in flight
            return True, len(claimed)
        for claim in claimed:
            roll = rng.random()
            if roll < 0.3:  # certainly not sent: it may (and will) be claimed again
                calls[claim.recipient_id] -= 1
                settle.append(back_to_pending(claim))
            elif roll < 0.8:
                settle.append(sent(claim))
            elif roll < 0.9:
                settle.append(
                    Settlement(claim.recipient_id, AttemptOutcome.FAILED, S.FAILED, None, "bad")
                )
            else:
                settle.append(
                    Settlement(claim.recipient_id, AttemptOutcome.UNKNOWN, S.UNKNOWN, None, "?")
                )
        if rng.random() < 0.1:  # dies with these outcomes not yet saved: as good as in flight
            return True, len(claimed)
    ledger.settle(run_id, settle)
    ledger.end_run(run_id, 0)
    ledger.release_sender(campaign.id, f"run-{run}")
    return False, 0
