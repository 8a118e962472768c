"""Fixtures of the direct ledger tests: the database they run on, and a Ledger on it.

By default each test gets a fresh SQLite file (a copy of the migrated one, see tests/conftest.py).
`pytest --ledger-url URL` runs the same tests against another database instead, e.g.
`postgresql+psycopg://user@127.0.0.1:5432/scratch`: every test empties it and migrates it from blank,
so point it at a scratch database only.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from campaign.ledger import Ledger
from campaign.ledger.engine import make_engine, open_ledger_engine
from campaign.ledger.tables import metadata


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, sqlite_or_postgres_url: str) -> str:
    """The URL of a freshly migrated ledger, for this test alone: every test here runs on SQLite
    and on PostgreSQL (tests/postgres.py starts a throwaway server), or only on `--ledger-url`."""
    url = request.config.getoption("--ledger-url", default=None)
    if url is None:
        return sqlite_or_postgres_url
    if "postgresql" in sqlite_or_postgres_url:
        pytest.skip("--ledger-url given: once per test is enough")
    _empty(url)
    return str(url)


def _empty(url: str) -> None:
    """Drop the ledger's tables (and Alembic's record of them) so that the next open migrates anew."""
    engine = make_engine(url)
    try:
        metadata.drop_all(engine)
        with engine.begin() as conn:
            conn.execute(text("DROP TABLE IF EXISTS alembic_version"))
    finally:
        engine.dispose()


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    """A Ledger on `ledger_url`, opened the way the tool opens it (upgraded to head if behind)."""
    engine = open_ledger_engine(ledger_url)
    try:
        yield Ledger(engine)
    finally:
        engine.dispose()
