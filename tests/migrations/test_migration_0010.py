"""Revision 0010 (`state` in ix_recipients_pending_groups) on SQLite and PostgreSQL: a ledger of the
revision before keeps its data and its window counts, gets the wider index, and downgrades."""

from __future__ import annotations

from sqlalchemy import inspect, text

from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate
from tests.helpers import Cli
from tests.migrations.test_migration_0009 import _old_ledger
from tests.migrations.test_migrations import schema_diffs
from tests.migrations.test_pg_migrations import _downgrade

PREVIOUS = "0009"
INDEX = "ix_recipients_pending_groups"


def _index_columns(url: str) -> list[str | None]:
    found = [i for i in inspect(make_engine(url)).get_indexes("recipients") if i["name"] == INDEX]
    assert len(found) == 1, f"{INDEX} is missing"
    return list(found[0]["column_names"])


def test_upgrade_to_0010_widens_the_pending_groups_index(
    run: Cli, blank_sqlite_or_postgres_url: str
) -> None:
    url = blank_sqlite_or_postgres_url
    _old_ledger(url)  # a 0008 ledger with one sent and one pending recipient
    engine = make_engine(url)
    migrate(engine, PREVIOUS)
    assert _index_columns(url) == ["campaign_id", "tz_key", "country", "parts"]
    status = run.json("--db", url, "status", "old", "--json")  # first use upgrades
    assert current_revision(engine) == head_revision()
    assert _index_columns(url) == ["campaign_id", "tz_key", "country", "parts", "state"]
    assert schema_diffs(url) == []
    assert status["counts"]["sent"] == 1 and status["counts"]["pending"] == 1
    # The grouping the index serves still finds the pending recipient, and only it: imported
    # before zones were kept, its zone is unknown.
    assert status["window"]["held"]["unknown_zone"] == 1
    assert status["window"]["open_now"] + status["window"]["waiting"] == 0
    _downgrade(engine, PREVIOUS)
    assert _index_columns(url) == ["campaign_id", "tz_key", "country", "parts"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM recipients")).scalar() == 2
