"""The far-off zones left out of numbers' country-wide lists are said, not silently applied:
`import` names them on stderr, `estimate` in its text and in `--json` (issue 11: "say which")."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")


def test_import_and_estimate_say_which_zones_were_dropped(run: Cli, tmp_path: Path) -> None:
    run("create", "c", "-o", "+12065550100", "-m", "Hi")
    path = write_csv(tmp_path / "r.csv", "phone\n+61412345678\n+61412345679\n+12125550101\n")
    imported = run("import", "c", str(path), "--allow-non-mobile")

    line = next(x for x in imported.stderr.splitlines() if "time zones:" in x)
    assert line.startswith("  time zones: for 2 recipients in AU, dropped ")
    assert "Indian/Cocos: the Cocos Islands (CC), another region on +61" in line
    assert "Australia/Lord_Howe" in line
    assert "America/New_York" not in imported.stderr  # nothing dropped for a US landline

    dropped = run.json("estimate", "c", "--json")["calendar"]["dropped_zones"]
    assert [(d["country"], d["recipients"]) for d in dropped] == [("AU", 2)]
    assert "Indian/Christmas" in dropped[0]["note"]
    assert "time zones: for 2 recipients in AU" in run("estimate", "c").stdout


def test_a_time_zone_column_drops_nothing(run: Cli, tmp_path: Path) -> None:
    run("create", "c", "-o", "+12065550100", "-m", "Hi")
    path = write_csv(tmp_path / "r.csv", "phone,tz\n+61412345678,Australia/Sydney\n")
    imported = run("import", "c", str(path), "--timezone-column", "tz", "--allow-non-mobile")
    assert "time zones:" not in imported.stderr
    assert run.json("estimate", "c", "--json")["calendar"]["dropped_zones"] == []
