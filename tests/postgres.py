"""A throwaway PostgreSQL server for the tests (a pytest plugin, registered in conftest.py).

One cluster per test session, started from the machine's PostgreSQL binaries on a free port: `initdb
--no-sync` and `pg_ctl start` take about a second, and durability is switched off (-F,
synchronous_commit=off) because the cluster is deleted afterwards. One database, `base`, is migrated
to head once; each test gets its own copy (`CREATE DATABASE t_N TEMPLATE base`, a file copy).

Fixtures:
- `postgres_cluster` (session): the running `PostgresCluster` (`.url(name)`, `.create_database()`).
- `postgres_url` (function): the URL of a fresh database at the newest schema, dropped afterwards.
- `blank_postgres_url` (function): the URL of a fresh empty database (for the migrations' tests).
- `sqlite_or_postgres_url` / `blank_sqlite_or_postgres_url`: the same, once on each dialect
  (test ids `[sqlite]` and `[postgresql]`).

Without PostgreSQL binaries the tests that need them are not run, and one line at the end of the
session says so; with the environment variable CI set (.ci/run sets it) they fail instead: CI must
never skip them silently.
"""

from __future__ import annotations

import contextlib
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

SUPERUSER = "postgres"
ROOT_PREFIX = "campaign-pg-"
OWNER_FILE = "owner.pid"  # the pytest process that owns a cluster
TEMPLATE_DATABASE = "base"
NOT_FOUND = (
    "no initdb/pg_ctl on PATH or under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
)


def find_binaries() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then Debian's versioned folders
    (newest version first), which are not on PATH."""
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    for folder in sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: [int(x) for x in Path(p).parent.name.split(".") if x.isdigit()],
        reverse=True,
    ):
        if (Path(folder) / "initdb").exists() and (Path(folder) / "pg_ctl").exists():
            return Path(folder)
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running throwaway cluster; trust authentication for the `postgres` superuser on
    127.0.0.1 only."""

    bin_dir: Path
    root: Path  # holds data/, the socket and the log; owned by the postgres user when root
    port: int = 0
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "postgres.log"

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        # initdb and pg_ctl refuse to run as root: run them as the postgres user then.
        prefix = ["runuser", "-u", SUPERUSER, "--"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [*prefix, *args], capture_output=True, text=True, check=False, timeout=120
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({done.returncode}): {done.stderr.strip()}\n{log}"
            )

    def start(self) -> None:
        self._run(
            str(self.bin_dir / "initdb"),
            "--no-sync",
            "--auth=trust",
            f"--username={SUPERUSER}",
            "--encoding=UTF8",
            "--locale=C",
            "-D",
            str(self.data),
        )
        for _ in range(5):  # another process may take the free port before the server binds it
            self.port = free_port()
            options = (
                f"-p {self.port} -c listen_addresses=127.0.0.1 -F -c synchronous_commit=off "
                f"-c unix_socket_directories={self.root} -c max_connections=200"
            )
            try:
                self._run(
                    str(self.bin_dir / "pg_ctl"),
                    "start",
                    "-w",
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log),
                    "-o",
                    options,
                )
                return
            except RuntimeError:
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                if "could not bind" not in log:
                    raise
        raise RuntimeError(f"PostgreSQL found no free port; see {self.log}")

    def stop(self) -> None:
        self._run(str(self.bin_dir / "pg_ctl"), "stop", "-m", "immediate", "-D", str(self.data))

    def execute(self, sql: str) -> None:
        """Run one statement as the superuser, outside a transaction (CREATE/DROP DATABASE)."""
        import psycopg

        with psycopg.connect(self.url("postgres", driver="postgresql"), autocommit=True) as conn:
            conn.execute(sql)  # test-owned names, not user input

    def create_database(self, template: str = "template0") -> str:
        """A new database copied from `template`; returns its name."""
        name = f"t_{next(self._names)}"
        self.execute(f'CREATE DATABASE {name} TEMPLATE "{template}"')
        return name

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _fail_or_skip(message: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"PostgreSQL tests must run in CI (CI is set), but: {message}", pytrace=False)
    pytest.skip(f"PostgreSQL tests skipped: {message}")


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[PostgresCluster]:
    bin_dir = find_binaries()
    if bin_dir is None:
        _fail_or_skip(NOT_FOUND)
    _remove_orphans(bin_dir)
    root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
    (root / OWNER_FILE).write_text(str(os.getpid()))
    if os.geteuid() == 0:
        shutil.chown(root, SUPERUSER, SUPERUSER)
    cluster = PostgresCluster(bin_dir, root)
    try:
        cluster.start()
        cluster.execute(f"CREATE DATABASE {TEMPLATE_DATABASE} TEMPLATE template0")
        _migrate_template(cluster)
        yield cluster
    finally:
        if cluster.port:
            with contextlib.suppress(RuntimeError):  # not running: nothing to stop
                cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def _remove_orphans(bin_dir: Path) -> None:
    """Stop and delete the clusters of test sessions that were killed before their cleanup ran
    (a killed pytest leaves its server running)."""
    for owner_file in Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*/{OWNER_FILE}"):
        try:
            os.kill(int(owner_file.read_text()), 0)
            continue  # its session is still running
        except ProcessLookupError:
            pass
        except (OSError, ValueError):
            continue
        orphan = PostgresCluster(bin_dir, owner_file.parent)
        with contextlib.suppress(RuntimeError):
            orphan.stop()
        shutil.rmtree(orphan.root, ignore_errors=True)


def _migrate_template(cluster: PostgresCluster) -> None:
    from campaign.ledger.engine import make_engine, migrate

    engine = make_engine(cluster.url(TEMPLATE_DATABASE))
    try:
        migrate(engine)
    finally:
        engine.dispose()  # a template database must have no connections when it is copied


@pytest.fixture
def postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh database at the newest schema, for this test only."""
    name = postgres_cluster.create_database(template=TEMPLATE_DATABASE)
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.fixture
def blank_postgres_url(postgres_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh empty database (no tables at all), for this test only."""
    name = postgres_cluster.create_database()
    yield postgres_cluster.url(name)
    postgres_cluster.drop_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def sqlite_or_postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh ledger at the newest schema, on each dialect in turn."""
    if request.param == "sqlite":
        request.getfixturevalue("start_from_migrated_ledger")
        return str(request.getfixturevalue("db_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture(params=["sqlite", "postgresql"])
def blank_sqlite_or_postgres_url(request: pytest.FixtureRequest) -> str:
    """A fresh empty database, on each dialect in turn."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("db_url"))
    return str(request.getfixturevalue("blank_postgres_url"))


_DIALECT_FIXTURES = ("sqlite_or_postgres_url", "blank_sqlite_or_postgres_url")


def _needs_postgres(item: pytest.Item) -> bool:
    if "postgres_cluster" in getattr(item, "fixturenames", ()):
        return True
    params = getattr(getattr(item, "callspec", None), "params", {})
    return any(params.get(name) == "postgresql" for name in _DIALECT_FIXTURES)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Without binaries and outside CI: leave these tests out, said once at the end (a skip per
    # test would print a line each). In CI the fixture fails every one of them instead.
    if find_binaries() is not None or os.environ.get("CI"):
        return
    left_out = [item for item in items if _needs_postgres(item)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not _needs_postgres(item)]
        config.stash[_LEFT_OUT] = len(left_out)


_LEFT_OUT = pytest.StashKey[int]()


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    left_out = config.stash.get(_LEFT_OUT, 0)
    if left_out:
        terminalreporter.write_line(
            f"{left_out} PostgreSQL tests skipped: {NOT_FOUND}", yellow=True
        )


def pytest_report_header() -> str | None:
    bin_dir = find_binaries()
    return f"postgresql: {bin_dir}" if bin_dir else None
