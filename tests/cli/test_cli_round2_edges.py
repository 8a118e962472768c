"""The round-2 options at their edges, as an outside tester found them: values a user can type
that must end in one `Error:` line with nothing stored, and summaries that must stay true.

Nothing here depends on the time of day: a window that must be closed is chosen from the clock
(an hour starting 3 h from now, in Etc/UTC), and the other sends are TRANSACTIONAL or pass
--no-window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import Cli, write_csv

ORIGIN = "+12065550100"
# On SQLite and on PostgreSQL (tests/cli/conftest.py): what the ledger stores and counts.
ON_BOTH = pytest.mark.usefixtures("sqlite_or_postgres_url")


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


@pytest.mark.parametrize(
    ("budget", "says"),
    [
        ("1e400", "is too large"),  # was stored, shown as $1E+400
        ("99999999999999999999999999", "is too large"),  # past the column's 16 characters
        ("1e-30", "has more than 6 decimal places"),  # shown as $1E-30
        ("0.0000001", "has more than 6 decimal places"),
    ],
)
def test_a_budget_the_ledger_cannot_hold_is_refused(run: Cli, budget: str, says: str) -> None:
    result = run("create", "c", "-o", ORIGIN, "-m", "Hi", "--budget", budget, code=2)
    assert f"Invalid value for --budget: {budget!r} {says}" in result.stderr
    assert run.json("list", "--json") == []
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    result = run("edit", "c", "--budget", budget, code=2)
    assert says in result.stderr
    assert run.json("status", "c", "--json")["budget"] is None


@ON_BOTH
def test_a_budget_is_stored_and_shown_in_plain_digits(run: Cli) -> None:
    result = run("create", "c", "-o", ORIGIN, "-m", "Hi", "--budget", "1e3")
    assert "Budget: $1000 for every send" in result.stderr
    run("create", "d", "-o", ORIGIN, "-m", "Hi", "--budget", "999999999.999999")
    assert [c["budget"] for c in run.json("list", "--json")] == ["1000", "999999999.999999"]


def test_a_price_table_with_an_absurd_price_is_one_line(run: Cli, tmp_path: Path) -> None:
    """estimate, status and send read the same table: each says which row, none crashes."""
    write_csv(tmp_path / "r.csv", "phone\n+12065550111\n")
    write_csv(tmp_path / "prices.csv", "country,price_per_part\nUS,1e300\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--no-window", "--recipients", "r.csv")
    for command in (["estimate", "c"], ["status", "c"], ["status", "c", "--json"]):
        line = error_line(run(*command, "--prices", "prices.csv", code=1))
        assert "prices.csv: row 1: price_per_part '1e300' is more than $100 a part" in line


def test_a_send_after_the_deadline_does_not_offer_those_it_expired(
    run: Cli, tmp_path: Path, simulator: Any
) -> None:
    write_csv(tmp_path / "r.csv", "phone\n+12065550111\n+12065550112\n")
    run(
        "create", "c", "-o", ORIGIN, "-m", "Hi", "--no-window",
        "--deadline", "2026-01-01T00:00Z", "--recipients", "r.csv",
    )  # fmt: skip
    result = run("--endpoint-url", simulator.url, "send", "c", "--yes")
    assert "2 pending recipients expired, nothing is sent" in result.stderr
    # Before: "SEND: 2 recipients, 2 parts ..." and "deadline ...: everyone can be sent before it"
    assert "SEND:" not in result.stderr and "everyone can be sent" not in result.stderr
    assert "Nothing to send in 'c'" in result.stderr
    assert run.json("status", "c", "--json")["counts"]["expired"] == 2
    assert simulator.accepted() == []


@ON_BOTH
def test_status_shows_the_deadline_and_counts_unknown_against_the_budget(
    run: Cli, tmp_path: Path, simulator: Any
) -> None:
    """The contract: `status` shows the deadline; and the budget line counts what `send` counts
    against the campaign's budget (sent, unknown, in flight), not only `sent`."""
    write_csv(tmp_path / "r.csv", "phone\n+12065550111\n+12065550112\n+12065550113\n")
    write_csv(tmp_path / "prices.csv", "country,price_per_part\nUS,0.01\n")
    run(
        "create", "c", "-o", ORIGIN, "-m", "Hi", "--message-type", "TRANSACTIONAL",
        "--deadline", "2030-01-01T00:00Z", "--budget", "1", "--recipients", "r.csv",
    )  # fmt: skip
    simulator.set_faults(drop_rate=1.0)  # accepted, then the connection drops: `unknown`
    run(
        "--endpoint-url",
        simulator.url,
        "send",
        "c",
        "--yes",
        "--prices",
        "prices.csv",
        "--limit",
        "2",
    )
    assert run.json("status", "c", "--json")["counts"]["unknown"] == 2
    text = run("status", "c", "--prices", "prices.csv").stdout
    assert "Deadline: 2030-01-01 00:00 UTC (nothing leaves after it)." in text
    assert "Budget: $1 for every send of the campaign together; $0.02 of it estimated spent" in text
    simulator.set_faults(drop_rate=0.0)
    send = run("--endpoint-url", simulator.url, "send", "c", "--yes", "--prices", "prices.csv")
    assert "$0.02 of it estimated spent (sent or unknown so far)" in send.stderr  # the same figure


@pytest.mark.parametrize("region", ["ZZ", "usa"])
def test_create_with_recipients_and_an_unknown_region_creates_nothing(
    run: Cli, tmp_path: Path, region: str
) -> None:
    """Before: the campaign was created, then the import failed with 'fix the file' (the file
    was fine) and the campaign stayed, empty, in the way of the next `create`."""
    write_csv(tmp_path / "r.csv", "phone\n2065550111\n")
    args = ["-m", "Hi", "--recipients", "r.csv", "--default-region", region]
    line = error_line(run("create", "c", "-o", ORIGIN, *args, code=1))
    assert line == f"Error: --default-region {region!r} is not a known country code " + (
        "(ISO alpha-2, e.g. US, GB, DE)"
    )
    assert run.json("list", "--json") == []
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--recipients", "r.csv", "--default-region", "us")
    assert run.json("status", "c", "--json")["recipients"] == 1


def test_no_wait_with_the_cap_promises_no_time_it_cannot_keep(
    run: Cli, tmp_path: Path, simulator: Any
) -> None:
    """Before: 'Run `campaign send b` again at <a minute from now> or later', while the cap
    holds the number for 24 h: the cron job ran again and got exit 5 again."""
    write_csv(tmp_path / "r.csv", "phone\n+12065550111\n")
    for name, cap in (("a", []), ("b", ["--max-per-recipient", "1", "--per", "24"])):
        run(
            "create", name, "-o", ORIGIN, "-m", "Hi", "--message-type", "TRANSACTIONAL",
            *cap, "--recipients", "r.csv",
        )  # fmt: skip
    run("--endpoint-url", simulator.url, "send", "a", "--yes")
    result = run("--endpoint-url", simulator.url, "send", "b", "--yes", "--no-wait", code=5)
    assert "1 recipient inside their window is held by the frequency cap" in result.stderr
    assert "again at" not in result.stderr
    assert "send b --yes` again later: the frequency cap lets a number through" in result.stderr
    assert len(simulator.accepted()) == 1


def test_no_wait_names_the_whole_command_that_resumes(
    run: Cli, tmp_path: Path, simulator: Any
) -> None:
    """A campaign with a budget needs --prices: 'Run `campaign send c` again at ...' was a command
    that fails (usage error), and it dropped the endpoint the send used."""
    write_csv(tmp_path / "r.csv", "phone,tz\n+12065550111,Etc/UTC\n")
    write_csv(tmp_path / "prices.csv", "country,price_per_part\nUS,0.01\n")
    now = datetime.now(UTC)
    start = now + timedelta(hours=3)  # closed now, whatever the hour: a one-hour window 3 h ahead
    window = f"{start:%H}:00-{(start + timedelta(hours=1)):%H}:00"
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--window", window, "--budget", "5")
    run("import", "c", "r.csv", "--timezone-column", "tz")
    result = run(
        "--endpoint-url", simulator.url, "send", "c", "--yes", "--prices", "prices.csv",
        "--no-wait", code=5,
    )  # fmt: skip
    resume = f"campaign --endpoint-url {simulator.url} send c --prices prices.csv --yes"
    assert f"Run `{resume}` again at " in result.stderr
    assert simulator.accepted() == []


def test_retry_unknown_after_the_deadline_leaves_them_unknown(
    run: Cli, tmp_path: Path, simulator: Any
) -> None:
    """Before: they went back to pending and at once became `expired` ("the deadline passed
    before it could be sent"), though they may have the message."""
    write_csv(tmp_path / "r.csv", "phone\n+12065550111\n+12065550112\n")
    run(
        "create", "c", "-o", ORIGIN, "-m", "Hi", "--message-type", "TRANSACTIONAL",
        "--recipients", "r.csv",
    )  # fmt: skip
    simulator.set_faults(drop_rate=1.0)
    run("--endpoint-url", simulator.url, "send", "c", "--yes")
    run("edit", "c", "--deadline", "2026-01-01T00:00Z")
    simulator.set_faults(drop_rate=0.0)
    result = run("--endpoint-url", simulator.url, "send", "c", "--yes", "--retry-unknown")
    assert "the deadline has passed, so nobody may be sent: 2 recipients with an unknown " in (
        result.stderr
    )
    counts = run.json("status", "c", "--json")["counts"]
    assert counts["unknown"] == 2 and counts["expired"] == 0
    assert len(simulator.accepted(dry_run=False)) == 2  # the first, dropped, calls only


@ON_BOTH
def test_retry_unknown_counts_the_first_calls_against_the_campaign_budget(
    run: Cli, tmp_path: Path, simulator: Any
) -> None:
    """Before: --retry-unknown made the unknown `pending`, the budget forgot their first calls
    (which the service had accepted here) and the run spent the budget again: $0.04 of $0.02."""
    write_csv(tmp_path / "r.csv", "phone\n+12065550111\n+12065550112\n+12065550113\n")
    write_csv(tmp_path / "prices.csv", "country,price_per_part\nUS,0.01\n")
    run(
        "create", "c", "-o", ORIGIN, "-m", "Hi", "--message-type", "TRANSACTIONAL",
        "--budget", "0.02", "--recipients", "r.csv",
    )  # fmt: skip
    send = ("--endpoint-url", simulator.url, "send", "c", "--yes", "--prices", "prices.csv")
    simulator.set_faults(drop_rate=1.0)  # accepted, then the connection drops: `unknown`
    run(*send, "--limit", "2")
    simulator.set_faults(drop_rate=0.0)
    result = run(*send, "--retry-unknown", code=4)
    assert "$0.02 of it estimated spent (sent or unknown so far)" in result.stderr
    assert "the campaign's budget is reached" in result.stderr
    assert len(simulator.accepted(dry_run=False)) == 2  # the two first calls, nothing more
    text = run("status", "c", "--prices", "prices.csv").stdout
    assert "Budget: $0.02 for every send of the campaign together; $0.02 of it estimated" in text


def test_a_second_import_counts_only_its_own_held_recipients(run: Cli, tmp_path: Path) -> None:
    """Before: a 1-row file 'held' 3 recipients: the campaign's, earlier files' included."""
    write_csv(tmp_path / "a.csv", "phone,tz\n+12065550111,Mars/A\n+12065550112,Mars/B\n")
    write_csv(tmp_path / "b.csv", "phone,tz\n+12065550113,Mars/C\n+12065550114,Europe/Paris\n")
    run("create", "c", "-o", ORIGIN, "-m", "Hi")
    first = run("import", "c", "a.csv", "--timezone-column", "tz")
    assert "  2 recipients held by the sending window: 2 with an unknown time zone" in first.stderr
    second = run("import", "c", "b.csv", "--timezone-column", "tz")
    assert "  1 recipient held by the sending window: 1 with an unknown time zone" in second.stderr
    assert run.json("status", "c", "--json")["window"]["held"]["unknown_zone"] == 3


def test_a_run_that_waited_for_its_window_says_nothing_of_its_pace(
    run: Cli, tmp_path: Path, simulator: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a send that waited for a window until its deadline ended with 'Note: 0 parts/s
    of the 1000 allowed ... the limit was this side: CPU ... or --concurrency'. The note's
    10 seconds are 0 here so that the run need not last them."""
    monkeypatch.setattr("campaign.cli.send.PACE_NOTE_AFTER_SECONDS", 0)
    write_csv(tmp_path / "r.csv", "phone,tz\n+12065550111,Etc/UTC\n")
    start = datetime.now(UTC) + timedelta(hours=3)  # closed now: a one-hour window 3 h ahead
    window = f"{start:%H}:00-{(start + timedelta(hours=1)):%H}:00"
    run("create", "c", "-o", ORIGIN, "-m", "Hi", "--window", window)
    run("import", "c", "r.csv", "--timezone-column", "tz")
    result = run("--endpoint-url", simulator.url, "send", "c", "--yes", "--no-wait", code=5)
    assert "Sent 0 (0 parts)" in result.stderr
    assert "parts/s of the" not in result.stderr


def test_estimate_says_when_a_campaign_does_not_finish_within_a_year() -> None:
    """Before: without a deadline, a group not done in the calendar's year read 'not in time'
    and no line said why 381 recipients were left over."""
    from campaign.audience.gate import holdback
    from campaign.audience.schedule import GroupLoad, plan_calendar
    from campaign.audience.windows import policy_from_options
    from campaign.cli.render import render_calendar

    now = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
    loads = [GroupLoad("America/Los_Angeles", "US", 600, 600)]
    policy = policy_from_options("PROMOTIONAL", "10:00-10:01", None, no_window=False)
    calendar = plan_calendar(loads, policy, 0.01, now)  # a minute a day, 100 s a message
    assert calendar.finishes_at is None and calendar.left_over > 300
    text = render_calendar(calendar, holdback(loads, policy, now))
    assert "not in a year" in text and "not in time" not in text
    assert f"does not finish within a year: {calendar.left_over} recipients would still" in text
