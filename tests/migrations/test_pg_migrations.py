"""The migrations on PostgreSQL: a blank database to head matches the models, an old ledger keeps
its data, and every revision downgrades (on both dialects)."""

from __future__ import annotations

from sqlalchemy import Engine, inspect, text

from campaign.ledger.engine import (
    alembic_config,
    current_revision,
    head_revision,
    make_engine,
    migrate,
)
from campaign.ledger.tables import metadata
from tests.helpers import Cli
from tests.migrations.test_migrations import schema_diffs, schema_dump


def test_blank_postgresql_database_to_head_matches_the_models(blank_postgres_url: str) -> None:
    engine = make_engine(blank_postgres_url)
    assert current_revision(engine) is None
    migrate(engine)
    assert current_revision(engine) == head_revision()
    assert set(schema_dump(blank_postgres_url)) == set(metadata.tables) | {"alembic_version"}
    assert schema_diffs(blank_postgres_url) == []


def test_times_are_stored_with_their_time_zone(blank_postgres_url: str) -> None:
    migrate(make_engine(blank_postgres_url))
    with make_engine(blank_postgres_url).connect() as conn:
        naive = conn.execute(
            text(
                "SELECT table_name || '.' || column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type = 'timestamp without time zone'"
            )
        ).all()
    assert naive == []


def test_first_use_builds_a_blank_postgresql_database(run: Cli, blank_postgres_url: str) -> None:
    assert run.json("--db", blank_postgres_url, "list", "--json") == []
    assert current_revision(make_engine(blank_postgres_url)) == head_revision()


def test_upgrade_from_the_first_revision_keeps_the_data(run: Cli, blank_postgres_url: str) -> None:
    engine = make_engine(blank_postgres_url)
    migrate(engine, "0001")
    with engine.begin() as conn:
        campaign_id = conn.exec_driver_sql(
            "INSERT INTO campaigns (name, template, origination_identity, created_at, updated_at) "
            "VALUES ('old', 'Hi', '+12065550100', now(), now()) RETURNING id"
        ).scalar_one()
        import_id = conn.exec_driver_sql(
            "INSERT INTO imports (campaign_id, filename, sha256, rows, accepted, duplicates, "
            "invalid, phone_column, columns, created_at) VALUES "
            f"({campaign_id}, 'a.csv', 'x', 2, 2, 0, 0, 'phone', '[]', now()) RETURNING id"
        ).scalar_one()
        conn.exec_driver_sql(
            "INSERT INTO recipients (campaign_id, import_id, row, raw_phone, phone, state, parts) "
            f"VALUES ({campaign_id}, {import_id}, 1, '2065550100', '+12065550100', 'sent', 1), "
            f"({campaign_id}, {import_id}, 2, '2065550101', '+12065550101', 'pending', 2)"
        )
    counts = run.json("--db", blank_postgres_url, "status", "old", "--json")["counts"]
    assert counts["sent"] == 1 and counts["pending"] == 1
    assert current_revision(engine) == head_revision()
    index = next(
        i
        for i in inspect(engine).get_indexes("recipients")
        if i["name"] == "ix_recipients_campaign_state"
    )
    assert index["column_names"] == ["campaign_id", "state", "id", "parts"]
    assert schema_diffs(blank_postgres_url) == []


def test_every_revision_downgrades_and_upgrades_again(blank_sqlite_or_postgres_url: str) -> None:
    url = blank_sqlite_or_postgres_url
    engine = make_engine(url)
    migrate(engine)
    revisions = ["0002", "0001"]
    for revision in revisions:
        _downgrade(engine, revision)
        assert current_revision(engine) == revision
    _downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    migrate(engine)
    assert schema_diffs(url) == []


def _downgrade(engine: Engine, revision: str) -> None:
    from alembic import command

    config = alembic_config(engine)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)
