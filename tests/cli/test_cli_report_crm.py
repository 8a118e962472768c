"""`campaign report` going back to the CRM: original columns, sent time and delivery, spreadsheet
row numbers, the Excel form, formula cells neutralised, and `-o` honouring what the path is."""

from __future__ import annotations

import csv
import io
import json
import os
import sqlite3
import stat
import threading
from pathlib import Path
from typing import Any

import pytest

from campaign.reports.csv_report import COLUMNS, write_report
from campaign.reports.output import open_report_file
from campaign.simulator.server import Simulator
from tests.events.conftest import Recipient, event
from tests.helpers import Cli, write_csv

ORIGIN = "+12065550100"

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")

# A HubSpot-like export: ids with leading zeros, formulas where a spreadsheet would run them.
EXPORT = (
    "crm_id,Email,First Name,Phone,Note\n"
    '00123,ava@example.com,Ava,+1 206 555 0100,"=HYPERLINK(""http://x"",""y"")"\n'
    '00124,@SUM(1+1),Liam,+1 206 555 0101,"two\nlines"\n'
    "\n"
    "00125,+cmd|' /C calc'!A0,Noah,=2+5,-2+3+cmd|' /C calc'!A0\n"
)


@pytest.fixture
def crm(run: Cli, tmp_path: Path) -> Path:
    path = write_csv(tmp_path / "=export.csv", EXPORT)
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}", "--message-type", "TRANSACTIONAL")
    # A relative name (the tests run in tmp_path): the report's `file` starts with "=".
    run("import", "c", path.name, "--map", "first_name=First Name", "--default-region", "US")
    return path


def read(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_include_columns_and_sheet_rows(run: Cli, crm: Path) -> None:
    rows = read(run("report", "c", "--include", "crm_id, email").stdout)
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS)
    assert list(rows[0])[len(COLUMNS) :] == ["crm_id", "Email"]
    # row: data rows (the blank line is data row 3); sheet_row: header = 1.
    assert [(r["row"], r["sheet_row"], r["crm_id"]) for r in rows] == [
        ("1", "2", "00123"),
        ("2", "3", "00124"),
        ("4", "5", "00125"),
    ]
    assert [r["Email"] for r in rows] == ["ava@example.com", "'@SUM(1+1)", "'+cmd|' /C calc'!A0"]


def test_include_all_renames_a_column_the_report_has(run: Cli, crm: Path) -> None:
    header = read(run("report", "c", "--include", "all").stdout)[0].keys()
    assert list(header)[len(COLUMNS) :] == [
        "crm_id",
        "Email",
        "First Name",
        "original:Phone",  # the report has its own `phone`
        "original:Note",
    ]


def test_include_an_unknown_column_is_one_line(run: Cli, crm: Path) -> None:
    result = run("report", "c", "--include", "crm_id,fax", code=1)
    assert result.stderr.startswith(
        "Error: --include 'fax': no import of this campaign has that column (columns: "
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_formula_cells_are_neutralised_but_phone_is_not(run: Cli, crm: Path) -> None:
    text = run("report", "c", "--include", "note").stdout
    rows = read(text)
    assert [r["phone"] for r in rows] == ["+12065550100", "+12065550101", ""]
    assert [r["raw_phone"] for r in rows] == ["+1 206 555 0100", "+1 206 555 0101", "'=2+5"]
    assert rows[0]["original:Note"] == '\'=HYPERLINK("http://x","y")'
    assert rows[2]["original:Note"] == "'-2+3+cmd|' /C calc'!A0"
    assert {r["file"] for r in rows} == {"'=export.csv"}
    # No cell anywhere starts with a formula character unless it is a plain signed number.
    for line in csv.reader(io.StringIO(text)):
        for cell in line:
            assert not cell.startswith(("=", "@", "\t", "\r")), cell
            if cell.startswith(("+", "-")):
                assert set(cell) <= set("+-0123456789 ()./"), cell


def test_excel_form_round_trip(run: Cli, crm: Path, tmp_path: Path) -> None:
    out = tmp_path / "for-excel.csv"
    run("report", "c", "--excel", "--include", "crm_id,Note", "-o", str(out))
    raw = out.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # UTF-8 with a byte order mark
    assert raw.count(b"\r\n") == 4  # CRLF (the line break inside a note is quoted)
    with out.open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    # Phones and ids as text formulas Excel shows as written: never 1.21E+10, never 123.
    assert [r["phone"] for r in rows] == ['="+12065550100"', '="+12065550101"', ""]
    assert [r["crm_id"] for r in rows] == ['="00123"', '="00124"', '="00125"']
    assert rows[2]["raw_phone"] == "'=2+5"
    assert rows[0]["original:Note"] == '\'=HYPERLINK("http://x","y")'
    assert rows[1]["original:Note"] == "two\nlines"
    assert rows[0]["row"] == "1" and rows[0]["sheet_row"] == "2"  # numbers stay numbers


def test_sent_at_and_delivery_after_a_send(
    run: Cli, crm: Path, simulator: Simulator, isolated_env: Path, tmp_path: Path
) -> None:
    run("--endpoint-url", simulator.url, "send", "c", "--yes")
    with sqlite3.connect(isolated_env) as conn:
        sent = conn.execute(
            "SELECT id, phone, message_id FROM recipients WHERE state = 'sent' ORDER BY id"
        ).fetchall()
    assert len(sent) == 2
    recipients = [Recipient(rid, phone, mid, "c") for rid, phone, mid in sent]
    events = tmp_path / "events.jsonl"
    events.write_text(
        json.dumps(event(recipients[0], "TEXT_DELIVERED"))
        + "\n"
        + json.dumps(event(recipients[1], "TEXT_CARRIER_UNREACHABLE"))
        + "\n"
    )
    run("events", "ingest", "--file", str(events))
    rows = read(run("report", "c").stdout)
    first, second, invalid = rows
    assert first["sent_at"].endswith("Z") and first["sent_at"][:2] == "20"
    assert (first["delivery"], first["charged"]) == ("delivered", "0.00847")
    assert second["delivery"] == "undelivered"
    assert second["delivery_reason"].startswith("TEXT_CARRIER_UNREACHABLE")
    assert (invalid["state"], invalid["sent_at"], invalid["delivery"]) == ("invalid", "", "")
    excel = read(run("report", "c", "--excel").stdout.removeprefix("\ufeff"))
    assert excel[0]["sent_at"] == first["sent_at"].replace("T", " ").removesuffix("Z")


# -- -o: what the path is --------------------------------------------------------------------------


def test_output_to_a_fifo_is_written_through(run: Cli, crm: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    run("report", "c", "-o", str(fifo))
    reader.join(timeout=30)
    assert stat.S_ISFIFO(fifo.stat().st_mode)  # still a FIFO
    assert got and got[0].startswith(b"row,raw_phone,phone")


@pytest.mark.skipif(not Path("/dev/full").exists() or os.geteuid() != 0, reason="root, /dev/full")
def test_output_to_dev_full_fails_and_leaves_the_device(run: Cli, crm: Path) -> None:
    result = run("report", "c", "-o", "/dev/full", code=1)
    assert result.stderr.strip() == "Error: cannot write /dev/full: No space left on device"
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_output_through_a_symlink_keeps_the_link(run: Cli, crm: Path, tmp_path: Path) -> None:
    target = tmp_path / "real.csv"
    target.write_text("old")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    run("report", "c", "-o", str(link))
    assert link.is_symlink()
    assert target.read_text().startswith("row,raw_phone")
    assert sorted(p.name for p in tmp_path.iterdir() if ".part" in p.name) == []


def test_output_to_a_directory_is_one_line(run: Cli, crm: Path, tmp_path: Path) -> None:
    result = run("report", "c", "-o", str(tmp_path), code=1)
    assert result.stderr.strip() == f"Error: cannot write {tmp_path}: it is a directory"


@pytest.mark.parametrize("form", ["csv", "html"])
def test_a_report_over_the_ledger_itself_is_refused(
    run: Cli, crm: Path, tmp_path: Path, isolated_env: Path, form: str
) -> None:
    """`report -o campaign.db` replaced the SQLite ledger with the CSV: every campaign lost."""
    before = isolated_env.read_bytes()
    link = tmp_path / "link.db"
    link.symlink_to(isolated_env)
    for target in (isolated_env, link, Path(f"{isolated_env}-wal")):
        if not target.exists():
            continue
        option = ["-o", str(target)] if form == "csv" else ["--html", str(target)]
        result = run("report", "c", *option, code=1)
        assert result.stderr.startswith(f"Error: {target} is the ledger's own file (")
        assert "write the report to another file" in result.stderr
    assert isolated_env.read_bytes()[:16] == b"SQLite format 3\x00"
    assert len(isolated_env.read_bytes()) == len(before)
    assert [c["campaign"] for c in run.json("list", "--json")] == ["c"]


def test_an_empty_output_name_is_a_usage_error(run: Cli, crm: Path) -> None:
    result = run("report", "c", "-o", "", code=2)  # was "cannot write .: it is a directory"
    assert "--output needs a file name, or - for stdout" in result.stderr


@pytest.mark.parametrize("option", ["-o", "--html"])
def test_a_path_ending_in_a_slash_is_a_usage_error(
    run: Cli, crm: Path, tmp_path: Path, option: str
) -> None:
    """`-o reports/` wrote a file called `reports`."""
    result = run("report", "c", option, f"{tmp_path}/reports/", code=2)
    assert "give a file name, e.g. " in result.stderr
    assert not (tmp_path / "reports").exists()


def test_xlsx_name_is_refused(run: Cli, crm: Path, tmp_path: Path) -> None:
    result = run("report", "c", "-o", str(tmp_path / "r.xlsx"), code=1)
    assert "the report is a CSV; name it .csv" in result.stderr


def test_the_report_is_streamed_not_built_in_memory(tmp_path: Path) -> None:
    """Rows reach the file while later rows are still being read (a 1M-row report never sits in
    memory): the temporary file has grown long before the last row is produced."""
    out = tmp_path / "big.csv"
    seen_on_disk: list[int] = []

    def rows() -> Any:
        for i in range(1, 60_001):
            if i == 50_000:
                parts = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
                seen_on_disk.append(sum(p.stat().st_size for p in parts))
            yield {
                "row": i,
                "raw_phone": "+12065550100",
                "phone": "+12065550100",
                "country": "US",
                "state": "pending",
                "reason": None,
                "parts": 1,
                "encoding": "GSM-7",
                "message_id": None,
                "attempts": 0,
                "filename": "f.csv",
                "sent_at": None,
                "delivery": None,
                "delivery_reason": None,
                "charged": None,
                "note": None,
            }

    class Sink:
        def __init__(self, binary: Any) -> None:
            self.binary = binary

        def write(self, text: str) -> int:
            return int(self.binary.write(text.encode()))

    with open_report_file(out) as binary:
        assert write_report(Sink(binary), rows(), None, False) == 60_000
    assert seen_on_disk and seen_on_disk[0] > 1_000_000
    assert len(out.read_text().splitlines()) == 60_001


def test_a_carriage_return_in_a_cell_keeps_its_row_whole() -> None:
    # Python's csv quotes only for its own line terminator ("\n" here): a bare "\r" from a CRM's
    # note column once went out unquoted, and most readers split the row there.
    row = {
        "row": 1, "raw_phone": "+1206\r5550100", "phone": None, "country": None,
        "state": "invalid", "reason": "not a phone number", "parts": None, "encoding": None,
        "message_id": None, "attempts": 0, "filename": "crm.csv", "sent_at": None,
        "delivery": None, "delivery_reason": None, "charged": None, "note": None,
    }  # fmt: skip
    out = io.StringIO()
    assert write_report(out, [row], None, False) == 1
    back = list(csv.reader(io.StringIO(out.getvalue(), newline="")))
    assert len(back) == 2
    assert back[1][COLUMNS.index("raw_phone")].endswith("5550100")


def test_the_csv_on_stdout_is_utf8_whatever_the_terminal(run: Cli, tmp_path: Path) -> None:
    """With an ASCII stdout (PYTHONIOENCODING=ascii, a legacy console) the report stopped half
    way with an internal UnicodeEncodeError."""
    from click.testing import CliRunner

    from campaign.cli import cli

    run("create", "u", "-o", ORIGIN, "-m", "Hi {name}", "--message-type", "TRANSACTIONAL")
    names = write_csv(tmp_path / "n.csv", "name,phone\nGarcía,+12065550100\n名前,+12065550101\n")
    run("import", "u", str(names))
    result = CliRunner(charset="ascii").invoke(
        cli, ["report", "u", "--include", "name"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    rows = read(result.stdout_bytes.decode("utf-8"))
    assert [r["name"] for r in rows] == ["García", "名前"]
