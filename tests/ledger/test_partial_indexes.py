"""The partial indexes' PostgreSQL condition is given when a PostgreSQL ledger is opened, so that a
SQLite ledger never loads SQLAlchemy's PostgreSQL dialect (campaign.ledger.tables)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from campaign.ledger import tables
from campaign.ledger.engine import make_engine, open_ledger_engine

# Nothing listens there: make_engine does not connect.
NOWHERE = "postgresql+psycopg://nobody@127.0.0.1:1/none"


def test_a_postgresql_ledger_gives_every_partial_index_its_condition() -> None:
    make_engine(NOWHERE)
    conditions = {
        i.name: (i.dialect_options["sqlite"]["where"], i.dialect_options["postgresql"]["where"])
        for i in tables.recipients.indexes
        if i.dialect_options["sqlite"]["where"] is not None
    }
    assert len(conditions) == 4
    assert all(pg is sqlite for sqlite, pg in conditions.values()), conditions


def test_a_sqlite_ledger_does_not_load_the_postgresql_dialect(tmp_path: Path) -> None:
    # Created (and migrated: Alembic loads every dialect) here; then opened as every command does.
    open_ledger_engine(f"sqlite:///{tmp_path}/l.db").dispose()
    script = (
        "import json, sys\n"
        "from campaign.ledger import Ledger\n"
        "from campaign.ledger.engine import open_ledger_engine\n"
        f"Ledger(open_ledger_engine('sqlite:///{tmp_path}/l.db')).list_campaigns()\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(done.stdout.splitlines()[-1]))
    assert "sqlalchemy.dialects.sqlite" in loaded
    assert "sqlalchemy.dialects.postgresql" not in loaded
