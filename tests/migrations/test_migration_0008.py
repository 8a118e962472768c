"""Revision 0008 (the owner of each `sending` claim) on SQLite and PostgreSQL: a ledger of the release
before keeps its data, a claim it left `sending` (no owner) is still recovered by the next send, and
the revision downgrades cleanly."""

from __future__ import annotations

from sqlalchemy import inspect, text

from campaign.ledger import Ledger
from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate
from tests.helpers import Cli
from tests.migrations.test_migrations import old_campaign, schema_diffs
from tests.migrations.test_pg_migrations import _downgrade


def _old_ledger(url: str) -> None:
    """A ledger at 0007 with one campaign: a sent recipient, one left `sending` by a sender of the
    release before (killed mid-call), and a pending one."""
    engine = make_engine(url)
    migrate(engine, "0007")
    with engine.begin() as conn:
        old_campaign(conn, 3)
        conn.exec_driver_sql(
            "INSERT INTO recipients (campaign_id, import_id, row, raw_phone, phone, country, "
            "state, parts, message_id) VALUES "
            "(1, 1, 1, '2065550100', '+12065550100', 'US', 'sent', 1, 'mid-1'), "
            "(1, 1, 2, '2065550101', '+12065550101', 'US', 'sending', 2, NULL), "
            "(1, 1, 3, '2065550102', '+12065550102', 'US', 'pending', 1, NULL)"
        )


def test_upgrade_from_0007_keeps_the_data(run: Cli, blank_sqlite_or_postgres_url: str) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)
    engine = make_engine(url)
    status = run.json("--db", url, "status", "old", "--json")  # first use upgrades
    assert current_revision(engine) == head_revision()
    assert status["counts"]["sent"] == 1 and status["counts"]["sending"] == 1
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT state, sender_id, message_id FROM recipients ORDER BY row")
        ).all()
    assert [tuple(r) for r in rows] == [
        ("sent", None, "mid-1"),
        ("sending", None, None),
        ("pending", None, None),
    ]
    assert schema_diffs(url) == []
    # The claim the old sender left has no owner: the next sender still recovers it as `unknown`.
    ledger = Ledger(engine)
    campaign = ledger.get_campaign("old")
    me = ledger.register_sender(campaign.id, host="h", pid=1)
    assert ledger.recover_orphans(campaign.id, sender_id=me) == 1
    assert ledger.state_counts(campaign.id).counts["unknown"] == 1


def test_0008_downgrades_and_upgrades_again(blank_sqlite_or_postgres_url: str) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)
    engine = make_engine(url)
    migrate(engine)
    _downgrade(engine, "0007")
    assert current_revision(engine) == "0007"
    columns = {c["name"] for c in inspect(engine).get_columns("recipients")}
    assert "sender_id" not in columns and "cells" in columns
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recipients")).scalar_one() == 3
    migrate(engine)
    assert schema_diffs(url) == []
