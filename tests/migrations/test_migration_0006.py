"""Revision 0006 (windows, deadlines, caps, time zones, the do-not-send list) on SQLite and
PostgreSQL: a ledger of the release before keeps its data, its pending recipients get their time
zones as an import decides them now, and the revision downgrades cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate
from tests.helpers import Cli
from tests.migrations.test_migrations import old_campaign, schema_diffs
from tests.migrations.test_pg_migrations import _downgrade


def _old_ledger(url: str) -> None:
    """A ledger at 0004 with one campaign: a sent recipient, a pending one in Seattle and a
    pending toll-free number (no zone)."""
    engine = make_engine(url)
    migrate(engine, "0004")
    with engine.begin() as conn:
        old_campaign(conn, 3)
        conn.exec_driver_sql(
            "INSERT INTO recipients (campaign_id, import_id, row, raw_phone, phone, country, "
            "state, parts) VALUES (1, 1, 1, '2065550100', '+12065550100', 'US', 'sent', 1), "
            "(1, 1, 2, '2065550101', '+12065550101', 'US', 'pending', 2), "
            "(1, 1, 3, '8005550102', '+18005550102', 'US', 'pending', 1)"
        )


def test_upgrade_from_0004_keeps_the_data(run: Cli, blank_sqlite_or_postgres_url: str) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)
    engine = make_engine(url)
    status = run.json("--db", url, "status", "old", "--json")  # first use upgrades
    assert current_revision(engine) == head_revision()  # 0006, then the later ones on top
    assert status["counts"]["sent"] == 1 and status["counts"]["pending"] == 2
    assert status["counts"]["suppressed"] == 0 and status["counts"]["expired"] == 0
    with engine.connect() as conn:
        zones = conn.execute(
            text("SELECT tz_key, tz_source, reason FROM recipients ORDER BY row")
        ).all()
        campaign = conn.execute(
            text('SELECT "window", days, deadline, max_per_recipient, per_hours FROM campaigns')
        ).one()
    sent, seattle, toll_free = zones
    assert tuple(sent) == (None, None, None)  # never to be sent: left undecided
    assert tuple(seattle) == ("America/Los_Angeles", "number", None)
    assert toll_free.tz_key is None and toll_free.tz_source == "country"
    assert toll_free.reason.startswith("held: time zone unknown (toll-free North American")
    assert tuple(campaign) == (None, None, None, None, None)  # the message type's default window
    assert status["window"]["held"] == {"unknown_zone": 1, "empty_window": 0}
    assert "suppressions" in inspect(engine).get_table_names()
    assert schema_diffs(url) == []


def test_0006_downgrades_and_upgrades_again(blank_sqlite_or_postgres_url: str) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)
    engine = make_engine(url)
    migrate(engine)
    _downgrade(engine, "0004")
    assert current_revision(engine) == "0004"
    assert "suppressions" not in inspect(engine).get_table_names()
    assert "tz_key" not in {c["name"] for c in inspect(engine).get_columns("recipients")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recipients")).scalar_one() == 3
    migrate(engine)
    assert schema_diffs(url) == []
