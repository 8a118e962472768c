"""The ledger's report queries on SQLite and PostgreSQL, with known times and states written through
the Ledger API and SQLAlchemy Core; and the report model built from them (reports/build.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, update

from campaign.domain import RecipientState
from campaign.ledger import Ledger
from campaign.ledger.engine import open_ledger_engine
from campaign.ledger.report import ActivityRow, RunRecord
from campaign.ledger.tables import attempts, recipients, runs
from campaign.pricing import PriceTable
from campaign.reports.build import _idle_stretches, campaign_report
from campaign.reports.data import PauseCause, Unavailable
from tests.ledger.helpers import add_campaign, start_run

S = RecipientState
T0 = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def ledger(sqlite_or_postgres_url: str) -> Iterator[Ledger]:
    engine = open_ledger_engine(sqlite_or_postgres_url)
    try:
        yield Ledger(engine)
    finally:
        engine.dispose()


def _attempt(
    ledger: Ledger, run_id: int, recipient_id: int, campaign_id: int, second: float, outcome: str
) -> None:
    at = T0 + timedelta(seconds=second)
    with ledger.engine.begin() as conn:
        conn.execute(
            insert(attempts).values(
                recipient_id=recipient_id,
                campaign_id=campaign_id,
                run_id=run_id,
                dry_run=False,
                started_at=at - timedelta(seconds=0.2),
                finished_at=at,
                outcome=outcome,
            )
        )


def _set(ledger: Ledger, recipient_id: int, **values: object) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(update(recipients).where(recipients.c.id == recipient_id).values(**values))


def _ids(ledger: Ledger, campaign_id: int) -> list[int]:
    return [c.recipient_id for c in ledger.next_pending(campaign_id, after_id=0, limit=100)]


def test_parts_and_throttles_per_bucket_from_known_times(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=5, parts=2)
    ids = _ids(ledger, campaign.id)
    run_id = start_run(ledger, campaign)
    with ledger.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.id == run_id).values(started_at=T0))
    # Seconds after the run's start at which each call returned, and how it came out.
    calls = [
        (ids[0], 0.5, "sent"),
        (ids[1], 9.99, "sent"),  # still the first 10 s bucket
        (ids[2], 10.0, "throttled"),  # the second bucket begins exactly at 10 s
        (ids[2], 10.4, "sent"),
        (ids[3], 35.2, "sent"),  # the fourth bucket; the third is empty and left out
        (ids[4], 36.0, "failed"),  # neither parts accepted nor a throttle: not activity
    ]
    for rid, second, outcome in calls:
        _attempt(ledger, run_id, rid, campaign.id, second, outcome)
    activity = ledger.report_run_activity(run_id, T0, 10.0)
    assert activity == [
        ActivityRow(0, parts=4, throttles=0),
        ActivityRow(1, parts=2, throttles=1),
        ActivityRow(3, parts=2, throttles=0),
    ]
    (record,) = ledger.report_runs(campaign.id)
    assert (record.started_at, record.ended_at, record.mps) == (T0, None, 10.0)
    assert record.last_call_at == T0 + timedelta(seconds=36)  # a run with no end: its last call


def test_groups_and_reasons_with_examples(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=8, also=(S.INVALID, S.DUPLICATE))
    ids = _ids(ledger, campaign.id)
    blocked = "ValidationException: DESTINATION_COUNTRY_BLOCKED"
    for rid in ids[:3]:
        _set(ledger, rid, state="failed", reason=blocked)
    _set(ledger, ids[3], state="opted_out", reason="ConflictException: OPTED_OUT")
    _set(ledger, ids[4], state="held", reason="a state of a newer version")  # unknown to this one
    for rid in ids[5:]:
        _set(ledger, rid, state="sent", message_id=f"m{rid}", delivery="delivered", delivery_at=T0)
        _set(ledger, rid, charged=0.01)
    _set(ledger, ids[7], delivery="undelivered", delivery_reason="TEXT_BLOCKED: blocked")
    _set(ledger, ids[6], delivery=None, delivery_at=T0, charged=None)  # awaiting, an event seen

    found = {g.state for g in ledger.report_groups(campaign.id)}
    assert found == {"failed", "opted_out", "held", "sent", "invalid", "duplicate"}
    assert ledger.report_failure_reasons(campaign.id, ["sent", "pending"]) == []
    failures = ledger.report_failure_reasons(campaign.id, sorted(found), examples=2)
    by_reason = {(g.state, g.reason): g for g in failures}
    assert failures[0].reason == blocked and failures[0].recipients == 3
    assert [e.row for e in by_reason[("failed", blocked)].examples] == [1, 2]  # the first rows
    assert by_reason[("held", "a state of a newer version")].recipients == 1
    assert {s for s, _ in by_reason} == {"failed", "opted_out", "held", "invalid", "duplicate"}
    assert by_reason[("failed", blocked)].examples[0].file == "spring.csv"
    (undelivered,) = ledger.report_non_delivery_reasons(campaign.id)
    assert (undelivered.state, undelivered.reason, undelivered.recipients) == (
        "undelivered",
        "TEXT_BLOCKED: blocked",
        1,
    )
    assert [e.row for e in undelivered.examples] == [8]

    report = campaign_report(
        ledger, campaign.name, PriceTable.parse("country,price_per_part\nUS,0.01\n", source="p.csv")
    )
    steps = {s.label: s for s in report.funnel.steps}
    assert steps["Imported rows"].count == 10
    assert steps["Valid"].count == 8
    assert {f.state: f.count for f in steps["Sent"].fell_out} == {
        "failed": 3,
        "opted_out": 1,
        "held": 1,
    }
    assert steps["Delivered"].count == 1
    assert {f.state: f.count for f in steps["Delivered"].fell_out} == {
        "undelivered": 1,
        "awaiting": 1,
    }
    assert not isinstance(report.countries, Unavailable)
    (us,) = report.countries
    assert (us.recipients, us.sent, us.delivered) == (8, 3, 1)
    assert str(us.charged_cost) == "0.02" and str(report.headline.spend_charged) == "0.02"
    assert us.estimated_cost is not None and float(us.estimated_cost) == pytest.approx(0.03)
    assert isinstance(report.timeline, Unavailable)  # no run yet


def test_a_campaign_just_imported_has_no_timeline_and_no_delivery(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=3, also=(S.INVALID,))
    report = campaign_report(ledger, campaign.name)
    assert isinstance(report.timeline, Unavailable)
    assert "no send run" in report.timeline.reason
    assert isinstance(report.non_delivery, Unavailable)
    assert report.headline.delivered is None and report.headline.spend_estimated is None
    assert report.headline.recipients == 3 and report.headline.sent == 0
    assert [(p.parts, p.encoding, p.recipients) for p in report.message.parts] == [(1, "GSM-7", 3)]


def _run(mps: float = 10.0) -> RunRecord:
    return RunRecord(1, T0, T0 + timedelta(hours=3), None, mps, False, 0, None)


@pytest.mark.parametrize(
    ("active_buckets", "width", "expected"),
    [
        # (bucket numbers with activity, bucket width) -> idle stretches as (start s, end s)
        ([0, 1, 2], 60.0, [(180, 10800)]),  # the run waited from its 3rd minute to its end
        ([5, 6], 60.0, [(0, 300), (420, 10800)]),  # waited at its start too
        ([0, 1, 3], 60.0, [(240, 10800)]),  # a one-minute hole is no pause (< 3 buckets)
        ([0, 4, 179], 60.0, [(60, 240), (300, 10740)]),
        (list(range(1080)), 10.0, []),  # busy all along
    ],
)
def test_idle_stretches_inside_a_run(
    active_buckets: list[int], width: float, expected: list[tuple[int, int]]
) -> None:
    activity = [ActivityRow(b, 10, 0) for b in active_buckets]
    pauses = _idle_stretches(_run(), activity, width, T0 + timedelta(hours=3))
    assert [
        ((p.started_at - T0).total_seconds(), (p.ended_at - T0).total_seconds()) for p in pauses
    ] == expected
    assert all(p.cause is PauseCause.IDLE for p in pauses)


def test_a_slow_rate_is_not_idle() -> None:
    # At 0.05 MPS a call every 20 s: gaps of 100 s between calls are the rate, not a pause.
    activity = [ActivityRow(b, 1, 0) for b in range(0, 100, 10)]  # every 100 s, 10 s buckets
    pauses = _idle_stretches(_run(mps=0.05), activity, 10.0, T0 + timedelta(seconds=1000))
    assert pauses == ()


def test_a_dry_run_is_left_out_of_the_send_over_time(ledger: Ledger) -> None:
    campaign = add_campaign(ledger, pending=2)
    start_run(ledger, campaign, dry_run=True)
    report = campaign_report(ledger, campaign.name)
    assert isinstance(report.timeline, Unavailable)  # validation only: nothing was sent
    assert report.headline.mps is None
    assert report.notes == (
        "1 dry run (validated by AWS, nothing delivered) not shown in the send over time.",
    )
