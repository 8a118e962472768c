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
def ledger_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty or freshly migrated ledger, for this test alone."""
    url = request.config.getoption("--ledger-url", default=None)
    if url is None:
        request.getfixturevalue("start_from_migrated_ledger")
        return str(request.getfixturevalue("db_url"))
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
