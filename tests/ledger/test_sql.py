"""campaign.ledger.sql: the hand-written statements' placeholders and timestamps, per database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import update
from sqlalchemy.dialects import sqlite

from campaign.domain import now
from campaign.ledger import Ledger, LedgerError
from campaign.ledger.sql import POSTGRESQL, SQLITE, Params, placeholders
from campaign.ledger.tables import attempts
from tests.ledger.helpers import add_campaign, all_attempts, pending_claims, sent, start_run


# paramstyle         3 placeholders from 1     from 4 (a statement's later ones)
@pytest.mark.parametrize(
    ("paramstyle", "first", "later"),
    [
        ("qmark", ["?", "?", "?"], ["?", "?", "?"]),  # sqlite3
        ("format", ["%s", "%s", "%s"], ["%s", "%s", "%s"]),  # psycopg2, psycopg 3
        ("pyformat", ["%s", "%s", "%s"], ["%s", "%s", "%s"]),
        ("numeric", [":1", ":2", ":3"], [":4", ":5", ":6"]),
        ("numeric_dollar", ["$1", "$2", "$3"], ["$4", "$5", "$6"]),  # asyncpg style
    ],
)
def test_placeholders_follow_the_drivers_style(
    paramstyle: str, first: list[str], later: list[str]
) -> None:
    assert placeholders(paramstyle, 3) == first
    assert placeholders(paramstyle, 3, start=4) == later


def test_an_unknown_placeholder_style_is_one_clear_error() -> None:
    with pytest.raises(LedgerError, match="unsupported database driver parameter style 'named'"):
        placeholders("named", 1)


def test_a_statement_numbers_its_placeholders_in_order() -> None:
    p = Params("numeric_dollar")
    case, args = p.case("id", [7, 8], ["sent", "failed"])

    assert case == "CASE id WHEN $1 THEN $2 WHEN $3 THEN $4 END"
    assert args == [7, "sent", 8, "failed"]
    assert (p.one(), p.many(2)) == ("$5", "$6, $7")
    assert Params("numeric_dollar").one() == "$1"  # the next statement counts afresh


def test_sqlite_timestamps_are_written_as_sqlalchemy_stores_them() -> None:
    value = datetime(2026, 3, 1, 9, 5, 7, 123, tzinfo=UTC)
    bind = sqlite.DATETIME().bind_processor(sqlite.dialect())
    assert bind is not None
    stored_by_core = bind(value)

    assert SQLITE.time(value) == stored_by_core == "2026-03-01 09:05:07.000123"
    # Another zone is written as the same instant in UTC, as everything the ledger writes.
    assert SQLITE.time(value.astimezone(timezone(timedelta(hours=2)))) == stored_by_core
    assert POSTGRESQL.time(value) is value


def test_hand_written_timestamps_compare_with_core_ones(ledger: Ledger) -> None:
    """settle writes finished_at by hand; recent_rate compares it with a bound Core parameter."""
    campaign = add_campaign(ledger, pending=3, parts=2)
    run_id = start_run(ledger, campaign)
    claimed = ledger.claim(campaign.id, run_id, pending_claims(ledger, campaign))
    ledger.settle(run_id, [sent(c) for c in claimed])
    oldest = all_attempts(ledger, campaign)[0]
    with ledger.engine.begin() as conn:  # one of them sent a minute ago
        conn.execute(
            update(attempts)
            .where(attempts.c.id == oldest.id)
            .values(finished_at=now() - timedelta(seconds=60))
        )

    assert ledger.recent_rate(campaign.id, seconds=30) == (2, 4)
    assert ledger.recent_rate(campaign.id, seconds=120) == (3, 6)
