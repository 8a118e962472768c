"""The round-2 options at their edges, as an outside tester found them: values a user can type
that must end in one `Error:` line with nothing stored, and summaries that must stay true.

Nothing here depends on the time of day: windows that must be closed are chosen from the clock
(tests/cli/test_cli_windows.py does the same), and PROMOTIONAL sends pass --no-window."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Cli

ORIGIN = "+12065550100"


def error_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


@pytest.mark.parametrize(
    "deadline",
    [
        "9999-12-31T23:59:59-05:00",  # year 10000 in UTC: an OverflowError before
        "0001-01-01T00:00+01:00",  # year 0 in UTC
        "0001-01-01T12:00Z",  # stored, then `send` overflowed computing the expiry margin
    ],
)
def test_a_deadline_out_of_range_is_one_line_and_changes_nothing(run: Cli, deadline: str) -> None:
    line = error_line(run("create", "c", "-o", ORIGIN, "-m", "Hi", "--deadline", deadline, code=1))
    assert f"--deadline {deadline!r} is out of range" in line
    assert run.json("list", "--json") == []
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--deadline", "2030-01-01T00:00Z")
    line = error_line(run("edit", "c", "--deadline", deadline, code=1))
    assert "is out of range" in line
    assert run.json("status", "c", "--json")["deadline"].startswith("2030-01-01")
