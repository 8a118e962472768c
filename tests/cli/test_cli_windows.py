"""Sending windows, deadlines and the frequency cap through the CLI: create/edit options, the time
zone decided at import (--timezone-column wins), estimate's calendar and what status counts.

Windows are chosen from the real current time (in New York), so some groups are open and some are
not at whatever hour the suite runs; nothing here depends on the hour of the day."""

from __future__ import annotations

import csv
import io
import zoneinfo
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from campaign.audience.gate import holdback
from campaign.audience.schedule import GroupLoad
from campaign.audience.windows import DEFAULT_POLICY, NO_WINDOW
from campaign.cli.render import render_holdback
from campaign.ledger import Ledger
from campaign.ledger.engine import open_ledger_engine
from tests.helpers import Cli, write_csv

# Each test runs on SQLite (a copy of a ledger migrated once, see conftest) and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("sqlite_or_postgres_url")
ORIGIN = "+12065550100"
NY = zoneinfo.ZoneInfo("America/New_York")


def campaign(db_url: str, name: str = "c") -> Any:
    return Ledger(open_ledger_engine(db_url)).get_campaign(name)


def error_line(result: Any) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    return lines[0]


def window_around_new_york_now(now: datetime) -> str:
    """Two hours of New York's clock, centred on now: open in New York, closed in Los Angeles
    (3 h behind), Tokyo (13-14 h ahead) and across the 2-3 h between Perth and Sydney."""
    local = now.astimezone(NY)
    start = (local.hour * 60 + local.minute - 60) % 1440
    end = (start + 120) % 1440
    return f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"


# -- create and edit --------------------------------------------------------------------------------


def test_create_stores_the_window_deadline_and_cap(run: Cli, db_url: str) -> None:
    result = run(
        "create", "c", "-o", ORIGIN, "-m", "Hi",
        "--window", "9:30-18:00", "--days", "mon-fri",
        "--deadline", "2026-05-01T20:00-04:00",
        "--max-per-recipient", "3", "--per", "24",
    )  # fmt: skip
    stored = campaign(db_url)
    assert stored.window == "* 09:30-18:00 mon-sun" and stored.days == "mon-fri"
    assert stored.deadline == datetime(2026, 5, 2, 0, 0, tzinfo=UTC)
    assert (stored.max_per_recipient, stored.per_hours) == (3, 24)
    assert "Sending window: 09:30-18:00 on mon-fri, recipient's local time." in result.stderr
    assert "Deadline: 2026-05-02 00:00 UTC" in result.stderr
    assert "Frequency cap: at most 3 messages per 24 h to one number" in result.stderr


def test_create_defaults(run: Cli, db_url: str) -> None:
    run("create", "promo", "-o", ORIGIN, "-m", "Hi")
    run("create", "otp", "-o", ORIGIN, "-m", "Code 1234", "--message-type", "TRANSACTIONAL")
    promo, otp = campaign(db_url, "promo"), campaign(db_url, "otp")
    assert (promo.window, promo.days, promo.deadline, promo.max_per_recipient) == (None,) * 4
    assert otp.window is None  # the type's default, none for TRANSACTIONAL


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--window", "8-20"], "Error: --window '8-20': use HH:MM-HH:MM"),
        (["--window", "09:00-09:00"], "is empty (it ends when it starts)"),
        (["--days", "mon-fry"], "Error: --days 'mon-fry': 'fry' is not a day"),
        (["--no-window", "--window", "09:00-17:00"], "--no-window and --window contradict"),
        (
            ["--deadline", "2026-05-01T20:00"],
            "Error: --deadline '2026-05-01T20:00' has no UTC offset",
        ),
        (["--deadline", "friday"], "is not an ISO 8601 date and time"),
        (["--max-per-recipient", "3"], "Error: --max-per-recipient 3 needs --per HOURS"),
        (["--per", "24"], "Error: --per 24 needs --max-per-recipient N"),
        (
            ["--max-per-recipient", "5000", "--per", "24"],
            "--max-per-recipient 5000 is out of range",
        ),
        (["--max-per-recipient", "3", "--per", "9000"], "Error: --per 9000 is out of range"),
        (
            ["--message-type", "TRANSACTIONAL", "--days", "mon-fri"],
            "Error: --days mon-fri needs a window and TRANSACTIONAL has no default window",
        ),
    ],
)
def test_create_refuses_bad_values_in_one_line(run: Cli, args: list[str], says: str) -> None:
    line = error_line(run("create", "c", "-o", ORIGIN, "-m", "Hi", *args, code=1))
    assert says in line
    assert run.json("list", "--json") == []


def test_edit_changes_only_what_is_given(run: Cli, db_url: str) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--window", "09:00-17:00")
    run("edit", "c", "--days", "sat-sun")
    assert (campaign(db_url).window, campaign(db_url).days) == ("* 09:00-17:00 mon-sun", "sat-sun")
    run("edit", "c", "--window", "10:00-12:00")  # the days stay
    assert (campaign(db_url).window, campaign(db_url).days) == ("* 10:00-12:00 mon-sun", "sat-sun")
    run("edit", "c", "--no-window")
    assert (campaign(db_url).window, campaign(db_url).days) == ("none", None)
    line = error_line(run("edit", "c", "--days", "mon", code=1))
    assert "--days mon needs a window and it has --no-window" in line
    run("edit", "c", "--window", "default")
    assert (campaign(db_url).window, campaign(db_url).days) == (None, None)

    run("edit", "c", "--deadline", "2026-06-01T12:00Z", "--max-per-recipient", "2", "--per", "12")
    edited = campaign(db_url)
    assert edited.deadline == datetime(2026, 6, 1, 12, tzinfo=UTC)
    assert (edited.max_per_recipient, edited.per_hours) == (2, 12)
    run("edit", "c", "--per", "48")  # one of the two alone
    assert (campaign(db_url).max_per_recipient, campaign(db_url).per_hours) == (2, 48)
    run("edit", "c", "--deadline", "none", "--max-per-recipient", "0")
    off = campaign(db_url)
    assert (off.deadline, off.max_per_recipient, off.per_hours) == (None, None, None)


def test_edit_to_transactional_keeps_days_honest(run: Cli) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--days", "mon-fri")
    line = error_line(run("edit", "c", "--message-type", "TRANSACTIONAL", code=1))
    assert "--days mon-fri needs a window and TRANSACTIONAL has no default window" in line


# -- import: the time zone of each recipient --------------------------------------------------------


def test_import_decides_each_zone_and_the_column_wins(
    run: Cli, tmp_path: Path, db_url: str
) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi {name}")
    path = write_csv(
        tmp_path / "r.csv",
        "name,phone,tz\n"
        "Ann,+12125550101,\n"  # New York, from the number
        "Bob,+12125550102,Asia/Tokyo\n"  # the column wins
        "Cy,+13105550103,america/los_angeles\n"  # any case
        "Di,+13105550104,Mars/Olympus\n"  # not a zone: unknown, held, never guessed
        "Ed,+18005550105,\n",  # toll-free: no zone
    )
    result = run("import", "c", str(path), "--timezone-column", "tz", "--allow-non-mobile")
    assert "2 recipients held by the sending window: 2 with an unknown time zone" in result.stderr
    rows = list(csv.DictReader(io.StringIO(run("report", "c").stdout)))
    assert [r["state"] for r in rows] == ["pending"] * 5
    assert [r["reason"] for r in rows[:3]] == ["", "", ""]
    assert rows[3]["reason"].startswith(
        "held: time zone unknown (time zone column: 'Mars/Olympus' is not an IANA time zone name"
    )
    assert rows[4]["reason"].startswith("held: time zone unknown (toll-free North American number")
    ledger = Ledger(open_ledger_engine(db_url))
    groups = {(g.zone_key, g.country): g.recipients for g in ledger.pending_groups(1)}
    assert groups == {
        ("America/New_York", "US"): 1,
        ("Asia/Tokyo", "US"): 1,
        ("America/Los_Angeles", "US"): 1,
        (None, "US"): 2,
    }
    status = run.json("status", "c", "--json")
    assert status["window"]["held"] == {"unknown_zone": 2, "empty_window": 0}


def test_zones_follow_the_number_a_row_falls_back_to(run: Cli, tmp_path: Path, db_url: str) -> None:
    """The import's phone column choice (Mobile over Phone, a per-row fallback, several numbers in
    a cell) and its time zones (the column wins, else the number actually taken) together."""
    run("create", "c", "-o", ORIGIN, "-m", "Hi {name}")
    path = write_csv(
        tmp_path / "r.csv",
        "name,Phone,Mobile,tz\n"
        "Ann,+12125550101,+13105550101,\n"  # Mobile wins: Los Angeles, from its number
        "Bob,+12125550102,,\n"  # falls back to Phone: New York, from that number
        "Cy,+12125550103,,Asia/Tokyo\n"  # falls back, and the column still wins
        "Di,,+18005550104 ::: +13105550104,\n"  # the second number of the cell: Los Angeles
        "Ed,+12125550105,,Mars/Olympus\n",  # falls back, then held: not a zone
    )
    result = run("import", "c", str(path), "--timezone-column", "tz", "--phone-fallback")
    assert "phone column: Mobile" in result.stderr and "(3 rows took a fallback)" in result.stderr
    assert "1 recipient held by the sending window: 1 with an unknown time zone" in result.stderr
    rows = list(csv.DictReader(io.StringIO(run("report", "c").stdout)))
    assert [r["state"] for r in rows] == ["pending"] * 5
    assert [r["phone"] for r in rows] == [
        "+13105550101",
        "+12125550102",
        "+12125550103",
        "+13105550104",
        "+12125550105",
    ]
    assert [r["note"] for r in rows] == [
        "",
        "phone from 'Phone' ('Mobile': empty)",
        "phone from 'Phone' ('Mobile': empty)",
        "number 2 of 2 in the cell",
        "phone from 'Phone' ('Mobile': empty)",
    ]
    assert [r["reason"] for r in rows[:4]] == ["", "", "", ""]
    assert rows[4]["reason"].startswith("held: time zone unknown (time zone column: 'Mars/Olympus'")
    ledger = Ledger(open_ledger_engine(db_url))
    groups = {(g.zone_key, g.country): g.recipients for g in ledger.pending_groups(1)}
    assert groups == {
        ("America/Los_Angeles", "US"): 2,
        ("America/New_York", "US"): 1,
        ("Asia/Tokyo", "US"): 1,
        (None, "US"): 1,
    }


def test_a_missing_timezone_column_is_one_line(run: Cli, tmp_path: Path) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    path = write_csv(tmp_path / "r.csv", "phone\n+12125550101\n")
    line = error_line(run("import", "c", str(path), "--timezone-column", "zone", code=1))
    assert line.startswith("Error: --timezone-column 'zone': r.csv has no such column")


def test_no_window_holds_nobody_and_edit_rewrites_the_reasons(run: Cli, tmp_path: Path) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    path = write_csv(tmp_path / "r.csv", "phone\n+12125550101\n+18005550105\n")
    run("import", "c", str(path), "--allow-non-mobile")

    def reasons() -> list[str]:
        return [r["reason"] for r in csv.DictReader(io.StringIO(run("report", "c").stdout))]

    assert reasons()[1].startswith("held: time zone unknown")
    edited = run("edit", "c", "--no-window")
    assert "Sending window: no sending window (any time)." in edited.stderr
    assert reasons() == ["", ""]
    assert run.json("status", "c", "--json")["window"]["held"]["unknown_zone"] == 0
    again = run("edit", "c", "--window", "default")
    assert "1 pending recipient is held" in again.stderr
    assert reasons()[1].startswith("held: time zone unknown")


# -- estimate's calendar ----------------------------------------------------------------------------


def test_estimate_plans_the_calendar_from_now(run: Cli, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    window = window_around_new_york_now(now)
    deadline = (now + timedelta(minutes=30)).isoformat()
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--window", window, "--deadline", deadline)
    path = write_csv(
        tmp_path / "r.csv",
        "phone,tz\n"
        "+12125550101,\n+12125550102,\n+12125550103,\n"  # New York: open now
        "+13105550104,\n+13105550105,\n"  # Los Angeles: opens in about two hours
        "+12125550106,Asia/Tokyo\n"  # Tokyo: later
        "+61412345678,\n"  # an AU mobile: Perth to Sydney never share two hours
        "+18005550107,\n",  # toll-free: unknown
    )
    run("import", "c", str(path), "--timezone-column", "tz", "--allow-non-mobile")

    data = run.json("estimate", "c", "--mps", "1", "--json")
    cal = data["calendar"]
    assert cal["sendable_now"] == 3
    groups = {g["zone_key"]: g for g in cal["groups"]}
    la = datetime.fromisoformat(groups["America/Los_Angeles"]["opens_at"])
    assert timedelta(minutes=55) < la - now < timedelta(hours=3, minutes=5)
    assert datetime.fromisoformat(cal["next_opening"]) == min(
        la, datetime.fromisoformat(groups["Asia/Tokyo"]["opens_at"])
    )
    assert groups["America/New_York"]["sent"] == 3  # 3 parts at 1 MPS, inside the window
    assert cal["window"]["held"] == {"unknown_zone": 1, "empty_window": 1}
    assert cal["window"]["open_now"] == 3 and cal["window"]["waiting"] == 3
    # The deadline comes before the other windows open: only New York is sent.
    assert cal["meets_deadline"] is False
    assert cal["left_over"] == 5
    assert cal["finishes_at"] is None  # not everyone in time

    text = " ".join(run("estimate", "c", "--mps", "1").stdout.split())  # unwrapped
    assert "sendable now: 3 of 8 pending recipients" in text
    assert "MISSED: 5 recipients would be left to expire" in text
    assert "1 with an unknown time zone, 1 whose zones never share an open hour" in text

    run("edit", "c", "--deadline", "none")
    later = run.json("estimate", "c", "--mps", "1", "--json")["calendar"]
    tokyo = max(datetime.fromisoformat(g["opens_at"]) for g in later["groups"] if g["opens_at"])
    finish = datetime.fromisoformat(later["finishes_at"])
    assert finish == tokyo + timedelta(seconds=1)  # the last group to open: one part at 1 MPS
    assert later["meets_deadline"] is None and later["left_over"] == 2  # the held ones


def test_estimate_without_a_window_sends_everyone_now(run: Cli, tmp_path: Path) -> None:
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--no-window")
    path = write_csv(tmp_path / "r.csv", "phone\n+12125550101\n+13105550104\n+61412345678\n")
    run("import", "c", str(path))
    cal = run.json("estimate", "c", "--mps", "2", "--json")["calendar"]
    assert cal["sendable_now"] == 3 and cal["next_opening"] is None
    assert cal["duration_seconds"] == pytest.approx(1.5)
    assert cal["window"]["held"] == {"unknown_zone": 0, "empty_window": 0}


# -- the confirmation's line ------------------------------------------------------------------------


def test_the_confirmation_states_the_policy_and_what_it_holds_back() -> None:
    now = datetime(2026, 7, 1, 13, 30, tzinfo=UTC)  # 09:30 in New York, 06:30 in Los Angeles
    loads = [
        GroupLoad("America/New_York", "US", 10, 10),
        GroupLoad("America/Los_Angeles", "US", 4, 4),
        GroupLoad(None, "US", 1, 1),
    ]
    line = render_holdback(holdback(loads, DEFAULT_POLICY, now))
    assert line.startswith("Sending window: 08:00-20:00 every day in CA, US;")
    assert "It holds back 5 of 15 pending now: 4 wait for their window (the next opens " in line
    assert "2026-07-01 15:00 UTC for 4); 1 has an unknown time zone." in line
    none = render_holdback(holdback(loads, NO_WINDOW, now))
    assert none == "Sending window: none, every recipient may be messaged at any hour."
    open_all = render_holdback(holdback(loads[:1], DEFAULT_POLICY, now))
    assert open_all.endswith("It holds back nobody now: all 10 pending are inside it.")
