"""The do-not-send list, the window's groups, the frequency cap and expiry, straight against the
ledger (SQLite and PostgreSQL): the SQL the sender's claim will include (issue 11, phase 2b)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from campaign.audience.gate import HELD_PREFIX, FrequencyCap
from campaign.audience.suppression import SUPPRESSED_REASON
from campaign.audience.windows import NO_WINDOW, WindowPolicy, policy_from_options
from campaign.domain import AttemptOutcome, Campaign, CampaignSpec, RecipientState, Settlement, now
from campaign.ledger import Ledger
from campaign.ledger.audience import ClaimFilter
from campaign.ledger.suppressions import AWS_OPT_OUT_SOURCE, SuppressionChange
from campaign.ledger.tables import attempts
from tests.ledger.helpers import attempt_rows, recipient_rows, start_run, states

S = RecipientState
COLUMNS = ("row", "raw_phone", "phone", "country", "state", "reason", "parts", "tz_key")
NY, LA = "America/New_York", "America/Los_Angeles"
# (phone, country, tz_key): tz_key None is an unknown zone
PEOPLE = [
    ("+12125550101", "US", NY),
    ("+12125550102", "US", NY),
    ("+13105550103", "US", LA),
    ("+18005550104", "US", None),
    ("+447700900105", "GB", "Europe/London"),
    ("+80012345678", None, None),
]


def add_recipients(
    ledger: Ledger,
    name: str,
    people: Sequence[tuple[str, str | None, str | None]],
    state: RecipientState = S.PENDING,
) -> Campaign:
    campaign = ledger.create_campaign(
        CampaignSpec(name=name, template="Hi", origination_identity="+12065550100")
    )
    rows: list[tuple[Any, ...]] = [
        (n, phone, phone, country, state.value, None, 1, key)
        for n, (phone, country, key) in enumerate(people, start=1)
    ]
    ledger.write_import(
        campaign.id,
        filename=f"{name}.csv",
        sha256=f"{campaign.id:064d}",
        phone_column="phone",
        columns=["phone"],
        row_columns=COLUMNS,
        batches=iter([rows]),
        finish=lambda: (len(rows), 0, 0, []),
    )
    return campaign


def phones_of(ledger: Ledger, campaign: Campaign, claim_filter: ClaimFilter) -> list[str]:
    found = ledger.claimable_pending(campaign.id, claim_filter, after_id=0, limit=100)
    return [c.phone for c in found]


# -- the do-not-send list ---------------------------------------------------------------------------


def test_suppressions_add_list_remove(ledger: Ledger) -> None:
    first = ledger.add_suppressions(["+12125550101", "+12125550102", "+12125550101"], "complaint")
    assert first == SuppressionChange(added=2)
    again = ledger.add_suppressions(["+12125550102", "+13105550103"], "legal hold", "user")
    assert again == SuppressionChange(added=1, already=1)
    listed = {s.phone: s for s in ledger.list_suppressions()}
    assert list(listed) == ["+12125550101", "+12125550102", "+13105550103"]
    assert listed["+12125550102"].reason == "complaint"  # the first reason is kept
    assert listed["+13105550103"].source == "user"
    assert listed["+13105550103"].added_at is not None
    assert ledger.suppressed_phones()["+13105550103"] == "legal hold"
    assert ledger.count_suppressions() == 3

    gone = ledger.remove_suppressions(["+12125550101", "+19995550000"])
    assert gone == SuppressionChange(removed=1, missing=1)
    assert set(ledger.suppressed_phones()) == {"+12125550102", "+13105550103"}


def test_a_sync_mirrors_its_own_source_and_never_touches_the_users_entries(
    ledger: Ledger,
) -> None:
    source = AWS_OPT_OUT_SOURCE + "Default"
    ledger.add_suppressions(["+12125550101"], "asked us by mail")
    first = ledger.sync_suppressions(source, ["+12125550101", "+12125550102"], "AWS opt-out")
    assert first == SuppressionChange(added=1, already=1)
    second = ledger.sync_suppressions(source, ["+13105550103"], "AWS opt-out")
    assert second == SuppressionChange(added=1, removed=1)
    by_phone = {s.phone: s for s in ledger.list_suppressions()}
    assert by_phone["+12125550101"].source == "user"  # listed by the user: kept
    assert by_phone["+12125550101"].reason == "asked us by mail"
    assert "+12125550102" not in by_phone  # no longer opted out at AWS
    assert by_phone["+13105550103"].source == source


def test_listed_numbers_become_suppressed_only_while_pending(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE[:3])
    other = add_recipients(ledger, "other", PEOPLE[:1], state=S.SENT)
    ledger.add_suppressions(["+12125550101", "+13105550103"], "complaint")
    ids = [r.id for r in recipient_rows(ledger, campaign)]

    assert ledger.suppress_listed(campaign.id, ids[:2]) == 1  # only the first of the two asked
    assert ledger.suppress_listed(campaign.id) == 1  # the rest of the campaign
    assert ledger.suppress_listed(campaign.id) == 0
    rows = recipient_rows(ledger, campaign)
    assert [r.state for r in rows] == [S.SUPPRESSED, S.PENDING, S.SUPPRESSED]
    assert rows[0].reason == SUPPRESSED_REASON + "complaint"
    assert ledger.suppress_listed(other.id) == 0  # sent stays sent
    assert list(states(ledger, other).values()) == [S.SENT]


def test_a_suppressed_candidate_is_left_out_of_the_claim_in_the_same_transaction(
    ledger: Ledger,
) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE[:2])
    run_id = start_run(ledger, campaign)
    candidates = ledger.claimable_pending(campaign.id, ClaimFilter(), after_id=0, limit=10)
    ledger.add_suppressions([candidates[0].phone], "listed while sending")

    claimed = ledger.claim(campaign.id, run_id, candidates)

    assert claimed == candidates[1:]
    rows = recipient_rows(ledger, campaign)
    assert [r.state for r in rows] == [S.SUPPRESSED, S.SENDING]
    assert rows[0].reason == SUPPRESSED_REASON + "listed while sending"
    assert attempt_rows(ledger, candidates[0].recipient_id) == []  # never called


def test_a_dry_run_claim_changes_nobody(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE[:2])
    run_id = start_run(ledger, campaign, dry_run=True)
    candidates = ledger.claimable_pending(campaign.id, ClaimFilter(), after_id=0, limit=10)
    ledger.add_suppressions([candidates[0].phone], "listed")
    ledger.claim(campaign.id, run_id, candidates, dry_run=True)
    assert [r.state for r in recipient_rows(ledger, campaign)] == [S.PENDING, S.PENDING]


# -- the window's groups ----------------------------------------------------------------------------


def test_pending_groups_count_each_zone_and_country(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE)
    add_recipients(ledger, "other", PEOPLE[:1])  # another campaign: not counted
    groups = {
        (g.zone_key, g.country): (g.recipients, g.parts) for g in ledger.pending_groups(campaign.id)
    }
    assert groups == {
        (NY, "US"): (2, 2),
        (LA, "US"): (1, 1),
        (None, "US"): (1, 1),
        ("Europe/London", "GB"): (1, 1),
        (None, None): (1, 1),
    }


@pytest.mark.parametrize(
    ("open_groups", "expected"),
    [
        (None, [p for p, _, _ in PEOPLE]),  # no window: everyone
        (frozenset(), []),  # nothing open
        (frozenset({(NY, "US")}), ["+12125550101", "+12125550102"]),
        (frozenset({(LA, "US"), (None, "US")}), ["+13105550103", "+18005550104"]),
        (frozenset({(None, None), ("Europe/London", "GB")}), ["+447700900105", "+80012345678"]),
        (frozenset({(NY, "GB")}), []),  # the country counts too
    ],
)
def test_claimable_pending_takes_only_open_groups(
    ledger: Ledger,
    open_groups: frozenset[tuple[str | None, str | None]] | None,
    expected: list[str],
) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE)
    assert phones_of(ledger, campaign, ClaimFilter(open_groups=open_groups)) == expected


# -- the frequency cap ------------------------------------------------------------------------------


STATE_AFTER = {
    AttemptOutcome.SENT: S.SENT,
    AttemptOutcome.DRY_RUN: None,  # a dry run changes no recipient
    AttemptOutcome.THROTTLED: S.PENDING,
    AttemptOutcome.FAILED: S.FAILED,
}


def _send_to(
    ledger: Ledger, campaign: Campaign, outcome: AttemptOutcome, *, dry_run: bool = False
) -> None:
    """One call to every pending recipient of `campaign`, settled with `outcome`."""
    run_id = start_run(ledger, campaign, dry_run=dry_run)
    candidates = ledger.next_pending(campaign.id, after_id=0, limit=100)
    claimed = ledger.claim(campaign.id, run_id, candidates, dry_run=dry_run)
    message_id = "mid" if outcome == AttemptOutcome.SENT else None
    ledger.settle(
        run_id,
        [Settlement(c.recipient_id, outcome, STATE_AFTER[outcome], message_id) for c in claimed],
    )


def test_the_frequency_cap_counts_messages_across_campaigns(ledger: Ledger) -> None:
    number = "+12125550101"
    one = [(number, "US", NY)]
    cap = FrequencyCap(2, timedelta(hours=24))
    target = add_recipients(ledger, "target", [*one, ("+12125550102", "US", NY)])

    def allowed() -> list[str]:
        return phones_of(ledger, target, ClaimFilter(cap=cap))

    assert allowed() == [number, "+12125550102"]
    _send_to(ledger, add_recipients(ledger, "first", one), AttemptOutcome.SENT)
    assert ledger.messages_to(number, now() - timedelta(hours=24)) == 1
    assert allowed() == [number, "+12125550102"]  # 1 of 2

    # Calls that put nothing on the phone do not count: a dry run, a throttle, a refusal.
    _send_to(ledger, add_recipients(ledger, "dry", one), AttemptOutcome.DRY_RUN, dry_run=True)
    _send_to(ledger, add_recipients(ledger, "throttled", one), AttemptOutcome.THROTTLED)
    _send_to(ledger, add_recipients(ledger, "refused", one), AttemptOutcome.FAILED)
    assert ledger.messages_to(number, now() - timedelta(hours=24)) == 1
    assert allowed() == [number, "+12125550102"]

    # A call still in flight may deliver: it counts, and makes two.
    inflight = add_recipients(ledger, "inflight", one)
    ledger.claim(
        inflight.id,
        start_run(ledger, inflight),
        ledger.next_pending(inflight.id, after_id=0, limit=10),
    )
    assert ledger.messages_to(number, now() - timedelta(hours=24)) == 2
    assert allowed() == ["+12125550102"]
    assert phones_of(ledger, target, ClaimFilter(cap=FrequencyCap(3, timedelta(hours=24)))) == [
        number,
        "+12125550102",
    ]

    # Older than the cap's hours: no longer counted.
    with ledger.engine.begin() as conn:
        conn.execute(update(attempts).values(started_at=now() - timedelta(hours=25)))
    assert allowed() == [number, "+12125550102"]
    assert phones_of(ledger, target, ClaimFilter(cap=FrequencyCap(1, timedelta(hours=26)))) == [
        "+12125550102"
    ]


def test_window_and_cap_together(ledger: Ledger) -> None:
    target = add_recipients(ledger, "target", PEOPLE[:3])
    _send_to(ledger, add_recipients(ledger, "earlier", PEOPLE[:1]), AttemptOutcome.SENT)
    both = ClaimFilter(
        open_groups=frozenset({(NY, "US")}), cap=FrequencyCap(1, timedelta(hours=24))
    )
    assert phones_of(ledger, target, both) == ["+12125550102"]


# -- expiry and held reasons ------------------------------------------------------------------------


def test_expire_pending_at_the_deadline(ledger: Ledger) -> None:
    campaign = add_recipients(ledger, "spring", PEOPLE[:3])
    run_id = start_run(ledger, campaign)
    first = ledger.next_pending(campaign.id, after_id=0, limit=1)
    ledger.claim(campaign.id, run_id, first)  # in flight: not expired
    assert ledger.expire_pending(campaign.id, "the deadline passed") == 2
    rows = recipient_rows(ledger, campaign)
    assert [r.state for r in rows] == [S.SENDING, S.EXPIRED, S.EXPIRED]
    assert rows[1].reason == "the deadline passed"
    assert ledger.state_counts(campaign.id).counts["expired"] == 2


def test_held_reasons_follow_the_window(ledger: Ledger) -> None:
    never_together = "America/Regina Asia/Dhaka"  # 12 hours apart: no 08:00-20:00 in common
    campaign = add_recipients(
        ledger,
        "spring",
        [
            ("+12125550101", "US", NY),
            ("+18005550104", "US", None),
            ("+13065550105", "CA", never_together),
        ],
    )
    default = policy_from_options("PROMOTIONAL", None, None, no_window=False)

    def reasons() -> list[str | None]:
        return [r.reason for r in recipient_rows(ledger, campaign)]

    assert ledger.refresh_held_reasons(campaign.id, default) == 2
    ny, unknown, apart = reasons()
    assert ny is None
    assert unknown is not None and unknown.startswith(HELD_PREFIX + "time zone unknown")
    assert apart is not None and apart.startswith(HELD_PREFIX) and "never open" in apart
    assert ledger.refresh_held_reasons(campaign.id, NO_WINDOW) == 0
    assert reasons() == [None, None, None]
    # A window of 24 hours lets the far-apart pair through; the unknown zone stays held.
    whole_day = WindowPolicy.from_spec("* 00:00-24:00 mon-sun")
    assert ledger.refresh_held_reasons(campaign.id, whole_day) == 1
    assert reasons()[2] is None


def test_the_claim_time_checks_use_their_indexes(ledger: Ledger) -> None:
    if ledger.engine.dialect.name != "sqlite":
        pytest.skip("the plan is SQLite's; PostgreSQL plans by its statistics")
    from campaign.ledger import sql
    from campaign.ledger.audience import claim_filter_sql, pending_groups_query

    checks = ClaimFilter(
        open_groups=frozenset({(NY, "US")}), cap=FrequencyCap(3, timedelta(hours=24))
    )
    with ledger.engine.connect() as conn:
        p = sql.Params(conn.dialect.paramstyle)
        condition, args = claim_filter_sql(conn, p, checks, now())
        plan = conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN SELECT id FROM recipients WHERE campaign_id = 1 "
            f"AND state = 'pending' AND id > 0 AND {condition} ORDER BY id LIMIT 10",
            tuple(args),
        ).all()
        grouping = pending_groups_query(1).compile(
            dialect=conn.dialect, compile_kwargs={"literal_binds": True}
        )
        groups_plan = conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {grouping}").all()
    details = " | ".join(row[3] for row in plan)
    assert "messaged USING INDEX ix_recipients_claimed_phone (phone=?)" in details
    assert "att USING INDEX ix_attempts_recipient (recipient_id=?)" in details
    # The index alone, not the table as well (migration 0010 put `state` in it).
    assert "USING COVERING INDEX ix_recipients_pending_groups" in " | ".join(
        row[3] for row in groups_plan
    )
