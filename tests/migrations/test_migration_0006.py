"""Revision 0006 (windows, deadlines, caps, time zones, the do-not-send list) on SQLite and
PostgreSQL: a ledger of the release before keeps its data, its recipients get an unknown zone,
and the revision downgrades cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate
from tests.helpers import Cli
from tests.migrations.test_migrations import schema_diffs
from tests.migrations.test_pg_migrations import _downgrade


def _old_ledger(url: str) -> None:
    """A ledger at 0004 with one campaign, one sent and one pending recipient."""
    engine = make_engine(url)
    migrate(engine, "0004")
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO campaigns (id, name, template, origination_identity, created_at, "
            "updated_at) VALUES (1, 'old', 'Hi', '+12065550100', '2026-10-01 00:00:00+00', "
            "'2026-10-01 00:00:00+00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO imports (id, campaign_id, filename, sha256, rows, accepted, duplicates, "
            "invalid, phone_column, columns, created_at) VALUES (1, 1, 'a.csv', 'x', 2, 2, 0, 0, "
            "'phone', '[]', '2026-10-01 00:00:00+00')"
        )
        conn.exec_driver_sql(
            "INSERT INTO recipients (campaign_id, import_id, row, raw_phone, phone, country, "
            "state, parts) VALUES (1, 1, 1, '2065550100', '+12065550100', 'US', 'sent', 1), "
            "(1, 1, 2, '2065550101', '+12065550101', 'US', 'pending', 2)"
        )


def test_upgrade_from_0004_keeps_the_data(run: Cli, blank_sqlite_or_postgres_url: str) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)
    engine = make_engine(url)
    status = run.json("--db", url, "status", "old", "--json")  # first use upgrades
    assert current_revision(engine) == head_revision() == "0006"
    assert status["counts"]["sent"] == 1 and status["counts"]["pending"] == 1
    assert status["counts"]["suppressed"] == 0 and status["counts"]["expired"] == 0
    with engine.connect() as conn:
        zones = conn.execute(text("SELECT tz_key, tz_source FROM recipients")).all()
        campaign = conn.execute(
            text('SELECT "window", days, deadline, max_per_recipient, per_hours FROM campaigns')
        ).one()
    assert zones == [(None, None), (None, None)]  # imported before: unknown, never guessed
    assert tuple(campaign) == (None, None, None, None, None)  # the message type's default window
    # The PROMOTIONAL default window holds the old pending recipient: its zone is unknown.
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
        assert conn.execute(text("SELECT count(*) FROM recipients")).scalar_one() == 2
    migrate(engine)
    assert schema_diffs(url) == []
