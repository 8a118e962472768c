"""Recording events in a real SQLite ledger: each event once, order never undoes a final outcome,
matching by context or MessageId, reconciling `unknown`, and setting aside what is not ours."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from campaign.events.parse import parse_body
from campaign.ledger.engine import make_engine
from campaign.ledger.events import (
    RECONCILED_REASON,
    RecordOutcome,
    aside_counts,
    delivery_counts,
    record_events,
    timeline,
    undelivered_reasons,
)
from tests.events.conftest import Recipient, deliveries, event, ledger_rows, make_campaign
from tests.helpers import Cli

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")

T = 1_700_000_000_000  # ms
CHARGE = 0.00581 + 0.00266


def record(db: Path, *events: dict[str, Any] | str) -> RecordOutcome:
    """One batch, as the ingester records it: one transaction."""
    bodies = [e if isinstance(e, str) else json.dumps(e) for e in events]
    with make_engine(f"sqlite:///{db}").begin() as conn:
        return record_events(conn, [parse_body(b) for b in bodies], datetime.now(UTC))


S, D = "TEXT_SUCCESSFUL", "TEXT_DELIVERED"
# (name, events as (type, ts offset, isFinal), expected delivery, expected reason prefix)
# Every sequence is also recorded one event per batch and all in one batch, in this order.
ORDER_TABLE = [
    ("successful-then-delivered", [(S, 0, False), (D, 5, True)], "delivered", None),
    ("delivered-then-successful", [(D, 5, True), (S, 0, False)], "delivered", None),
    ("successful-final-alone", [(S, 0, True)], "delivered", None),
    ("only-intermediate", [(S, 0, False)], None, "TEXT_SUCCESSFUL"),
    ("later-intermediates", [(S, 0, False), ("TEXT_PENDING", 9, False)], None, "TEXT_PENDING"),
    ("older-intermediate-late", [("TEXT_PENDING", 9, False), (S, 0, False)], None, "TEXT_PENDING"),
    ("blocked", [(S, 0, False), ("TEXT_BLOCKED", 5, True)], "undelivered", "TEXT_BLOCKED: "),
    ("blocked-first", [("TEXT_BLOCKED", 5, True), (S, 0, False)], "undelivered", "TEXT_BLOCKED"),
    ("temporary-then-delivered", [("TEXT_CARRIER_UNREACHABLE", 1, False), (D, 9, True)], "delivered", None),
    ("delivered-then-late-temporary", [(D, 9, True), ("TEXT_CARRIER_UNREACHABLE", 1, False)], "delivered", None),
    ("intermediate-newer-than-final", [(D, 5, True), (S, 50, False)], "delivered", None),
    ("two-finals-later-wins", [("TEXT_CARRIER_UNREACHABLE", 5, True), (D, 9, True)], "delivered", None),
    ("two-finals-reordered", [(D, 9, True), ("TEXT_CARRIER_UNREACHABLE", 5, True)], "delivered", None),
    ("ttl-expired", [(S, 0, False), ("TEXT_TTL_EXPIRED", 9, True)], "undelivered", "TEXT_TTL_EXPIRED"),
    ("duplicates", [(S, 0, False), (S, 0, False), (D, 5, True), (D, 5, True)], "delivered", None),
]  # fmt: skip


@pytest.mark.parametrize("one_batch", [False, True], ids=["batch-per-event", "one-batch"])
@pytest.mark.parametrize(
    ("sequence", "expected", "reason"),
    [t[1:] for t in ORDER_TABLE],
    ids=[t[0] for t in ORDER_TABLE],
)
def test_event_order_never_undoes_a_final_outcome(
    run: Cli,
    tmp_path: Path,
    isolated_env: Path,
    sequence: list[tuple[str, int, bool]],
    expected: str | None,
    reason: str | None,
    one_batch: bool,
) -> None:
    [r, other] = make_campaign(run, tmp_path, isolated_env, 2)
    bodies = [event(r, t, T + offset, final) for t, offset, final in sequence]
    outcomes = (
        [record(isolated_env, *bodies)] if one_batch else [record(isolated_env, b) for b in bodies]
    )
    state, message_id, delivery, delivery_reason, charged = deliveries(isolated_env)[r.id]
    assert (state, message_id, delivery) == ("sent", r.message_id, expected)
    if reason is None:
        assert delivery_reason is None
    else:
        assert delivery_reason.startswith(reason)
    assert charged == pytest.approx(CHARGE)
    distinct = len({(t, o) for t, o, _ in sequence})
    assert sum(o.stored for o in outcomes) == distinct
    assert sum(o.duplicates for o in outcomes) == len(sequence) - distinct
    assert len(timeline(make_engine(f"sqlite:///{isolated_env}").connect(), r.id)) == distinct
    assert deliveries(isolated_env)[other.id][2:] == (None, None, None)  # nobody else touched


def test_the_same_batch_twice_counts_once(run: Cli, tmp_path: Path, isolated_env: Path) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 5)
    batch = [event(r, S, T, False) for r in rs] + [event(r, D, T + 5) for r in rs] + ["junk"]
    first = record(isolated_env, *batch)
    assert (first.events, first.stored, first.duplicates, dict(first.aside)) == (
        10,
        10,
        0,
        {"malformed": 1},
    )
    again = record(isolated_env, *batch)
    assert (again.stored, again.duplicates, sum(again.aside.values())) == (0, 11, 0)
    assert ledger_rows(isolated_env, "SELECT count(*) FROM events") == [(10,)]
    assert ledger_rows(isolated_env, "SELECT count(*) FROM events_aside") == [(1,)]


def test_matching_by_message_id_without_context(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    [r] = make_campaign(run, tmp_path, isolated_env, 1)
    outcome = record(isolated_env, event(r, D, T, context={}))
    assert outcome.stored == 1
    assert deliveries(isolated_env)[r.id][2] == "delivered"


def test_what_is_not_ours_is_set_aside_with_its_reason(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    [r] = make_campaign(run, tmp_path, isolated_env, 1)
    stranger = Recipient(99_999, "+12065559999", "not-ours", "c1")
    outcome = record(
        isolated_env,
        event(r, D, T, context={"campaign": "elsewhere", "recipient": str(r.id)}),
        event(stranger, D, T, context={}),  # no context, unknown MessageId
        event(stranger, D, T + 1),  # our campaign, no such recipient
        event(r, D, T + 2, destinationPhoneNumber="+12065551234"),  # same id, another number
        event(r, "VOICE_COMPLETED", T),
        '{"Type": "Notification", "Message": "oops"}',
    )
    assert outcome.stored == 0
    assert dict(outcome.aside) == {
        "other_campaign": 1,
        "unknown_message": 3,
        "other_channel": 1,
        "malformed": 1,
    }
    assert deliveries(isolated_env)[r.id][2] is None
    with make_engine(f"sqlite:///{isolated_env}").connect() as conn:
        assert aside_counts(conn) == dict(outcome.aside)
    details = {row[0] for row in ledger_rows(isolated_env, "SELECT detail FROM events_aside")}
    assert any("the event went to +12065551234" in d for d in details)
    assert any("'elsewhere' not in ledger" in d for d in details)


def test_an_unknown_recipient_is_reconciled_by_its_event(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    [lost, retried, never] = make_campaign(run, tmp_path, isolated_env, 3, state="unknown")
    with make_engine(f"sqlite:///{isolated_env}").begin() as conn:
        # --retry-unknown put one back to pending; no sender has claimed it again yet.
        conn.exec_driver_sql("UPDATE recipients SET state = 'pending' WHERE id = ?", (retried.id,))
    outcome = record(
        isolated_env,
        event(lost, S, T, False, message_id="aws-lost"),
        event(lost, D, T + 5, message_id="aws-lost"),
        event(retried, S, T, False, message_id="aws-retried"),
    )
    assert outcome.reconciled == 2
    rows = deliveries(isolated_env)
    assert rows[lost.id][:4] == ("sent", "aws-lost", "delivered", None)
    assert rows[retried.id][:3] == ("sent", "aws-retried", None)  # accepted, awaiting
    assert rows[never.id][:3] == ("unknown", None, None)
    reasons = ledger_rows(isolated_env, "SELECT reason FROM recipients WHERE id = ?", lost.id)
    assert reasons == [(RECONCILED_REASON,)]
    # Reconciled once: the same events again change nothing.
    assert record(isolated_env, event(lost, D, T + 5, message_id="aws-lost")).reconciled == 0


def test_an_event_of_another_message_is_kept_but_not_applied(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    # The recipient was sent twice (an `unknown` retried): the ledger holds the second MessageId.
    [r] = make_campaign(run, tmp_path, isolated_env, 1)
    outcome = record(isolated_env, event(r, "TEXT_BLOCKED", T, message_id="first-attempt"))
    assert (outcome.stored, outcome.not_applied) == (1, 1)
    assert deliveries(isolated_env)[r.id][2] is None
    [(kept,)] = ledger_rows(isolated_env, "SELECT message_id FROM events")
    assert kept == "first-attempt"


def test_a_recipient_never_accepted_gets_no_delivery(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    [r] = make_campaign(run, tmp_path, isolated_env, 1, state="failed")
    outcome = record(isolated_env, event(r, D, T, message_id="x"))
    assert outcome.not_applied == 1
    assert deliveries(isolated_env)[r.id][:3] == ("failed", None, None)


def test_a_call_still_in_flight_gets_its_delivery(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    # The event overtook the sender's own record of the call: `sending`, no MessageId yet.
    [r] = make_campaign(run, tmp_path, isolated_env, 1, state="sending")
    record(isolated_env, event(r, D, T, message_id="aws-1"))
    assert deliveries(isolated_env)[r.id][:3] == ("sending", None, "delivered")


def test_events_recorded_while_sending_reconcile_the_recipient_once_it_is_unknown(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    from campaign.ledger.events import reconcile_recorded

    # The events overtook the crash's recovery: recorded while the claim was still `sending`.
    [early, other, third] = make_campaign(run, tmp_path, isolated_env, 3, state="sending")
    record(isolated_env, event(early, D, T, message_id="aws-early"))
    record(isolated_env, event(third, D, T, message_id="aws-third"))
    engine = make_engine(f"sqlite:///{isolated_env}")
    with engine.begin() as conn:  # what the next sender's recover_orphans does
        conn.exec_driver_sql("UPDATE recipients SET state = 'unknown'")
    # Any later batch of the campaign reconciles them from what is recorded...
    assert record(isolated_env, event(other, D, T, message_id="aws-other")).reconciled == 3
    rows = deliveries(isolated_env)
    assert rows[early.id][:3] == ("sent", "aws-early", "delivered")
    assert rows[third.id][:3] == ("sent", "aws-third", "delivered")
    # ... and so does the start of every ingest, with no new event at all.
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "UPDATE recipients SET state = 'unknown', message_id = NULL WHERE id = ?", (early.id,)
        )
    with engine.begin() as conn:
        assert reconcile_recorded(conn, datetime.now(UTC)) == 1
        assert reconcile_recorded(conn, datetime.now(UTC)) == 0
    assert deliveries(isolated_env)[early.id][:2] == ("sent", "aws-early")


def test_funnel_charges_and_reasons(run: Cli, tmp_path: Path, isolated_env: Path) -> None:
    rs = make_campaign(run, tmp_path, isolated_env, 6)
    record(
        isolated_env,
        event(rs[0], D, T),
        event(rs[1], D, T),
        event(rs[2], "TEXT_BLOCKED", T),
        event(rs[3], "TEXT_BLOCKED", T),
        event(rs[4], "TEXT_SPAM", T),
        event(rs[5], S, T, False, totalMessagePrice=None, totalCarrierFee=None),
    )
    with make_engine(f"sqlite:///{isolated_env}").connect() as conn:
        funnel = delivery_counts(conn, 1)
        reasons = undelivered_reasons(conn, 1)
    assert funnel.as_dict() == {"delivered": 2, "undelivered": 3, "awaiting": 1}
    assert (funnel.sent, funnel.charged_recipients) == (6, 5)
    assert funnel.charged == pytest.approx(5 * CHARGE)
    assert reasons == [("TEXT_BLOCKED: status TEXT_BLOCKED", 2), ("TEXT_SPAM: status TEXT_SPAM", 1)]


def test_unknown_recipients_split_by_the_age_of_their_last_call(
    run: Cli, tmp_path: Path, isolated_env: Path
) -> None:
    from datetime import timedelta

    from campaign.ledger.events import unknown_split

    rs = make_campaign(run, tmp_path, isolated_env, 4, state="unknown")
    now = datetime.now(UTC)
    engine = make_engine(f"sqlite:///{isolated_env}")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO runs (id, campaign_id, pid, host, dry_run, mps, concurrency, started_at) "
            "VALUES (1, 1, 1, 'h', 0, 10, 1, ?)",
            (now.strftime("%Y-%m-%d %H:%M:%S.%f"),),
        )
        ages = {rs[0].id: [80], rs[1].id: [80, 1], rs[2].id: [2]}  # hours ago, one per attempt
        for rid, hours in ages.items():
            for h in hours:
                at = (now - timedelta(hours=h)).strftime("%Y-%m-%d %H:%M:%S.%f")
                conn.exec_driver_sql(
                    "INSERT INTO attempts (recipient_id, campaign_id, run_id, dry_run, started_at, "
                    "outcome) VALUES (?, 1, 1, 0, ?, 'unknown')",
                    (rid, at),
                )
    record(isolated_env, event(rs[2], D, T, message_id="aws-2"))  # accepted after all: now sent
    with engine.connect() as conn:
        split = unknown_split(conn, 1, now - timedelta(hours=73))
    # rs[1] was called again an hour ago; rs[3] has no attempt row at all (nothing to date it by).
    assert split.probably_never_accepted == [rs[0].id]
    assert split.may_still_be_accepted == [rs[1].id, rs[3].id]
