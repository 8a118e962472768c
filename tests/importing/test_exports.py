"""Real CRM exports through `campaign import`: files shaped like HubSpot, Mailchimp, Salesforce,
Google Contacts and Excel exports (headers and quirks, a few rows each), with the column each must
choose and each row's outcome."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest

from tests.helpers import Cli, write_csv

ORIGIN = "+12065550100"

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")


def text_csv(rows: list[list[str]], eol: str = "\n", delimiter: str = ",") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=eol, delimiter=delimiter).writerows(rows)
    return out.getvalue()


def report(run: Cli, *args: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(run("report", "c", *args).stdout)))


def outcomes(run: Cli) -> list[tuple[str, str, str]]:
    """(phone, state, reason or note) per row."""
    return [(r["phone"], r["state"], r["reason"] or r["note"]) for r in report(run)]


def test_hubspot(run: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "hubspot-crm-exports-all-contacts.csv",
        text_csv(
            [
                [
                    "Record ID",
                    "First Name",
                    "Last Name",
                    "Email",
                    "Phone Number",
                    "Mobile Phone Number",
                ],
                ["5101", "Ava", "Reed", "ava@example.com", "+44 20 7946 0000", "+44 7860 019066"],
                ["5102", "Liam", "Hart", "liam@example.com", "+44 20 7946 0001", ""],
                ["5103", "Noah", "Cole", "noah@example.com", "", "07860 019067"],
            ]
        ),
    )
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}")
    result = run(
        "import", "c", str(path), "--map", "first_name=First Name", "--default-region", "GB"
    )
    assert "phone column: Mobile Phone Number (the best-named mobile column)" in result.stderr
    assert outcomes(run) == [
        ("+447860019066", "pending", ""),
        ("", "invalid", "empty"),  # the office number is not taken without --phone-fallback
        ("+447860019067", "pending", ""),
    ]


def test_hubspot_with_fallback_to_the_office_number(run: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "hubspot.csv",
        text_csv(
            [
                ["Record ID", "Phone Number", "Mobile Phone Number"],
                ["1", "+1 206 555 0111", ""],  # NANP: any number may be a mobile
                ["2", "+44 20 7946 0001", ""],  # a UK landline: no use either
                ["3", "+1 206 555 0112", "+1 206 555 0113"],
            ]
        ),
    )
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    result = run("import", "c", str(path), "--phone-fallback")
    assert (
        "phone column: Mobile Phone Number (the best-named mobile column); per row, when empty "
        "or not a mobile number: 'Phone Number' (1 row took a fallback)" in result.stderr
    )
    rows = report(run)
    assert [(r["raw_phone"], r["phone"], r["state"]) for r in rows] == [
        ("+1 206 555 0111", "+12065550111", "pending"),
        ("", "", "invalid"),
        ("+1 206 555 0113", "+12065550113", "pending"),
    ]
    assert rows[0]["note"] == "phone from 'Phone Number' ('Mobile Phone Number': empty)"
    assert rows[1]["reason"] == (
        "empty; fallback 'Phone Number': not a mobile-capable number (fixed line)"
    )


def test_mailchimp(run: Cli, tmp_path: Path) -> None:
    # Mailchimp: the SMS number has its own column; MEMBER_RATING and friends are noise; CC is the
    # member's country code.
    path = write_csv(
        tmp_path / "subscribed_members_export_0a1b2c.csv",
        text_csv(
            [
                [
                    "Email Address",
                    "First Name",
                    "Phone Number",
                    "SMS Phone Number",
                    "MEMBER_RATING",
                    "CC",
                ],
                ["ava@example.com", "Ava", "+1 206 555 0100", "+1 206 555 0120", "2", "US"],
                ["mia@example.com", "Mia", "(206) 555-0121", "", "3", "US"],
                ["eli@example.com", "Eli", "", "0176 12345678", "1", "DE"],
            ]
        ),
    )
    run("create", "c", "-o", ORIGIN, "-m", "Hi {First Name|there}")
    result = run("import", "c", str(path), "--country-column", "CC")
    assert "phone column: SMS Phone Number (the best-named SMS column)" in result.stderr
    assert outcomes(run) == [
        ("+12065550120", "pending", ""),
        ("", "invalid", "empty"),
        ("+4917612345678", "pending", ""),
    ]


def test_salesforce_report_export(run: Cli, tmp_path: Path) -> None:
    # A Salesforce report: quoted everything, a footer-less cp1252 file from Excel on Windows.
    rows = [
        ["Contact ID", "First Name", "Phone", "Mobile", "Mailing Country"],
        ["0035g00000AbCdE", "Zoé", "+33 1 44 55 66 77", "+33 6 12 34 56 78", "France"],
        ["0035g00000AbCdF", "Søren", "+45 32 12 34 56", "+45 20 12 34 56", "Danmark"],
        ["0035g00000AbCdG", "Björn", "", "070-123 45 67", "Sverige"],
    ]
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL).writerows(rows)
    path = write_csv(tmp_path / "report1700000000000.csv", out.getvalue(), "cp1252")
    run("create", "c", "-o", ORIGIN, "-m", "Hej {first name}")
    result = run("import", "c", str(path), "--country-column", "Mailing Country")
    assert "phone column: Mobile" in result.stderr
    assert "(cp1252, delimiter ',')" in result.stderr
    assert outcomes(run) == [
        ("+33612345678", "pending", ""),
        ("+4520123456", "pending", ""),
        ("+46701234567", "pending", ""),  # a country name read as SE
    ]


def test_google_contacts(run: Cli, tmp_path: Path) -> None:
    # Google Contacts: numbered Phone N - Type / Value pairs; several numbers of one type in a
    # cell, joined by " ::: ".
    path = write_csv(
        tmp_path / "contacts.csv",
        text_csv(
            [
                [
                    "Name",
                    "Given Name",
                    "Phone 1 - Type",
                    "Phone 1 - Value",
                    "Phone 2 - Type",
                    "Phone 2 - Value",
                ],
                ["Ava Reed", "Ava", "Mobile", "+1 206-555-0130 ::: +1 206-555-0131", "", ""],
                ["Liam Hart", "Liam", "Work", "+44 20 7946 0000 ::: +44 7860 019068", "", ""],
                ["Noah Cole", "Noah", "Home", "+44 20 7946 0001 ::: +44 20 7946 0002", "", ""],
                ["Mia Lane", "Mia", "Mobile", "1-206-555-CALL", "Home", "+1 206 555 0132"],
            ]
        ),
    )
    run("create", "c", "-o", ORIGIN, "-m", "Hi {given name}")
    result = run("import", "c", str(path))
    assert "phone column: Phone 1 - Value (the best-named phone column)" in result.stderr
    assert "2 rows had several numbers in one cell" in result.stderr
    assert outcomes(run) == [
        ("+12065550130", "pending", "number 1 of 2 in the cell"),
        ("+447860019068", "pending", "number 2 of 2 in the cell"),
        (
            "",
            "invalid",
            "several numbers in one cell (2), none can receive SMS: "
            "not a mobile-capable number (fixed line)",
        ),
        ("", "invalid", "letters in the number: 1-206-555-CALL"),
    ]


def test_excel_semicolon_export_with_bom_and_number_cells(run: Cli, tmp_path: Path) -> None:
    # European Excel: "CSV UTF-8" with a byte order mark, semicolons, CRLF, and a phone column
    # that went through the spreadsheet as a number.
    path = write_csv(
        tmp_path / "Mappe1.csv",
        text_csv(
            [
                ["Vorname", "Nachname", "Handynummer", "Land"],
                ["Jürgen", "Groß", "0176 12345679", "Deutschland"],
                ["Anna", "Weiß", "1,76123457E+10", "Deutschland"],  # the sheet rounded it
                ["Lena", "Kühn", "0664 1234567", "Österreich"],
            ],
            eol="\r\n",
            delimiter=";",
        ),
        encoding="utf-8-sig",
    )
    run("create", "c", "-o", ORIGIN, "-m", "Hallo {vorname}")
    result = run("import", "c", str(path), "--country-column", "Land")
    assert "phone column: Handynummer" in result.stderr
    assert "(utf-8-sig, delimiter ';')" in result.stderr
    assert outcomes(run) == [
        ("+4917612345679", "pending", ""),
        ("", "invalid", "scientific notation lost digits: 1,76123457E+10"),
        ("+436641234567", "pending", ""),  # Österreich: AT
    ]


def test_a_tie_is_refused_and_changes_nothing(run: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", "Name,Phone,phone\nAva,+12065550100,+12065550101\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    result = run("import", "c", str(path), code=1)
    assert result.stderr.strip() == (
        "Error: 2 columns of r.csv could be the phone column: 'Phone', 'phone'; name one with "
        "--phone-column (repeat the option to fall back to the next one per row)"
    )
    assert report(run) == []
    run("import", "c", str(path), "--phone-column", "phone")
    assert [r["phone"] for r in report(run)] == ["+12065550101"]


def test_template_fallback_for_a_missing_column_warns_once(run: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", "phone\n+12065550100\n+12065550101\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name|there}")
    result = run("import", "c", str(path))
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert warnings == [
        "Warning: the message's {first_name}: r.csv has no column 'first_name', so every row "
        "gets the field's fallback"
    ]
    assert [(r["state"], r["parts"]) for r in report(run)] == [("pending", "1")] * 2


def test_map_names_the_column_of_a_field(run: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "r.csv", "Prénom,Portable\nZoé,+33 6 12 34 56 78\n")
    run("create", "c", "-o", ORIGIN, "-m", "Bonjour {first_name}")
    result = run("import", "c", str(path), code=1)
    assert "has no column 'first_name' (map one with --map first_name=COLUMN" in result.stderr
    result = run("import", "c", str(path), "--map", "first_name=Nom", code=1)
    assert "--map first_name='Nom': r.csv has no such column" in result.stderr
    run("import", "c", str(path), "--map", "first_name=prénom")
    [row] = report(run)
    assert (row["state"], row["encoding"]) == ("pending", "GSM-7")


def test_standard_input(run: Cli, tmp_path: Path) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi {first_name}")
    data = "first_name,phone\nAva,+12065550100\nLiam,+12065550101\n"
    result = run("import", "c", "-", input=data)
    assert "Imported 2 rows from standard input" in result.stderr
    assert [(r["file"], r["phone"]) for r in report(run)] == [
        ("<stdin>", "+12065550100"),
        ("<stdin>", "+12065550101"),
    ]
    again = run("import", "c", "-", input=data)
    assert "standard input was already imported" in again.stderr
    assert not list(Path(tmp_path).glob("campaign-stdin-*"))
