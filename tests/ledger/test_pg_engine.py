"""PostgreSQL as a ledger URL: the driver, one-line errors, session settings, the database's clock."""

from __future__ import annotations

import time
from datetime import UTC, timedelta

import pytest
from sqlalchemy import insert, select, text

from campaign.ledger.engine import (
    DatabaseError,
    db_epoch,
    db_now,
    make_engine,
    normalize_url,
    open_ledger_engine,
    transaction,
)
from campaign.ledger.tables import campaigns, rate_limits
from tests.helpers import Cli
from tests.postgres import PostgresCluster, free_port


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # SQLAlchemy 2.0 reads a bare postgresql:// as psycopg2, which this tool does not install.
        (
            "postgresql://u:pw@db.example.com:5432/ledger",
            "postgresql+psycopg://u:***@db.example.com:5432/ledger",
        ),
        ("postgres://u@db/ledger", "postgresql+psycopg://u@db/ledger"),
        ("postgresql+psycopg://u@db/ledger", "postgresql+psycopg://u@db/ledger"),
        # An explicit driver is the user's choice.
        ("postgresql+psycopg2://u@db/ledger", "postgresql+psycopg2://u@db/ledger"),
        ("sqlite:///ledger.db", "sqlite:///ledger.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert repr(normalize_url(url)) == expected


def test_bare_postgresql_url_works(run: Cli, postgres_cluster: PostgresCluster) -> None:
    name = postgres_cluster.create_database()
    for scheme in ("postgresql", "postgres"):
        url = postgres_cluster.url(name, driver=scheme)
        run("--db", url, "db", "upgrade")
        run("--db", url, "create", f"spring-{scheme}", "-o", "+12065550100", "-m", "Hi")
    engine = make_engine(postgres_cluster.url(name, driver="postgresql"))
    assert engine.dialect.driver == "psycopg"
    with engine.connect() as conn:
        names = conn.execute(select(campaigns.c.name).order_by(campaigns.c.id)).scalars().all()
    assert names == ["spring-postgresql", "spring-postgres"]


def _one_error_line(run: Cli, *args: str) -> str:
    result = run(*args, code=1)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_unreachable_server_is_one_line(run: Cli) -> None:
    url = f"postgresql://campaign:secret@127.0.0.1:{free_port()}/ledger"
    line = _one_error_line(run, "--db", url, "list")
    assert line.startswith("Error: cannot open the ledger postgresql+psycopg://campaign:***@")
    assert "Connection refused" in line
    assert "secret" not in line
    assert _one_error_line(run, "--db", url, "db", "upgrade") == line


def test_missing_database_is_one_line(run: Cli, postgres_cluster: PostgresCluster) -> None:
    line = _one_error_line(run, "--db", postgres_cluster.url("no_such_db"), "list")
    assert 'database "no_such_db" does not exist' in line


def test_missing_driver_is_one_line(run: Cli) -> None:
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("psycopg2 is installed here")
    line = _one_error_line(run, "--db", "postgresql+psycopg2://u@127.0.0.1/x", "list")
    assert line == (
        "Error: cannot use database URL postgresql+psycopg2://u@127.0.0.1/x: "
        "its driver psycopg2 is not installed"
    )


def test_times_come_back_in_utc(postgres_url: str, postgres_cluster: PostgresCluster) -> None:
    # A server (or database) set to another zone must not change what the tool reads.
    database = postgres_url.rsplit("/", 1)[1]
    postgres_cluster.execute(f"ALTER DATABASE {database} SET timezone = 'America/New_York'")
    engine = open_ledger_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW timezone")).scalar() == "UTC"
        stamp = conn.execute(select(db_now())).scalar_one()
    assert stamp.utcoffset() == timedelta(0)
    assert stamp.tzinfo is not None


def test_database_clock(sqlite_or_postgres_url: str) -> None:
    engine = open_ledger_engine(sqlite_or_postgres_url)
    with engine.connect() as conn:
        now, earlier, epoch = conn.execute(select(db_now(), db_now(30.5), db_epoch())).one()
    now = now.replace(tzinfo=now.tzinfo or UTC)
    earlier = earlier.replace(tzinfo=earlier.tzinfo or UTC)
    # The same machine: the database's clock is this one (allowing for a slow, shared machine).
    assert abs(epoch - time.time()) < 5
    assert abs(now.timestamp() - epoch) < 1
    assert (now - earlier).total_seconds() == pytest.approx(30.5, abs=0.01)


def test_transaction_shares_the_callers_commit(sqlite_or_postgres_url: str) -> None:
    engine = open_ledger_engine(sqlite_or_postgres_url)

    def add(bind: object, identity: str) -> None:
        with transaction(bind) as conn:  # type: ignore[arg-type]
            conn.execute(insert(rate_limits).values(identity=identity, mps=1, updated_at=db_now()))

    add(engine, "engine")  # its own commit
    with engine.connect() as conn:
        add(conn, "connection")  # outside a transaction: its own commit
        conn.begin()
        add(conn, "rolled back")  # inside the caller's transaction: the caller decides
        conn.rollback()
    with engine.connect() as conn:
        identities = conn.execute(select(rate_limits.c.identity)).scalars().all()
    assert sorted(identities) == ["connection", "engine"]


def test_postgresql_session_settings(postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SHOW application_name")).scalar() == "campaign"
    custom = make_engine(postgres_url + "?application_name=nightly")
    with custom.connect() as conn:
        assert conn.execute(text("SHOW application_name")).scalar() == "nightly"


def test_upgrade_needs_a_reachable_server_not_a_traceback(
    run: Cli, postgres_cluster: PostgresCluster
) -> None:
    # A server that refuses the role: still one line.
    url = postgres_cluster.url("postgres").replace("postgres@", "nobody@")
    assert 'role "nobody" does not exist' in _one_error_line(run, "--db", url, "status", "x")


def test_open_ledger_engine_rejects_a_bad_url() -> None:
    with pytest.raises(DatabaseError, match="invalid database URL"):
        open_ledger_engine("not a url")


def test_a_url_escaped_password_works(run: Cli, postgres_cluster: PostgresCluster) -> None:
    """`p@ss%` written p%40ss%25, as a URL needs it: Alembic's ConfigParser read the `%` as
    interpolation, and every command failed with an internal error quoting the password."""
    name = postgres_cluster.create_database()
    url = postgres_cluster.url(name).replace("postgres@", "postgres:p%40ss%25@")  # trust: any
    result = run("--db", url, "db", "upgrade")
    assert "Ledger at revision" in result.stderr
    assert run.json("--db", url, "list", "--json") == []


def test_a_port_that_is_not_a_number_is_one_line_without_the_password(run: Cli) -> None:
    line = _one_error_line(run, "--db", "postgresql://u:secret@db.example.com:54x2/ledger", "list")
    assert line.startswith("Error: invalid database URL 'postgresql://u:***@db.example.com:54x2")
    assert "secret" not in line
