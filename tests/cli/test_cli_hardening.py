"""Issue 13 at the command line: options AWS would refuse every message for (a MaxPrice under any
price, a truncated origination number), singular counts, and the ledger's storage errors."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.helpers import Cli, write_csv

pytestmark = pytest.mark.usefixtures("start_from_migrated_ledger")

ORIGIN = "+12065550100"


def one_error_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), stderr
    return lines[0]


def names(run: Cli) -> list[str]:
    return [c["campaign"] for c in run.json("list", "--json")]


# -- item 8: a MaxPrice below any SMS price --------------------------------------------------------


@pytest.mark.parametrize("price", ["0.000", "0.00001", ".0009", "00.00099"])
def test_max_price_below_any_sms_price_is_refused(run: Cli, price: str) -> None:
    result = run("create", "c1", "-o", ORIGIN, "-m", "Hi", "--max-price", price, code=1)
    line = one_error_line(result.stderr)
    assert f"--max-price {price} is below what any SMS costs" in line and "0.00100" in line
    assert names(run) == []


def test_max_price_floor_applies_to_edit_too_and_the_floor_itself_is_taken(run: Cli) -> None:
    run("create", "c1", "-o", ORIGIN, "-m", "Hi", "--max-price", "0.001")
    run("edit", "c1", "--max-price", "0.000", code=1)
    assert run.json("status", "c1", "--json")["max_price"] == "0.001"
    run("edit", "c1", "--max-price", ".0075")
    assert run.json("status", "c1", "--json")["max_price"] == ".0075"


# -- an origination identity that looks like a phone number must be one ----------------------------

GOOD_IDENTITIES = [
    "+12065550100",  # a 10DLC number
    "+18335550123",  # toll-free
    "+447700900123",  # a GB number in the range reserved for fiction: possible, not "valid"
    "55500",  # a short code
    "CAMPAIGN",  # a sender ID
    "pool-0123456789abcdef0123456789abcdef",
    "arn:aws:sms-voice:us-east-1:111122223333:phone-number/phone-0123",
]
BAD_IDENTITIES = [
    ("+1206555", "too short"),
    ("+12065550", "area code is missing"),
    ("+120655501001", "too long"),
    ("+1-206-555-0100", "no spaces or dashes"),
    ("+999123456", "no such country calling code"),
    ("+0123456789", "a + and up to 15 digits"),
    ("+1206555010012345", "a + and up to 15 digits"),
]


@pytest.mark.parametrize("identity", GOOD_IDENTITIES)
def test_origination_identities_that_are_taken(run: Cli, identity: str) -> None:
    run("create", "c1", "-o", identity, "-m", "Hi")


@pytest.mark.parametrize(("identity", "why"), BAD_IDENTITIES)
def test_a_phone_number_identity_must_be_e164(run: Cli, identity: str, why: str) -> None:
    result = run("create", "c1", "-o", identity, "-m", "Hi", code=1)
    line = one_error_line(result.stderr)
    assert f"--origination-identity {identity!r} is not a phone number in E.164" in line
    assert why in line
    assert names(run) == []
    run("create", "c2", "-o", ORIGIN, "-m", "Hi")
    run("edit", "c2", "-o", identity, code=1)


# -- plurals -----------------------------------------------------------------------------------------


def test_counts_of_one_are_singular(run: Cli, tmp_path: Path, db_url: str) -> None:
    run("create", "c1", "-o", ORIGIN, "-m", "Hi {first_name}", "--max-price", "0.001")
    run("import", "c1", str(write_csv(tmp_path / "r.csv", "first_name,phone\nAva,+12065550100\n")))
    prices = write_csv(tmp_path / "p.csv", "country,price_per_part\nUS,0.00581\n")
    estimate = run("estimate", "c1", "--prices", str(prices), "--mps", "1").stdout
    assert ", 1 part\n" in estimate
    assert "WARNING: 1 message costs more than MaxPrice" in estimate
    edit = run("edit", "c1", "-m", "Hello {first_name}")
    assert "Recounted 1 pending recipient: 1 -> 1 part." in edit.stderr
    unpriced = write_csv(tmp_path / "gb.csv", "country,price_per_part\nGB,0.0365\n")
    estimate = run("estimate", "c1", "--prices", str(unpriced), "--mps", "1").stdout
    assert "WARNING: 1 recipient in US has no price in" in estimate
    status = run("status", "c1", "--prices", str(unpriced)).stdout
    assert "; 1 recipient unpriced" in status
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as conn:
        conn.execute("UPDATE recipients SET state = 'unknown'")
    status += run("status", "c1").stdout
    assert "1 recipient has an unknown outcome" in status
    assert "1 parts" not in estimate + status + edit.stderr


# -- item 7 in-process: the same line through Click's runner -----------------------------------------


def test_a_read_only_ledger_is_one_line_through_the_runner(run: Cli, db_url: str) -> None:
    run("create", "c1", "-o", ORIGIN, "-m", "Hi")
    path = db_url.removeprefix("sqlite:///")
    ro = f"sqlite:///file:{path}?mode=ro&uri=true"
    result = run("--db", ro, "edit", "c1", "--ttl", "600", code=1)
    line = one_error_line(result.stderr)
    assert line.startswith(f"Error: cannot write the ledger {path}: it is read-only")
    assert "UPDATE" not in line and "600" not in line


def test_a_read_only_postgresql_ledger_is_one_line(run: Cli, postgres_url: str) -> None:
    run("--db", postgres_url, "create", "c1", "-o", ORIGIN, "-m", "Hi")
    read_only = f"{postgres_url}?options=-c%20default_transaction_read_only%3Don"
    result = run("--db", read_only, "edit", "c1", "--ttl", "600", code=1)
    line = one_error_line(result.stderr)
    assert "cannot write the ledger postgresql+psycopg://" in line
    assert "it is read-only" in line and "nothing was lost" in line
    assert "UPDATE" not in line and "600" not in line
    assert run.json("--db", postgres_url, "status", "c1", "--json")["campaign"] == "c1"
