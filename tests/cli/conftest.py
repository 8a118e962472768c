"""The CLI tests' ledger: a SQLite file by default, or each dialect in turn.

A test module (or test) that asks for `sqlite_or_postgres_url` (e.g. `pytestmark =
pytest.mark.usefixtures("sqlite_or_postgres_url")`) runs twice, `[sqlite]` and `[postgresql]`: on
the PostgreSQL run every `campaign` command of the test talks to a fresh PostgreSQL database of
the throwaway server (tests/postgres.py), through `CAMPAIGN_DB`, and `db_url` is that database's
URL, so the test's own reads of the ledger go to the same place.
"""

from __future__ import annotations

from pathlib import Path

import pytest


def _on_postgresql(request: pytest.FixtureRequest) -> bool:
    callspec = getattr(request.node, "callspec", None)
    return callspec is not None and callspec.params.get("sqlite_or_postgres_url") == "postgresql"


@pytest.fixture
def db_url(request: pytest.FixtureRequest, isolated_env: Path) -> str:
    """The ledger the test's commands use (overrides tests/conftest.py's for the dialect runs)."""
    if _on_postgresql(request):
        return str(request.getfixturevalue("postgres_url"))
    return f"sqlite:///{isolated_env}"


@pytest.fixture(autouse=True)
def _ledger_of_the_commands(
    request: pytest.FixtureRequest, isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if _on_postgresql(request):
        monkeypatch.setenv("CAMPAIGN_DB", str(request.getfixturevalue("db_url")))
