"""claim and settle, straight against the ledger: the transitions the no-double-send rule rests on.

A claim (pending -> sending, plus an open attempt row) is committed before the call is made; a
settlement records the call's outcome and moves the recipient on, but only while it is still
`sending`. The same tests run on any database (see conftest.py)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import IntegrityError

from campaign.domain import AttemptOutcome, RecipientState, Settlement, aware, now
from campaign.ledger import Ledger, sql
from campaign.ledger.engine import open_ledger_engine
from tests.ledger.helpers import (
    add_campaign,
    all_attempts,
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


def test_claim_moves_pending_recipients_to_sending_with_one_open_attempt_each(
    ledger: Ledger,
) -> None:
    campaign = add_campaign(ledger, pending=5)
    run_id = start_run(ledger, campaign)
    candidates = pending_claims(ledger, campaign)[:3]
    before = now()

    claimed = ledger.claim(campaign.id, run_id, candidates)

    after = now()
    assert claimed == candidates
    rows = {r.id: r for r in recipient_rows(ledger, campaign)}
    for c in candidates:
        assert rows[c.recipient_id].state == S.SENDING
        assert rows[c.recipient_id].attempts == 1
        assert between(aware(rows[c.recipient_id].updated_at), before, after)
        (attempt,) = attempt_rows(ledger, c.recipient_id)
        assert (attempt.run_id, attempt.campaign_id) == (run_id, campaign.id)
        assert not attempt.dry_run
        assert attempt.outcome is None and attempt.finished_at is None  # the call is in flight
        assert between(aware(attempt.started_at), before, after)
    assert sorted(ids_in(ledger, campaign, S.PENDING)) == sorted(
        r for r in rows if r not in {c.recipient_id for c in candidates}
    )


def test_a_claimed_recipient_cannot_be_claimed_again(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=4)
    run_id = start_run(ledger, campaign)
    first, second, third, _ = pending_claims(ledger, campaign)
    assert ledger.claim(campaign.id, run_id, [first, second]) == [first, second]

    # A stale candidate list (as another sender would hold): only what is still pending is claimed.
    again = ledger.claim(campaign.id, start_run(ledger, campaign), [first, second, third])

    assert again == [third]
    assert [len(attempt_rows(ledger, c.recipient_id)) for c in (first, second, third)] == [1, 1, 1]
    assert [r.attempts for r in recipient_rows(ledger, campaign)] == [1, 1, 1, 0]
    assert ledger.claim(campaign.id, run_id, [first, second, third]) == []


def test_a_recipient_named_twice_in_one_claim_is_claimed_once(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=2)
    run_id = start_run(ledger, campaign)
    first, second = pending_claims(ledger, campaign)

    claimed = ledger.claim(campaign.id, run_id, [first, second, first])

    assert claimed == [first, second]
    assert len(attempt_rows(ledger, first.recipient_id)) == 1


@pytest.mark.parametrize(
    "state", [S.SENT, S.FAILED, S.OPTED_OUT, S.UNKNOWN, S.INVALID, S.DUPLICATE, S.SENDING]
)
def test_only_pending_recipients_can_be_claimed(ledger: Ledger, state: RecipientState) -> None:
    campaign = add_campaign(ledger, pending=1, also=[state])
    run_id = start_run(ledger, campaign)
    pending_id, other_id = (r.id for r in recipient_rows(ledger, campaign))
    (candidate,) = pending_claims(ledger, campaign)
    # A candidate for the other row, as a stale list would hold it.
    stale = type(candidate)(other_id, "+12065550199", "US", {}, 1)

    claimed = ledger.claim(campaign.id, run_id, [stale, candidate])

    assert [c.recipient_id for c in claimed] == [pending_id]
    assert states(ledger, campaign)[other_id] == state
    assert attempt_rows(ledger, other_id) == []


def test_two_senders_claiming_the_same_candidates_at_once_never_share_one(
    ledger: Ledger, ledger_url: str
) -> None:
    campaign = add_campaign(ledger, pending=120)
    candidates = pending_claims(ledger, campaign)
    won: dict[str, list[int]] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def sender(name: str) -> None:
        engine = open_ledger_engine(ledger_url)  # a connection pool of its own, as a process has
        try:
            mine = Ledger(engine)
            run_id = start_run(mine, campaign)
            barrier.wait()
            got: list[int] = []
            for start in range(0, len(candidates), 8):
                batch = candidates[start : start + 8]
                got += [c.recipient_id for c in mine.claim(campaign.id, run_id, batch)]
            won[name] = got
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=sender, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert set(won["a"]).isdisjoint(won["b"])
    assert sorted(won["a"] + won["b"]) == [c.recipient_id for c in candidates]
    assert all(len(attempt_rows(ledger, c.recipient_id)) == 1 for c in candidates[::15])


def test_settle_records_each_outcome_and_moves_the_recipient_out_of_sending(
    ledger: Ledger,
) -> None:
    campaign = add_campaign(ledger, pending=4)
    run_id = start_run(ledger, campaign)
    a, b, c, d = ledger.claim(campaign.id, run_id, pending_claims(ledger, campaign))
    before = now()

    ledger.settle(
        run_id,
        [
            sent(a, "mid-a"),
            Settlement(
                b.recipient_id, AttemptOutcome.FAILED, S.FAILED, None, "ValidationException: bad"
            ),
            Settlement(
                c.recipient_id, AttemptOutcome.OPTED_OUT, S.OPTED_OUT, None, "DESTINATION_OPTED_OUT"
            ),
            Settlement(d.recipient_id, AttemptOutcome.UNKNOWN, S.UNKNOWN, None, "read timeout"),
        ],
    )

    after = now()
    rows = {r.id: r for r in recipient_rows(ledger, campaign)}
    expected = {
        a.recipient_id: ("sent", "mid-a", None),
        b.recipient_id: ("failed", None, "ValidationException: bad"),
        c.recipient_id: ("opted_out", None, "DESTINATION_OPTED_OUT"),
        d.recipient_id: ("unknown", None, "read timeout"),
    }
    for rid, (state, message_id, reason) in expected.items():
        assert (rows[rid].state, rows[rid].message_id, rows[rid].reason) == expected[rid]
        (attempt,) = attempt_rows(ledger, rid)
        assert (attempt.outcome, attempt.message_id, attempt.reason) == (state, message_id, reason)
        assert between(aware(attempt.finished_at), before, after)
        assert between(aware(rows[rid].updated_at), before, after)


def test_settle_moves_only_rows_that_are_still_sending(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=3)
    run_id = start_run(ledger, campaign)
    late, never_claimed = pending_claims(ledger, campaign)[:2]
    ledger.claim(campaign.id, run_id, [late])
    # The sender went silent; another one recovered its claim as unknown.
    assert ledger.recover_orphans(campaign.id) == 1

    # The silent sender's call returns after all: its late outcome must not overwrite anything.
    ledger.settle(run_id, [sent(late), sent(never_claimed)])

    assert states(ledger, campaign)[late.recipient_id] == S.UNKNOWN
    assert states(ledger, campaign)[never_claimed.recipient_id] == S.PENDING
    (attempt,) = attempt_rows(ledger, late.recipient_id)
    assert attempt.outcome == "unknown" and attempt.message_id is None
    assert attempt_rows(ledger, never_claimed.recipient_id) == []


def test_a_late_outcome_from_an_earlier_run_changes_nothing(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=1)
    (candidate,) = pending_claims(ledger, campaign)
    silent_run = start_run(ledger, campaign)
    ledger.claim(campaign.id, silent_run, [candidate])
    # Its sender went silent: a new sender recovered the claim, the user asked for a retry of the
    # unknown ones (--retry-unknown), and the new run claimed it again; that call is in flight.
    ledger.recover_orphans(campaign.id)
    ledger.retry_unknown(campaign.id)
    new_run = start_run(ledger, campaign)
    ledger.claim(campaign.id, new_run, [candidate])

    # The silent sender wakes up and settles its old call: neither its "not sent, back to
    # pending" (which would let the recipient be claimed a third time while the new call is in
    # flight) nor a "sent" may touch the new run's claim.
    ledger.settle(silent_run, [back_to_pending(candidate)])
    ledger.settle(silent_run, [sent(candidate, "from-the-silent-run")])
    assert states(ledger, campaign)[candidate.recipient_id] == S.SENDING
    assert ledger.claim(campaign.id, new_run, [candidate]) == []

    ledger.settle(new_run, [sent(candidate, "from-the-new-run")])
    (row,) = recipient_rows(ledger, campaign)
    assert (row.state, row.message_id) == (S.SENT, "from-the-new-run")
    old, new = attempt_rows(ledger, candidate.recipient_id)
    assert (old.run_id, old.outcome, old.message_id) == (silent_run, "unknown", None)
    assert (new.run_id, new.outcome, new.message_id) == (new_run, "sent", "from-the-new-run")


def test_a_call_that_did_not_go_out_goes_back_to_pending_and_is_claimed_afresh(
    ledger: Ledger,
) -> None:
    campaign = add_campaign(ledger, pending=1)
    run_id = start_run(ledger, campaign)
    (candidate,) = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, run_id, [candidate])

    # The sender's retry: the throttled outcome rides in the same transaction as the new claim,
    # before it, so the recipient is pending again by the time the claim looks.
    again = ledger.claim(campaign.id, run_id, [candidate], settle=[back_to_pending(candidate)])

    assert again == [candidate]
    throttled, retry = attempt_rows(ledger, candidate.recipient_id)
    assert (throttled.outcome, throttled.reason) == ("throttled", "ThrottlingException")
    assert retry.outcome is None
    (row,) = recipient_rows(ledger, campaign)
    assert (row.state, row.attempts) == (S.SENDING, 2)


def test_a_settlement_without_a_state_records_the_outcome_and_leaves_the_claim(
    ledger: Ledger,
) -> None:
    campaign = add_campaign(ledger, pending=1)
    run_id = start_run(ledger, campaign)
    (candidate,) = ledger.claim(campaign.id, run_id, pending_claims(ledger, campaign))

    ledger.settle(run_id, [Settlement(candidate.recipient_id, AttemptOutcome.ERROR, None)])

    assert states(ledger, campaign)[candidate.recipient_id] == S.SENDING
    assert attempt_rows(ledger, candidate.recipient_id)[0].outcome == "error"


def test_settle_keeps_a_recorded_message_id_when_the_outcome_has_none(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=1)
    (candidate,) = pending_claims(ledger, campaign)
    run_id = start_run(ledger, campaign)
    ledger.claim(campaign.id, run_id, [candidate])
    ledger.settle(
        run_id,
        [Settlement(candidate.recipient_id, AttemptOutcome.UNKNOWN, S.UNKNOWN, "mid-1", "?")],
    )
    ledger.retry_unknown(campaign.id)
    ledger.claim(campaign.id, run_id, [candidate])

    ledger.settle(
        run_id, [Settlement(candidate.recipient_id, AttemptOutcome.FAILED, S.FAILED, None, "no")]
    )

    (row,) = recipient_rows(ledger, campaign)
    assert (row.state, row.message_id, row.reason) == (S.FAILED, "mid-1", "no")


def test_outcomes_and_claims_are_committed_together_or_not_at_all(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    campaign = add_campaign(ledger, pending=2)
    run_id = start_run(ledger, campaign)
    first, second = pending_claims(ledger, campaign)
    ledger.claim(campaign.id, run_id, [first])

    # The claim part fails after the recipient was claimed (writing its attempt rows fails): the
    # outcome that rode with it must not be recorded either, nor the recipient left half-claimed.
    def broken(*args: object, **kwargs: object) -> None:
        raise IntegrityError("INSERT INTO attempts", {}, Exception("broken"))

    with monkeypatch.context() as patch:
        patch.setattr(sql, "insert_attempts", broken)
        with pytest.raises(IntegrityError):
            ledger.claim(campaign.id, run_id, [second], settle=[sent(first)])

    assert states(ledger, campaign) == {
        first.recipient_id: S.SENDING,
        second.recipient_id: S.PENDING,
    }
    assert attempt_rows(ledger, first.recipient_id)[0].outcome is None
    assert attempt_rows(ledger, second.recipient_id) == []
    # And the same call with good arguments records both.
    assert ledger.claim(campaign.id, run_id, [second], settle=[sent(first)]) == [second]
    assert states(ledger, campaign)[first.recipient_id] == S.SENT


def test_a_claim_with_no_candidates_still_records_its_outcomes(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=1)
    run_id = start_run(ledger, campaign)
    (candidate,) = ledger.claim(campaign.id, run_id, pending_claims(ledger, campaign))

    assert ledger.claim(campaign.id, run_id, [], settle=[sent(candidate)]) == []

    assert states(ledger, campaign)[candidate.recipient_id] == S.SENT


def test_dry_run_claims_and_outcomes_change_no_recipient(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=3, also=[S.SENT])
    before = recipient_rows(ledger, campaign)
    run_id = start_run(ledger, campaign, dry_run=True)
    candidates = pending_claims(ledger, campaign)

    claimed = ledger.claim(campaign.id, run_id, candidates, dry_run=True)
    # A dry run may claim again what it already claimed: nothing is sent.
    assert ledger.claim(campaign.id, run_id, candidates[:1], dry_run=True) == candidates[:1]
    assert recipient_rows(ledger, campaign) == before
    ledger.settle(
        run_id,
        [
            Settlement(c.recipient_id, AttemptOutcome.DRY_RUN, None, f"dry-{c.recipient_id}")
            for c in claimed
        ],
    )
    assert ledger.recover_orphans(campaign.id) == 0

    assert claimed == candidates
    assert recipient_rows(ledger, campaign) == before
    dry_attempts = all_attempts(ledger, campaign)
    assert len(dry_attempts) == 4 and all(a.dry_run for a in dry_attempts)
    assert [a.outcome for a in dry_attempts] == ["dry_run", "dry_run", "dry_run", "dry_run"]
    results = ledger.dry_run_results(run_id)
    assert [r["outcome"] for r in results] == ["dry_run"] * 4
    assert {r["phone"] for r in results} == {r.phone for r in pending_claims(ledger, campaign)}
