"""The ledger's engine and its migrations.

The tool upgrades the database itself on first use (Alembic, never `create_all`), so a ledger made by an
older version of the tool is brought forward, not rebuilt.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError

import campaign.migrations as _migrations_package
from campaign.errors import UserError
from campaign.ledger.tables import SCHEMA_REVISION

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(_migrations_package.__file__).resolve().parent
SQLITE_BUSY_TIMEOUT_MS = 30_000


class DatabaseError(UserError):
    """The ledger cannot be opened or upgraded; the message is one line for the user."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: `status` can read while a sender writes. NORMAL synchronous is durable against a killed
    # process (the WAL lives in the OS page cache); only a power cut can lose the last commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for the ledger at `url`, with SQLite's pragmas set on every connection."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseError(f"invalid database URL {url!r}: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:" and not database.startswith("file:"):
            parent = Path(database).expanduser().resolve().parent
            if not parent.is_dir():
                raise DatabaseError(
                    f"cannot create the ledger {database}: folder {parent} does not exist"
                )
        # SQLAlchemy's default pool keeps connections open: closing the last connection to a WAL
        # database checkpoints it, which the sender would otherwise pay on every commit.
        engine = create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except Exception as exc:  # missing driver, bad options: one line for the user
        raise DatabaseError(f"cannot use database URL {parsed!r}: {exc}") from None


# Alembic is imported only when a migration runs: every command would otherwise pay for it.


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        config.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the ledger to `revision` (the newest by default)."""
    from alembic import command

    config = alembic_config(engine)
    try:
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except OperationalError as exc:
        raise DatabaseError(f"cannot open the ledger {engine.url!r}: {exc.orig}") from None


def _stored_revision(engine: Engine) -> str | None:
    """The ledger's schema revision, read without loading Alembic (None for a blank database)."""
    try:
        with engine.connect() as connection:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except OperationalError as exc:
        if "no such table" in str(exc.orig) or "does not exist" in str(exc.orig):
            return None
        raise DatabaseError(f"cannot open the ledger {engine.url!r}: {exc.orig}") from None
    except DBAPIError:  # e.g. PostgreSQL's UndefinedTable
        return None


def open_ledger_engine(url: str) -> Engine:
    """The engine for `url`, upgraded to the newest schema if it is behind."""
    engine = make_engine(url)
    if _stored_revision(engine) != SCHEMA_REVISION:
        migrate(engine)
    return engine
