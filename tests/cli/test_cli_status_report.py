"""`campaign status`, `campaign list` and `campaign report`: what the ledger holds, as
docs/contract.md spells it."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest

from campaign.domain import RecipientState
from tests.helpers import Cli, write_csv

ORIGIN = "+12065550100"
# docs/contract.md: the recipient states, exactly as `status --json` spells them.
SPEC_STATES = (
    "pending",
    "sending",
    "sent",
    "failed",
    "opted_out",
    "suppressed",
    "expired",
    "unknown",
    "invalid",
    "duplicate",
)
# docs/contract.md: the report's columns, in this spelling.
SPEC_REPORT_COLUMNS = [
    "row",
    "raw_phone",
    "phone",
    "country",
    "state",
    "reason",
    "parts",
    "encoding",
    "message_id",
    "attempts",
]


# Each test runs on SQLite (a copy of a ledger migrated once, see conftest) and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("sqlite_or_postgres_url")


# Row 2's note holds a line break and row 3's a delimiter; a blank line follows row 3. Row
# numbers count data rows, so row 4 is the fourth data row whatever the line count.
RECIPIENTS = (
    "first_name,phone,note\n"
    "Ava,(206) 555-0100,\n"
    'Liam,+1 206 555 0101,"two\nlines"\n'
    'Zoë,206.555.0102,"a, b"\n'
    "\n"
    "Noah,not a number,\n"
    "Mia,+1 (206) 555-0100,same as Ava\n"
    ",+12065550103,no name\n"
)


@pytest.fixture
def imported(run: Cli, tmp_path: Path) -> Path:
    run("create", "spring", "-o", ORIGIN, "-m", "Hi {first_name}, 20% off this weekend")
    path = write_csv(tmp_path / "recipients.csv", RECIPIENTS)
    run("import", "spring", str(path), "--default-region", "US")
    return path


def test_status_json_has_every_state_with_zeros(run: Cli) -> None:
    run("create", "spring", "-o", ORIGIN, "-m", "Hi")
    status = run.json("status", "spring", "--json")
    assert status["campaign"] == "spring"
    assert list(status["counts"]) == list(SPEC_STATES)
    assert set(SPEC_STATES) == {s.value for s in RecipientState}
    assert all(status["counts"][s] == 0 for s in SPEC_STATES)
    assert status["recipients"] == 0
    assert status["sender"] is None


def test_status_json_after_an_import(run: Cli, imported: Path) -> None:
    status = run.json("status", "spring", "--json")
    assert status["counts"] == {
        "pending": 3,
        "sending": 0,
        "sent": 0,
        "failed": 0,
        "opted_out": 0,
        "suppressed": 0,
        "expired": 0,
        "unknown": 0,
        "invalid": 2,
        "duplicate": 1,
    }
    assert status["recipients"] == 6
    assert status["imports"] == 1
    # Ava and Liam: one part each; Zoë's ë makes hers UCS-2, still one part.
    assert (status["parts_sent"], status["parts_pending"]) == (0, 3)


def test_status_text(run: Cli, imported: Path) -> None:
    out = run("status", "spring").stdout
    assert "Campaign spring" in out
    assert "pending" in out and "invalid" in out and "duplicate" in out
    assert "total" in out and "6" in out
    assert "Parts sent: 0; parts to send: 3" in out


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["status", "nope"], id="status"),
        pytest.param(["status", "nope", "--json"], id="status --json"),
        pytest.param(["report", "nope"], id="report"),
    ],
)
def test_unknown_campaign_is_one_line(run: Cli, args: list[str]) -> None:
    result = run(*args, code=1)
    assert result.stderr.strip() == "Error: no campaign named 'nope' (see `campaign list`)"
    assert result.stdout == ""


def test_list_json(run: Cli, imported: Path) -> None:
    assert [c["campaign"] for c in run.json("list", "--json")] == ["spring"]
    run("create", "autumn", "-o", "CAMPAIGN", "-m", "Hi", "--message-type", "TRANSACTIONAL")
    spring, autumn = run.json("list", "--json")
    assert spring["campaign"] == "spring"
    assert spring["recipients"] == 6
    assert list(spring["counts"]) == list(SPEC_STATES)
    assert (spring["counts"]["pending"], spring["counts"]["invalid"]) == (3, 2)
    assert autumn == {
        "campaign": "autumn",
        "origination_identity": "CAMPAIGN",
        "message_type": "TRANSACTIONAL",
        "recipients": 0,
        "counts": dict.fromkeys(SPEC_STATES, 0),
        "budget": None,
        "created_at": autumn["created_at"],
    }
    assert autumn["created_at"]


def test_list_keeps_its_columns_in_line_with_long_names_and_budgets(run: Cli) -> None:
    long_name = "a-very-long-campaign-name-for-the-spring-sale-2027"
    run("create", "short", "-o", ORIGIN, "-m", "Hi")
    run("create", long_name, "-o", ORIGIN, "-m", "Hi", "--budget", "123456.789")
    header, *lines = run("list").stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["short", long_name]
    assert lines[1].split()[-3] == "$123456.789"
    # Every column ends where its header ends (right-aligned), the name column starts each line,
    # and the creation time starts where its header does.
    for column in ("recipients", "pending", "sent", "failed", "budget"):
        end = header.index(column) + len(column)
        assert all(line[end - 1] != " " and line[end] == " " for line in lines), column
    created = header.index("created")
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d", line[created:]) for line in lines)


def test_list_when_empty(run: Cli) -> None:
    assert run.json("list", "--json") == []
    result = run("list")
    assert result.stdout == ""
    assert "No campaigns yet" in result.stderr


def test_list_text(run: Cli, imported: Path) -> None:
    lines = run("list").stdout.splitlines()
    assert lines[0].split()[:5] == ["name", "recipients", "pending", "sent", "failed"]
    assert lines[1].split()[:5] == ["spring", "6", "3", "0", "0"]


def test_report_columns_and_rows(run: Cli, imported: Path) -> None:
    text = run("report", "spring").stdout
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames is not None
    assert reader.fieldnames[: len(SPEC_REPORT_COLUMNS)] == SPEC_REPORT_COLUMNS
    rows = list(reader)
    table = [
        (r["row"], r["raw_phone"], r["phone"], r["country"], r["state"], r["parts"], r["encoding"])
        for r in rows
    ]
    assert table == [
        ("1", "(206) 555-0100", "+12065550100", "US", "pending", "1", "GSM-7"),
        ("2", "+1 206 555 0101", "+12065550101", "US", "pending", "1", "GSM-7"),
        ("3", "206.555.0102", "+12065550102", "US", "pending", "1", "UCS-2"),
        # data row 4 is the blank line: not a recipient, but it keeps its number
        ("5", "not a number", "", "", "invalid", "", ""),
        ("6", "+1 (206) 555-0100", "+12065550100", "US", "duplicate", "1", "GSM-7"),
        ("7", "+12065550103", "", "US", "invalid", "", ""),
    ]
    assert rows[3]["reason"].startswith("unparseable")
    assert rows[4]["reason"] == "same number as an earlier row of this campaign"
    assert rows[5]["reason"] == "empty merge field {first_name} and no fallback"
    assert all(r["reason"] == "" for r in rows[:3])
    assert all((r["message_id"], r["attempts"]) == ("", "0") for r in rows)


def test_row_numbers_count_data_rows_not_lines(run: Cli, tmp_path: Path) -> None:
    # Lines 2-4 of the file are one data row: its quoted note spans three lines.
    path = write_csv(
        tmp_path / "r.csv",
        'phone,note\n+12065550100,"one\ntwo\nthree"\n+12065550101,x\n+12065550102,y\n',
    )
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    run("import", "c", str(path))
    rows = list(csv.DictReader(io.StringIO(run("report", "c").stdout)))
    assert [(r["row"], r["phone"]) for r in rows] == [
        ("1", "+12065550100"),
        ("2", "+12065550101"),
        ("3", "+12065550102"),
    ]


def test_report_to_a_file(run: Cli, imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "report.csv"
    out.parent.mkdir()
    result = run("report", "spring", "--output", str(out))
    assert result.stdout == ""
    assert f"Wrote 6 rows to {out}" in result.stderr
    assert out.read_text(encoding="utf-8") == run("report", "spring").stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["report.csv"]  # no .part left
    # "-" is stdout, like the default
    assert run("report", "spring", "-o", "-").stdout == out.read_text(encoding="utf-8")


def test_report_to_a_missing_folder_is_one_line(run: Cli, imported: Path, tmp_path: Path) -> None:
    out = tmp_path / "missing" / "report.csv"
    result = run("report", "spring", "--output", str(out), code=1)
    assert result.stderr.strip() == f"Error: cannot write {out}: No such file or directory"
    assert not out.parent.exists()


def test_report_of_a_campaign_without_recipients(run: Cli) -> None:
    run("create", "empty", "-o", ORIGIN, "-m", "Hi")
    lines = run("report", "empty").stdout.splitlines()
    assert len(lines) == 1
    assert lines[0].split(",")[: len(SPEC_REPORT_COLUMNS)] == SPEC_REPORT_COLUMNS


def test_report_spans_files_in_import_order(run: Cli, imported: Path, tmp_path: Path) -> None:
    more = write_csv(tmp_path / "more.csv", "first_name,phone\nEli,+12065550104\nAva,2065550100\n")
    run("import", "spring", str(more), "--default-region", "US")
    rows = list(csv.DictReader(io.StringIO(run("report", "spring").stdout)))
    assert len(rows) == 8
    assert [(r["file"], r["row"], r["state"]) for r in rows[-2:]] == [
        (str(more), "1", "pending"),
        (str(more), "2", "duplicate"),
    ]
    assert {r["file"] for r in rows[:-2]} == {str(imported)}


def test_report_into_a_closed_pipe_is_quiet(run: Cli, tmp_path: Path) -> None:
    """`campaign report x | head`: no traceback, no "Error: Broken pipe"."""
    from tests.helpers import campaign_process

    rows = "\n".join(f"Sam{i},+1206555{i:04d}" for i in range(3000))
    run("create", "big", "-o", "+12065550100", "-m", "Hi {first_name}")
    run("import", "big", str(write_csv(tmp_path / "big.csv", f"first_name,phone\n{rows}\n")))
    proc = campaign_process("report", "big")
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline().startswith("row,raw_phone,phone")
    proc.stdout.close()  # like `head -1` exiting
    stderr = proc.stderr.read()
    proc.wait(timeout=30)
    assert "Error" not in stderr and "Traceback" not in stderr
