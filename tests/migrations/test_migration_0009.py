"""Revision 0009 (a budget on the campaign) on SQLite and PostgreSQL: a ledger of the revision
before keeps its data, its campaigns have no budget until `edit --budget`, and it downgrades."""

from __future__ import annotations

from sqlalchemy import inspect, text

from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate
from tests.helpers import Cli
from tests.migrations.test_migrations import old_campaign, schema_diffs
from tests.migrations.test_pg_migrations import _downgrade

PREVIOUS = "0008"


def _old_ledger(url: str) -> None:
    engine = make_engine(url)
    migrate(engine, PREVIOUS)
    with engine.begin() as conn:
        old_campaign(conn, 2)
        conn.exec_driver_sql(
            "INSERT INTO recipients (campaign_id, import_id, row, raw_phone, phone, country, "
            "state, parts) VALUES (1, 1, 1, '2065550100', '+12065550100', 'US', 'sent', 1), "
            "(1, 1, 2, '2065550101', '+12065550101', 'US', 'pending', 2)"
        )


def test_upgrade_to_0009_keeps_the_data_and_adds_no_budget(
    run: Cli, blank_sqlite_or_postgres_url: str
) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)
    engine = make_engine(url)
    status = run.json("--db", url, "status", "old", "--json")  # first use upgrades
    assert current_revision(engine) == head_revision()
    assert status["counts"]["sent"] == 1 and status["counts"]["pending"] == 1
    assert status["budget"] is None
    assert schema_diffs(url) == []
    run("--db", url, "edit", "old", "--budget", "12.5")
    assert run.json("--db", url, "status", "old", "--json")["budget"] == "12.5"
    _downgrade(engine, PREVIOUS)
    assert "budget" not in {c["name"] for c in inspect(engine).get_columns("campaigns")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recipients")).scalar() == 2
