"""The real campaign of real_campaign.py, built once per session on SQLite: the report's
end-to-end tests (the page's figures, the page in a browser) each restore their own copy instead
of sending it again."""

from __future__ import annotations

import pytest

from tests.helpers import Cli, isolate
from tests.reports.real_campaign import Snapshot, build_snapshot


@pytest.fixture(scope="session")
def sqlite_campaign(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    folder = tmp_path_factory.mktemp("real-campaign")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(folder, monkeypatch)  # the isolation every test has, for the session's build
        return build_snapshot(Cli(), folder)
