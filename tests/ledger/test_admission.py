"""campaign.sending.admission against the ledger (SQLite and PostgreSQL), with an injected wall
clock: what the sender may claim as the windows open and close, what it waits for, the
do-not-send list before the claim, the deadline's expiry and each message's TimeToLive."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from campaign.domain import Campaign, Claim, RecipientState
from campaign.ledger import Ledger
from campaign.ledger.tables import recipients
from campaign.sending.admission import Admission, Check, expired_reason
from tests.ledger.helpers import recipient_rows
from tests.ledger.test_audience import PEOPLE, add_recipients

S = RecipientState
# The default PROMOTIONAL policy: US 08:00-20:00, elsewhere 09:00-20:00, in local time.
# 14:00 UTC on 1 July: 10:00 in New York (open), 07:00 in Los Angeles (opens at 15:00 UTC),
# 15:00 in London (open); the unknown zones never open.
T0 = datetime(2026, 7, 1, 14, 0, tzinfo=UTC)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


def phones(claims: list[Claim]) -> list[str]:
    return [c.phone for c in claims]


def mark_sent(ledger: Ledger, campaign: Campaign, ids: list[int]) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(
            update(recipients)
            .where(recipients.c.campaign_id == campaign.id, recipients.c.id.in_(ids))
            .values(state=S.SENT.value)
        )


def test_claims_follow_the_windows_and_wait_for_the_next(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE)
    clock = Clock(T0)
    admission = Admission(ledger, campaign, wall_clock=clock)

    assert admission.check() == Check.GO
    first = admission.fetch(after_id=0, limit=100)
    assert phones(first) == ["+12125550101", "+12125550102", "+447700900105"]
    mark_sent(ledger, campaign, [c.recipient_id for c in first])
    assert admission.fetch(after_id=first[-1].recipient_id, limit=100) == []

    held = admission.hold()
    assert held is not None
    assert (held.window, held.capped, held.never) == (1, 0, 2)  # LA; US toll-free, +800
    assert held.next_opening == held.until == datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    assert held.opening_then == 1 and held.deadline is None
    assert admission.seconds_to_wait() == admission.recheck_seconds  # an hour: looks again

    clock.at = datetime(2026, 7, 1, 14, 59, tzinfo=UTC)
    assert admission.check() == Check.GO and admission.hold() is held  # no new query
    clock.at = datetime(2026, 7, 1, 15, 0, tzinfo=UTC)
    assert admission.check() == Check.REFETCH
    assert phones(admission.fetch(after_id=0, limit=100)) == ["+13105550103"]

    # Still open at 19:59 in Los Angeles; closed at 20:00 (03:00 UTC): the candidates fetched
    # under the old answer are dropped and nobody is claimable.
    clock.at = datetime(2026, 7, 2, 2, 59, tzinfo=UTC)
    assert admission.check() == Check.GO
    clock.at = datetime(2026, 7, 2, 3, 0, tzinfo=UTC)
    assert admission.check() == Check.REFETCH
    assert admission.fetch(after_id=0, limit=100) == []


def test_only_undecided_recipients_left_is_a_stop_not_a_wait(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", [PEOPLE[3], PEOPLE[5]])  # unknown zones only
    admission = Admission(ledger, campaign, wall_clock=Clock(T0))
    assert admission.fetch(after_id=0, limit=100) == []
    held = admission.hold()
    assert held is not None and held.never == 2 and held.until is None


def test_listed_candidates_become_suppressed_before_the_claim(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE[:3])
    ledger.add_suppressions(["+12125550102"], "complaint")
    admission = Admission(ledger, replace(campaign, window="none"), wall_clock=Clock(T0))
    assert phones(admission.fetch(after_id=0, limit=100)) == ["+12125550101", "+13105550103"]
    assert admission.suppressed == 1
    assert [r.state for r in recipient_rows(ledger, campaign)] == [
        S.PENDING,
        S.SUPPRESSED,
        S.PENDING,
    ]


def test_the_deadline_expires_the_pending_and_caps_time_to_live(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE[:3])
    deadline = T0 + timedelta(hours=1)
    clock = Clock(T0)
    admission = Admission(
        ledger, replace(campaign, window="none", deadline=deadline), wall_clock=clock
    )
    assert len(admission.fetch(after_id=0, limit=100)) == 3

    request: dict[str, object] = {}
    admission.cap_time_to_live(request)
    assert request == {"TimeToLive": 3600}  # the hour left, not the service's 72 h
    short = {"TimeToLive": 60}
    admission.cap_time_to_live(short)
    assert short == {"TimeToLive": 60}

    clock.at = deadline - timedelta(seconds=6)  # the API's 5 s minimum and a 1 s margin
    assert admission.check() == Check.DEADLINE
    assert admission.expired == 3
    rows = recipient_rows(ledger, campaign)
    assert {r.state for r in rows} == {S.EXPIRED}
    assert rows[0].reason == expired_reason(deadline)
    assert admission.hold() is None  # nothing pending: the run is over


def test_the_frequency_cap_holds_back_inside_the_window(ledger: Ledger) -> None:
    from campaign.domain import AttemptOutcome, Settlement
    from tests.ledger.helpers import start_run

    earlier = add_recipients(ledger, "earlier", PEOPLE[:1])
    run_id = start_run(ledger, earlier)
    claimed = ledger.claim(earlier.id, run_id, ledger.next_pending(earlier.id, after_id=0, limit=9))
    ledger.settle(run_id, [Settlement(claimed[0].recipient_id, AttemptOutcome.SENT, S.SENT, "m")])
    campaign = add_recipients(ledger, "spring", PEOPLE[:2])
    capped = replace(campaign, window="none", max_per_recipient=1, per_hours=24)
    clock = Clock(datetime.now(UTC))
    admission = Admission(ledger, capped, wall_clock=clock)

    assert phones(admission.fetch(after_id=0, limit=100)) == ["+12125550102"]
    mark_sent(ledger, campaign, [recipient_rows(ledger, campaign)[1].id])
    held = admission.hold()
    assert held is not None and held.capped == 1 and held.window == 0
    assert held.until == clock.at + timedelta(minutes=1)  # looks again in a minute


def test_at_the_deadline_the_capped_say_so(ledger: Ledger) -> None:
    from campaign.domain import AttemptOutcome, Settlement
    from campaign.sending.admission import capped_reason
    from tests.ledger.helpers import start_run

    earlier = add_recipients(ledger, "earlier", PEOPLE[:1])
    run_id = start_run(ledger, earlier)
    claimed = ledger.claim(earlier.id, run_id, ledger.next_pending(earlier.id, after_id=0, limit=9))
    ledger.settle(run_id, [Settlement(claimed[0].recipient_id, AttemptOutcome.SENT, S.SENT, "m")])
    campaign = add_recipients(ledger, "spring", PEOPLE[:2])
    deadline = datetime.now(UTC) + timedelta(hours=1)
    capped = replace(campaign, window="none", max_per_recipient=1, per_hours=24, deadline=deadline)
    admission = Admission(ledger, capped, wall_clock=Clock(deadline))

    assert admission.check() == Check.DEADLINE and admission.expired == 2
    rows = recipient_rows(ledger, campaign)
    assert admission.cap is not None
    assert rows[0].reason == capped_reason(deadline, admission.cap)  # messaged by `earlier`
    assert rows[1].reason == expired_reason(deadline)
