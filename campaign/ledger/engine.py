"""The ledger's engine and its migrations.

The tool upgrades the database itself on first use (Alembic, never `create_all`), so a ledger made by an
older version of the tool is brought forward, not rebuilt.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Float,
    create_engine,
    event,
    literal,
    text,
)
from sqlalchemy.engine import URL, ExceptionContext, make_url
from sqlalchemy.exc import ArgumentError, OperationalError, ProgrammingError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

import campaign.migrations as _migrations_package
from campaign.errors import UserError, mask_url_secrets
from campaign.ledger.tables import SCHEMA_REVISION, with_postgresql_conditions

if TYPE_CHECKING:
    from alembic.config import Config as AlembicConfig

MIGRATIONS_DIR = Path(_migrations_package.__file__).resolve().parent
SQLITE_BUSY_TIMEOUT_MS = 30_000
_INSUFFICIENT_PRIVILEGE = "42501"  # PostgreSQL's SQLSTATE for a missing privilege
# The PostgreSQL advisory lock every migration of a ledger holds (a bigint: "campaign" in ASCII).
MIGRATION_LOCK = 0x63616D706169676E


class DatabaseError(UserError):
    """The ledger cannot be opened or upgraded; the message is one line for the user."""


class LedgerStorageError(DatabaseError):
    """The ledger's storage refused a read or a write: the file is read-only, the disk is full,
    the file is damaged. One line naming the file and what is wrong, never the SQL or its
    parameters (they hold phone numbers and message text)."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # WAL: `status` can read while a sender writes. NORMAL synchronous is durable against a killed
    # process (the WAL lives in the OS page cache); only a power cut can lose the last commits.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# A bare postgresql:// means psycopg2 on SQLAlchemy 2.0 (psycopg 3 only from 2.1), and postgres:// is
# no dialect at all (Heroku-style URLs): both mean the psycopg 3 driver this tool depends on.
_POSTGRESQL_ALIASES = ("postgresql", "postgres")
POSTGRESQL_DRIVER = "postgresql+psycopg"
# An address that drops packets would otherwise hang the first command for minutes.
POSTGRESQL_CONNECT_TIMEOUT_S = 10


def normalize_url(url: str) -> URL:
    """`url` parsed, with a bare PostgreSQL scheme pointed at psycopg 3."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:  # ValueError: a port that is not a number
        raise DatabaseError(f"invalid database URL {mask_url_secrets(url)!r}: {exc}") from None
    if parsed.drivername in _POSTGRESQL_ALIASES:
        parsed = parsed.set(drivername=POSTGRESQL_DRIVER)
    return parsed


def make_engine(url: str) -> Engine:
    """An engine for the ledger at `url`, with SQLite's pragmas or PostgreSQL's session settings
    on every connection."""
    parsed = normalize_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        # The URL's own ?connect_timeout= / ?application_name= win over these defaults.
        defaults = {"connect_timeout": POSTGRESQL_CONNECT_TIMEOUT_S, "application_name": "campaign"}
        connect_args = {k: v for k, v in defaults.items() if k not in parsed.query}
    try:
        engine = create_engine(parsed, pool_pre_ping=True, connect_args=connect_args)
    except ImportError as exc:
        raise DatabaseError(
            f"cannot use database URL {parsed!r}: its driver {exc.name or exc} is not installed"
            + (" (pip install 'psycopg[binary]')" if exc.name == "psycopg" else "")
        ) from None
    except Exception as exc:  # unknown dialect, bad options: one line for the user
        raise DatabaseError(f"cannot use database URL {parsed!r}: {_one_line(exc)}") from None
    if engine.dialect.name == "postgresql":
        with_postgresql_conditions()
        event.listen(engine, "connect", _postgresql_session)
    event.listen(engine, "handle_error", _storage_errors)
    return engine


def _sqlite_engine(parsed: URL) -> Engine:
    database = parsed.database
    if parsed.host:  # sqlite://campaign.db: two slashes
        raise DatabaseError(
            f"invalid SQLite URL {parsed!r}: a file is sqlite:///relative/path.db (three "
            "slashes) or sqlite:////absolute/path.db (four)"
        )
    memory = parsed.query.get("mode") == "memory" or database in (None, "", ":memory:")
    if memory or (database or "").startswith("file::memory:"):
        raise DatabaseError(
            "the --db URL names an in-memory SQLite database: the ledger would be lost when "
            "the command ends; give a file, e.g. sqlite:///campaign.db"
        )
    if database and database.startswith("~"):  # sqlite:///~/ledger.db: the home folder, as typed
        database = str(Path(database).expanduser())
        parsed = parsed.set(database=database)
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
    event.listen(engine, "handle_error", _storage_errors)
    return engine


def _postgresql_session(dbapi_connection: Any, _record: Any) -> None:
    # Timestamps come back in the session's time zone; the tool labels the times it shows UTC.
    # A SET, not the `options` startup parameter, which some poolers (PgBouncer) refuse.
    with dbapi_connection.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        # psycopg prepares a statement run 5 times, and PostgreSQL may then reuse one generic
        # plan for any parameters: planned while a table was empty, or for `phone IN ($1..$500)`
        # (a list it cannot hash), it scans the whole table per call. A 100,000-number
        # `suppress add` took 215 s that way, 7 s with a plan per call. Planning a statement of
        # this tool costs well under a millisecond.
        cursor.execute("SET plan_cache_mode = force_custom_plan")
    dbapi_connection.commit()


# -- storage failures: one line for the user instead of SQLAlchemy's text with the SQL in it ---------
# Only these are turned into LedgerStorageError; every other driver error (a locked database, a
# missing table, a lost connection) keeps its type, as the code that catches them expects.
_SQLITE_READONLY = 8
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26
_SQLITE_IOERR, _SQLITE_FULL, _SQLITE_CANTOPEN = 10, 13, 14
_ROLLED_BACK = "nothing was lost: the failed change was rolled back"
_UNCHANGED = "this command changed nothing"
# PostgreSQL's SQLSTATEs for the same situations: what is wrong, and what became of the change.
_POSTGRESQL_STORAGE: dict[str, tuple[str, str]] = {
    "53100": ("the database server's disk is full", _ROLLED_BACK),
    "25006": ("it is read-only (a standby, or default_transaction_read_only)", _ROLLED_BACK),
    "58030": ("the database server had an I/O error", _ROLLED_BACK),
    "XX001": ("it is damaged (data corrupted)", _UNCHANGED),
    "XX002": ("it is damaged (an index is corrupted)", _UNCHANGED),
}


def _storage_errors(context: ExceptionContext) -> None:
    """`handle_error` listener: a storage failure leaves as LedgerStorageError."""
    engine = context.engine
    if engine is None:
        return
    problem = storage_problem(engine.url, context.original_exception)
    if problem is not None:
        raise LedgerStorageError(problem) from None


def storage_problem(url: URL, exc: BaseException) -> str | None:
    """What is wrong with the ledger's storage, as one line naming it; None when `exc` is not a
    storage failure."""
    sqlstate = getattr(exc, "sqlstate", None)
    if isinstance(sqlstate, str) and sqlstate in _POSTGRESQL_STORAGE:
        what, outcome = _POSTGRESQL_STORAGE[sqlstate]
        return f"cannot write the ledger {url!r}: {what}; {outcome}"
    code = getattr(exc, "sqlite_errorcode", None)
    if not isinstance(code, int) or url.get_backend_name() != "sqlite":
        return None
    path = sqlite_path(url)
    detail = " ".join(str(exc).split())
    primary = code & 0xFF  # extended codes (SQLITE_IOERR_WRITE, ...) keep the primary code low
    if primary == _SQLITE_READONLY:
        return (
            f"cannot write the ledger {path}: it is read-only{_why_read_only(url, path)} "
            f"({detail}); "
            f"{_ROLLED_BACK}"
        )
    if primary == _SQLITE_FULL:
        return f"cannot write the ledger {path}: the disk is full ({detail}); {_ROLLED_BACK}"
    if primary == _SQLITE_IOERR:
        return (
            f"cannot write the ledger {path}: the disk refused the write ({detail}: full, "
            f"failing, or over a file size limit); {_ROLLED_BACK}"
        )
    if primary in (_SQLITE_CORRUPT, _SQLITE_NOTADB):
        return (
            f"the ledger {path} is damaged or is not a campaign ledger ({detail}); {_UNCHANGED}: "
            "restore it from a backup, or pass another --db"
        )
    if primary == _SQLITE_CANTOPEN:
        return f"cannot open the ledger {path}{_why_cannot_open(path)} ({detail}); {_UNCHANGED}"
    return None


def sqlite_path(url: URL) -> str:
    """The file a SQLite URL names (`sqlite:///file:PATH?mode=ro&uri=true` included)."""
    database = url.database or ":memory:"
    return database.removeprefix("file:") if url.query.get("uri") else database


def _why_read_only(url: URL, path: str) -> str:
    if url.query.get("mode") == "ro" or url.query.get("immutable") == "1":
        return " (the --db URL opens it read-only)"
    if _on_read_only_filesystem(path):
        return " (on a read-only file system)"
    if os.path.exists(path) and not os.access(path, os.W_OK):
        return " (its permissions do not let you write it)"
    return ""


def _why_cannot_open(path: str) -> str:
    """SQLite needs to create `-wal` and `-shm` files beside the ledger, even to read it."""
    if os.path.isdir(path):
        return ": it is a folder"
    if _on_read_only_filesystem(path):
        return (
            ": it is on a read-only file system, where SQLite cannot create its -wal and -shm "
            "files (copy it somewhere writable)"
        )
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        return f": its folder {folder} does not exist"
    if not os.access(folder, os.W_OK | os.X_OK):
        return (
            f": its folder {folder} is not writable (SQLite creates its -wal and -shm files there)"
        )
    return ""


def _on_read_only_filesystem(path: str) -> bool:
    try:
        return bool(os.statvfs(os.path.dirname(os.path.abspath(path))).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _one_line(exc: BaseException) -> str:
    """A driver's message on one line. psycopg's spans several, and a server error quotes the
    statement (`LINE 2: CREATE TABLE ...`): only its primary message is kept then."""
    orig = getattr(exc, "orig", None) or exc
    primary = getattr(getattr(orig, "diag", None), "message_primary", None)
    return " ".join(str(primary or orig).split())


def _unreachable(engine: Engine, exc: BaseException) -> DatabaseError:
    return DatabaseError(f"cannot open the ledger {engine.url!r}: {_one_line(exc)}")


# Alembic is imported only when a migration runs: every command would otherwise pay for it.


def alembic_config(engine: Engine | None = None) -> AlembicConfig:
    from alembic.config import Config as AlembicConfig

    config = AlembicConfig()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if engine is not None:
        # ConfigParser reads `%` as interpolation: a URL-escaped password (p%40ss) would fail.
        url = engine.url.render_as_string(hide_password=False)
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def head_revision() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with _connect(engine) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the ledger to `revision` (the newest by default)."""
    from alembic import command
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    config = alembic_config(engine)
    with _connect(engine) as connection:
        try:
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    # N copies of a task started at once on a new database: one migrates, the
                    # others wait here, then find the schema current (Alembic reads the revision
                    # after the lock) instead of failing on tables the first one is creating.
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK}
                    )
                config.attributes["connection"] = connection
                _check_stored_revision(config, connection, engine)
                command.upgrade(config, revision)
        except CommandError as exc:  # `db upgrade --revision R` naming no revision
            script = ScriptDirectory.from_config(config)
            known = ", ".join(reversed([s.revision for s in script.walk_revisions()]))
            raise DatabaseError(
                f"cannot upgrade the ledger to revision {revision!r}: {exc} (the revisions: "
                f"{known}; head is the newest); {_UNCHANGED}"
            ) from None
        except (OperationalError, ProgrammingError) as exc:  # e.g. no CREATE right on the schema
            hint = ""
            if getattr(exc.orig, "sqlstate", None) == _INSUFFICIENT_PRIVILEGE:
                hint = (
                    " (creating or upgrading the schema needs a role that may create tables "
                    "there, e.g. the database's owner: run `campaign --db OWNER_URL db upgrade` "
                    "once)"
                )
            raise DatabaseError(
                f"cannot upgrade the ledger {engine.url!r}: {_one_line(exc)}{hint}"
            ) from None


def _check_stored_revision(config: AlembicConfig, connection: Connection, engine: Engine) -> None:
    """One line, before Alembic's own error, for a ledger written by a newer version of the tool
    (a revision this one does not have)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    script = ScriptDirectory.from_config(config)
    stored = MigrationContext.configure(connection).get_current_revision()
    newest = script.get_current_head()
    if stored is None and connection.dialect.name == "sqlite":
        # Another program's SQLite file (`--db sqlite:///app.sqlite`): never add tables to it.
        others = (
            connection.exec_driver_sql(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name != 'alembic_version' "
                "ORDER BY name"
            )
            .scalars()
            .all()
        )
        if others:
            shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
            raise DatabaseError(
                f"{sqlite_path(engine.url)} is a SQLite database but not a campaign ledger (it "
                f"has other tables: {shown}); {_UNCHANGED}: pass another --db"
            )
    try:
        if stored is not None:
            script.get_revision(stored)
    except CommandError:
        raise DatabaseError(
            f"the ledger {engine.url!r} has schema revision {stored}, which this version of "
            f"campaign does not know (its newest is {newest}): a newer campaign wrote it; "
            f"upgrade campaign to use it; {_UNCHANGED}"
        ) from None


def _connect(engine: Engine) -> Connection:
    """A connection, or one line for the user when the server cannot be reached."""
    try:
        return engine.connect()
    except OperationalError as exc:
        raise _unreachable(engine, exc) from None


def _stored_revision(engine: Engine) -> str | None:
    """The ledger's schema revision, read without loading Alembic (None for a blank database)."""
    with _connect(engine) as connection:
        try:
            return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        except OperationalError as exc:
            if "no such table" in str(exc.orig):  # SQLite
                return None
            raise _unreachable(engine, exc) from None
        except ProgrammingError:  # PostgreSQL: UndefinedTable
            return None


def open_ledger_engine(url: str) -> Engine:
    """The engine for `url`, upgraded to the newest schema if it is behind."""
    engine = make_engine(url)
    if _stored_revision(engine) != SCHEMA_REVISION:
        migrate(engine)
    return engine


# -- the database's clock and transactions, for the modules that share one database ---------------
# Several senders on several hosts compare times (heartbeats, the rate schedule) only on the
# database's clock, so no host's clock ever matters. On SQLite the database's clock is the host's.


class db_now(FunctionElement[datetime]):
    """The database's current time (minus `seconds_ago` seconds, a bound number), to the
    microsecond and read when the statement runs (PostgreSQL's now() is the transaction's start)."""

    type = DateTime(timezone=True)
    name = "db_now"
    inherit_cache = True

    def __init__(self, seconds_ago: float = 0.0) -> None:
        super().__init__(literal(float(seconds_ago), Float))


class db_epoch(FunctionElement[float]):
    """The database's current time in seconds since 1970 (a float), read when the statement runs."""

    type = Float()
    name = "db_epoch"
    inherit_cache = True


@compiles(db_now, "postgresql")
def _db_now_postgresql(element: db_now, compiler: Any, **kw: Any) -> str:
    return f"(clock_timestamp() - make_interval(secs => {compiler.process(element.clauses, **kw)}))"


@compiles(db_now, "sqlite")
def _db_now_sqlite(element: db_now, compiler: Any, **kw: Any) -> str:
    # In the text format SQLAlchemy stores SQLite datetimes in (microseconds; SQLite's clock has
    # milliseconds), so they compare as text with values written from Python.
    seconds = compiler.process(element.clauses, **kw)
    return f"strftime('%Y-%m-%d %H:%M:%f000', 'now', (-({seconds})) || ' seconds')"


@compiles(db_epoch, "postgresql")
def _db_epoch_postgresql(element: db_epoch, compiler: Any, **kw: Any) -> str:
    return "CAST(extract(epoch FROM clock_timestamp()) AS DOUBLE PRECISION)"


@compiles(db_epoch, "sqlite")
def _db_epoch_sqlite(element: db_epoch, compiler: Any, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@contextmanager
def transaction(bind: Engine | Connection) -> Iterator[Connection]:
    """One transaction on `bind`: a new one committed at the end (an Engine, or a Connection outside
    a transaction), or the caller's own when `bind` is a Connection inside one (the caller commits:
    several modules' statements can then share one commit)."""
    if isinstance(bind, Engine):
        with bind.begin() as connection:
            yield connection
    elif bind.in_transaction():
        yield bind
    else:
        with bind.begin():
            yield bind
