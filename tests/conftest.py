"""Every test is isolated: its own ledger file, no AWS credentials or endpoint from the machine."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli, isolate

# The throwaway PostgreSQL server: postgres_cluster, postgres_url, blank_postgres_url.
pytest_plugins = ["tests.postgres"]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--ledger-url",
        default=None,
        help="run tests/ledger against this SQLAlchemy URL (a scratch database: each test "
        "empties it) instead of a fresh SQLite file per test",
    )


@pytest.fixture(autouse=True)
def isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    return isolate(tmp_path, monkeypatch)


@pytest.fixture(scope="session")
def migrated_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ledger at head, built once: copying it is much cheaper than migrating per test
    (test_migrations.py covers the migrations themselves)."""
    from campaign.ledger.engine import make_engine, migrate

    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    migrate(make_engine(f"sqlite:///{path}"))
    return path


@pytest.fixture
def start_from_migrated_ledger(isolated_env: Path, migrated_ledger: Path) -> None:
    shutil.copyfile(migrated_ledger, isolated_env)


@pytest.fixture
def db_url(isolated_env: Path) -> str:
    return f"sqlite:///{isolated_env}"


@pytest.fixture
def run() -> Cli:
    return Cli()


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[Any]:
    from campaign.simulator.server import Simulator, SimulatorConfig

    sim = Simulator(SimulatorConfig(mps=1000, log_path=tmp_path / "sim.jsonl", seed=7)).start()
    try:
        yield sim
    finally:
        sim.stop()
