"""The ledger's schema: built by the Alembic revisions (never create_all), matching the models."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from campaign.ledger.engine import current_revision, head_revision, make_engine, migrate
from campaign.ledger.tables import metadata
from tests.helpers import Cli


def old_campaign(conn: Connection, rows: int, stamp: str = "2026-10-01 00:00:00+00") -> None:
    """Campaign 1 ('old') and its import 1 of `rows` rows, as a ledger of any revision holds them;
    each test inserts the recipients its revision has columns for."""
    conn.exec_driver_sql(
        "INSERT INTO campaigns (id, name, template, origination_identity, created_at, "
        f"updated_at) VALUES (1, 'old', 'Hi', '+12065550100', '{stamp}', '{stamp}')"
    )
    conn.exec_driver_sql(
        "INSERT INTO imports (id, campaign_id, filename, sha256, rows, accepted, duplicates, "
        f"invalid, phone_column, columns, created_at) VALUES (1, 1, 'a.csv', 'x', {rows}, "
        f"{rows}, 0, 0, 'phone', '[]', '{stamp}')"
    )


def schema_diffs(url: str) -> list[Any]:
    """What autogenerate would write to bring the database to the models: nothing, we expect."""
    engine = make_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def schema_dump(url: str) -> dict[str, Any]:
    engine = make_engine(url)
    inspector = inspect(engine)
    return {
        table: (
            [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
            sorted(str(i["name"]) for i in inspector.get_indexes(table)),
            sorted(str(u["name"]) for u in inspector.get_unique_constraints(table)),
        )
        for table in sorted(inspector.get_table_names())
    }


def test_head_exists() -> None:
    assert head_revision() is not None


def test_db_upgrade_builds_a_blank_database(run: Cli, isolated_env: Path, db_url: str) -> None:
    assert not isolated_env.exists()
    result = run("db", "upgrade")
    head = head_revision()
    assert f"Ledger at revision {head} (was empty; newest {head})." in result.stderr
    assert current_revision(make_engine(db_url)) == head
    assert set(schema_dump(db_url)) == set(metadata.tables) | {"alembic_version"}
    assert schema_diffs(db_url) == []


def test_first_use_builds_the_database(run: Cli, isolated_env: Path, db_url: str) -> None:
    assert not isolated_env.exists()
    assert run.json("list", "--json") == []
    assert current_revision(make_engine(db_url)) == head_revision()
    assert schema_diffs(db_url) == []


def test_models_match_the_migrations(tmp_path: Path) -> None:
    # Straight through the library, on a database of its own.
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate(make_engine(url))
    assert schema_diffs(url) == []


def test_upgrade_twice_is_a_no_op(run: Cli, db_url: str) -> None:
    run("db", "upgrade")
    run("create", "spring", "-o", "+12065550100", "-m", "Hi")
    before = schema_dump(db_url)
    result = run("db", "upgrade")
    head = head_revision()
    assert f"Ledger at revision {head} (was {head}; newest {head})." in result.stderr
    assert schema_dump(db_url) == before
    assert [c["campaign"] for c in run.json("list", "--json")] == ["spring"]


def test_global_db_option(run: Cli, tmp_path: Path, isolated_env: Path) -> None:
    other = tmp_path / "other.db"
    run("--db", f"sqlite:///{other}", "db", "upgrade")
    assert other.exists()
    assert not isolated_env.exists()  # CAMPAIGN_DB was not touched
    assert schema_diffs(f"sqlite:///{other}") == []


def test_database_in_a_missing_folder_is_one_line(run: Cli, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'missing' / 'ledger.db'}"
    result = run("--db", url, "db", "upgrade", code=1)
    assert result.stderr.startswith("Error: cannot create the ledger ")
    assert "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "missing").exists()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "names an in-memory SQLite database"),
        ("sqlite:///:memory:", "names an in-memory SQLite database"),
        ("sqlite:///file:x?mode=memory&uri=true", "names an in-memory SQLite database"),
        ("sqlite://ledger.db", "a file is sqlite:///relative/path.db (three slashes)"),
    ],
)
def test_a_sqlite_url_that_keeps_no_file_is_refused(
    run: Cli, tmp_path: Path, url: str, message: str
) -> None:
    """An in-memory ledger (or `sqlite://ledger.db`, which SQLAlchemy refuses with a traceback)
    would take a campaign and lose it when the command ends: refused in one line."""
    for args in (("create", "c1", "-o", "+12065550100", "-m", "Hi"), ("db", "upgrade")):
        result = run("--db", url, *args, code=1)
        assert result.stderr.startswith("Error: ") and message in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_another_programs_sqlite_file_gets_no_tables(run: Cli, tmp_path: Path) -> None:
    """`--db sqlite:///app.sqlite` naming another program's database: the first command added the
    ledger's dozen tables to it."""
    import sqlite3

    other = tmp_path / "app.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE bookmarks (url TEXT)")
    for args in (("list",), ("db", "upgrade")):
        result = run("--db", f"sqlite:///{other}", *args, code=1)
        assert "is a SQLite database but not a campaign ledger" in result.stderr
        assert "other tables: bookmarks" in result.stderr
    with sqlite3.connect(other) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    assert names == ["bookmarks"]


def test_a_ledger_in_the_home_folder_written_with_a_tilde(
    run: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--db sqlite:///~/ledger.db` failed with "its folder ./~ is not writable"."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    run("--db", "sqlite:///~/ledger.db", "create", "c1", "-o", "+12065550100", "-m", "Hi")
    assert (tmp_path / "home" / "ledger.db").exists()
    assert not (tmp_path / "~").exists()
    ledger = str(tmp_path / "home" / "ledger.db")  # as the shell expands `-o ~/ledger.db`
    result = run("--db", "sqlite:///~/ledger.db", "report", "c1", "-o", ledger, code=1)
    assert "is the ledger's own file" in result.stderr


def test_schema_revision_constant_is_the_head() -> None:
    # The tool skips loading Alembic when the ledger is at SCHEMA_REVISION: it must be the head.
    from campaign.ledger.tables import SCHEMA_REVISION

    assert head_revision() == SCHEMA_REVISION


OPEN_AND_SAY_IF_ALEMBIC_LOADED = (
    "import sys; from campaign.ledger.engine import open_ledger_engine; "
    "open_ledger_engine(sys.argv[1]); print('alembic' in sys.modules)"
)


def test_alembic_is_loaded_only_when_the_ledger_is_behind(db_url: str) -> None:
    # Every command opens the ledger; importing Alembic costs each of them (`make bench` times
    # `campaign status`), so it is loaded only to migrate.
    def alembic_loaded() -> str:
        return subprocess.run(
            [sys.executable, "-c", OPEN_AND_SAY_IF_ALEMBIC_LOADED, db_url],
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout.strip()

    assert alembic_loaded() == "True"  # blank: migrated
    assert current_revision(make_engine(db_url)) == head_revision()
    assert alembic_loaded() == "False"  # at head: not loaded


def test_upgrade_from_the_first_revision_keeps_the_data(run: Cli, db_url: str) -> None:
    """A ledger made by the first release (0001) with a campaign and recipients in it."""
    engine = make_engine(db_url)
    migrate(engine, "0001")
    assert current_revision(engine) == "0001"
    with engine.begin() as conn:
        old_campaign(conn, 2, "2026-10-01 00:00:00")
        conn.exec_driver_sql(
            "INSERT INTO recipients (campaign_id, import_id, row, raw_phone, phone, state, parts) "
            "VALUES (1, 1, 1, '2065550100', '+12065550100', 'sent', 1), "
            "(1, 1, 2, '2065550101', '+12065550101', 'pending', 2)"
        )
    # First use by the new tool upgrades it in place.
    counts = run.json("status", "old", "--json")["counts"]
    assert counts["sent"] == 1 and counts["pending"] == 1
    assert current_revision(engine) == head_revision()
    index = next(
        i
        for i in inspect(engine).get_indexes("recipients")
        if i["name"] == "ix_recipients_campaign_state"
    )
    assert index["column_names"] == ["campaign_id", "state", "id", "parts"]
    assert schema_diffs(db_url) == []


def test_a_ledger_of_a_newer_version_is_one_line_and_left_alone(
    run: Cli, blank_sqlite_or_postgres_url: str
) -> None:
    """A ledger a newer campaign upgraded (a revision this one lacks): every command, `db upgrade`
    included, says so in one line (not Alembic's "Can't locate revision"), and nothing changes."""
    engine = make_engine(blank_sqlite_or_postgres_url)
    migrate(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = '0099'")
    for args in (("list",), ("db", "upgrade")):
        result = run("--db", blank_sqlite_or_postgres_url, *args, code=1)
        assert "has schema revision 0099, which this version of campaign does not know" in (
            result.stderr
        )
        assert "upgrade campaign" in result.stderr
        assert "Traceback" not in result.output
    assert current_revision(engine) == "0099"


def test_db_upgrade_to_an_unknown_revision_is_one_line(run: Cli, db_url: str) -> None:
    result = run("db", "upgrade", "--revision", "0005", code=1)
    assert "cannot upgrade the ledger to revision '0005'" in result.stderr
    assert f"{head_revision()}; head is the newest" in result.stderr
    assert current_revision(make_engine(db_url)) is None
