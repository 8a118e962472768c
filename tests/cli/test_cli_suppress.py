"""`campaign suppress add|remove|list` and `campaign optouts sync` (against the simulator), and the
do-not-send list applied at import."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest

from campaign.aws.sms import OptOutListError, opted_out_numbers
from tests.helpers import Cli, write_csv

# Each test runs on SQLite (a copy of a ledger migrated once, see conftest) and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("sqlite_or_postgres_url")
ORIGIN = "+12065550100"
# The simulator's Default opt-out list (SimulatorConfig's region and account).
DEFAULT_ARN = "arn:aws:sms-voice:us-east-1:111122223333:opt-out-list/Default"


def listed(run: Cli) -> dict[str, dict[str, Any]]:
    return {e["phone"]: e for e in run.json("suppress", "list", "--json")}


def test_add_remove_and_list_numbers(run: Cli) -> None:
    result = run("suppress", "add", "+14155552671", "(206) 555-0100", "--default-region", "US")
    assert "Added 2 numbers to the do-not-send list." in result.stderr
    entries = listed(run)
    assert list(entries) == ["+12065550100", "+14155552671"]  # E.164, as imports store them
    assert entries["+14155552671"]["source"] == "user"
    assert entries["+14155552671"]["reason"] == "listed with campaign suppress add"
    assert entries["+14155552671"]["added_at"]

    again = run("suppress", "add", "+14155552671", "--reason", "legal hold")
    assert "Added 0 numbers" in again.stderr and "1 already on it" in again.stderr
    assert listed(run)["+14155552671"]["reason"] == "listed with campaign suppress add"

    removed = run("suppress", "remove", "+14155552671", "+14155550000")
    assert "Removed 1 number" in removed.stderr and "; 1 was not on it." in removed.stderr
    assert list(listed(run)) == ["+12065550100"]
    text = run("suppress", "list").stdout
    assert "+12065550100" in text and "listed with campaign suppress add" in text


def test_bad_numbers_are_reported_one_by_one(run: Cli) -> None:
    result = run("suppress", "add", "+14155552671", "n/a", "12")
    assert "rejected argument 2: 'n/a': unparseable" in result.stderr
    assert "rejected argument 3: '12'" in result.stderr
    assert "Added 1 number" in result.stderr and "2 cells rejected" in result.stderr
    nothing = run("suppress", "add", "n/a", code=1)
    assert nothing.stderr.strip().endswith(
        "Error: no phone number found in the arguments; nothing was added"
    )


def test_a_long_rejected_cell_is_shown_cut(run: Cli, tmp_path: Path) -> None:
    """A paragraph pasted in the phone column is not printed whole."""
    path = write_csv(tmp_path / "notes.csv", "phone\n+14155552671\n" + "call me " * 5000 + "\n")
    result = run("suppress", "add", str(path))
    [line] = [x for x in result.stderr.splitlines() if x.startswith("  rejected row 2: ")]
    assert line.startswith("  rejected row 2: 'call me call me") and "...': " in line
    assert len(line) < 200
    removed = run("suppress", "remove", "+14155552671", "+14155550000", "+14155550001")
    assert "; 2 were not on it." in removed.stderr


def test_a_reason_over_several_lines_keeps_the_table_one_line_per_number(run: Cli) -> None:
    run("suppress", "add", "+14155552671", "--reason", "complained\nby phone")
    lines = run("suppress", "list").stdout.splitlines()
    assert len(lines) == 2 and lines[1].endswith(" complained by phone")
    assert listed(run)["+14155552671"]["reason"] == "complained\nby phone"  # kept as given


def test_a_folder_is_a_usage_error(run: Cli, tmp_path: Path) -> None:
    """Was read as a number: "rejected argument 1: unparseable", then "no phone number found"."""
    result = run("suppress", "add", str(tmp_path), code=2)
    assert f"{tmp_path}: a folder; give a file of numbers" in result.stderr


def test_add_a_csv_normalized_like_an_import(run: Cli, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "complaints.csv",
        "name;Mobile Number;note\n"
        "Ann;(415) 555-2671;x\n"
        "Bob;not a number;y\n"
        "Cy;+44 7700 900123;z\n"
        "Di;4155552671;dup\n"
        "Ed;;empty\n",
    )
    result = run("suppress", "add", str(path), "--reason", "complaint", "--default-region", "US")
    # Row numbers as `campaign report` counts them: data rows, the header not counted.
    assert "rejected row 2: 'not a number': unparseable" in result.stderr
    assert "rejected row 3: '+44 7700 900123': invalid number for GB" in result.stderr
    assert "Added 1 number" in result.stderr and "1 repeated" in result.stderr
    assert {p: e["reason"] for p, e in listed(run).items()} == {"+14155552671": "complaint"}


def test_add_a_file_of_bare_numbers(run: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "list.txt", "+14155552671\n+12065550100\n\nnope\n+13105550102\n")
    result = run("suppress", "add", str(path))
    assert "rejected row 4: 'nope'" in result.stderr  # the first line is row 1: no header
    assert list(listed(run)) == ["+12065550100", "+13105550102", "+14155552671"]


def test_a_file_without_a_phone_column_is_one_line(run: Cli, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "people.csv", "name,city\nAnn,Paris\n")
    result = run("suppress", "add", str(path), code=1)
    assert result.stderr.startswith("Error: no phone column in people.csv")
    assert len(result.stderr.strip().splitlines()) == 1
    named = write_csv(tmp_path / "named.csv", "name,who\nAnn,+14155552671\n")
    run("suppress", "add", str(named), "--phone-column", "who")
    assert list(listed(run)) == ["+14155552671"]


def test_a_file_that_needs_its_encoding_named_takes_encoding(run: Cli, tmp_path: Path) -> None:
    # UTF-16 without a byte order mark cannot be told from binary: the error says to name it,
    # and `suppress add` takes the option it names (as `import` does).
    path = tmp_path / "utf16.csv"
    path.write_bytes("phone,name\n+14155552671,Zoë\n".encode("utf-16-le"))
    refused = run("suppress", "add", str(path), code=1)
    assert "--encoding utf-16-le" in refused.stderr
    assert listed(run) == {}
    added = run("suppress", "add", str(path), "--encoding", "utf-16-le", "--delimiter", ",")
    assert "Added 1 number" in added.stderr
    assert list(listed(run)) == ["+14155552671"]


def test_file_options_with_numbers_are_a_usage_error(run: Cli) -> None:
    result = run("suppress", "add", "+14155552671", "--encoding", "cp1252", code=2)
    assert "--encoding goes with a FILE, not with numbers" in result.stderr
    assert listed(run) == {}


def test_listed_numbers_are_suppressed_at_import(run: Cli, tmp_path: Path) -> None:
    run("suppress", "add", "+14155552671", "--reason", "asked us to stop")
    run("create", "c", "-o", ORIGIN, "-m", "Hi {name}")
    csv_path = write_csv(
        tmp_path / "r.csv",
        "name,phone\nAnn,+14155552671\nBob,+12065550101\nAnn again,(415) 555-2671\n",
    )
    result = run("import", "c", str(csv_path), "--default-region", "US")
    assert "1 ready, 1 duplicate" in result.stderr
    assert "1 number on the do-not-send list: suppressed" in result.stderr
    counts = run.json("status", "c", "--json")["counts"]
    assert (counts["suppressed"], counts["pending"], counts["duplicate"]) == (1, 1, 1)
    rows = list(csv.DictReader(io.StringIO(run("report", "c").stdout)))
    assert rows[0]["state"] == "suppressed"
    assert rows[0]["reason"] == "on the do-not-send list: asked us to stop"
    assert rows[2]["state"] == "duplicate"  # a listed number repeated: suppressed once


# -- optouts sync, against the simulator -----------------------------------------------------------

OPTED_OUT = [f"+1206555{n:04d}" for n in range(250)]  # three pages of at most 100


def test_optouts_sync_pages_and_waits_out_throttling(run: Cli, simulator: Any) -> None:
    for number in OPTED_OUT:
        simulator.opt_out(number)
    run("suppress", "add", OPTED_OUT[0], "--reason", "asked by mail")
    simulator.throttle_describes(2)  # the first call, and its first retry

    result = run("--endpoint-url", simulator.url, "optouts", "sync")

    assert "waiting 1 s" in result.stderr and "waiting 2 s" in result.stderr
    assert f"Opt-out list {DEFAULT_ARN}: 250 numbers in 3 pages; 249 added" in result.stderr
    assert simulator.stats().operations["DescribeOptedOutNumbers"] == 2 + 3
    entries = listed(run)
    assert set(entries) == set(OPTED_OUT)
    assert entries[OPTED_OUT[0]]["source"] == "user"  # listed by the user first: kept as it was
    assert entries[OPTED_OUT[1]]["source"] == "aws-opt-out:" + DEFAULT_ARN
    assert entries[OPTED_OUT[1]]["reason"] == "opted out (AWS opt-out list Default)"

    simulator.opt_out("+12065559999")
    again = run("--endpoint-url", simulator.url, "optouts", "sync")
    assert "1 added" in again.stderr and "250 already on it" in again.stderr


def test_optouts_sync_of_another_region_leaves_this_lists_entries(
    run: Cli, simulator: Any, tmp_path: Path
) -> None:
    """The same list name in another region (or account) is another list: syncing its empty
    Default must not remove what us-east-1's Default put on the do-not-send list."""
    from campaign.simulator.server import Simulator, SimulatorConfig

    simulator.opt_out(OPTED_OUT[0])
    run("--endpoint-url", simulator.url, "optouts", "sync")
    west = Simulator(SimulatorConfig(region="us-west-2", log_path=tmp_path / "west.jsonl")).start()
    try:
        other = run("--endpoint-url", west.url, "--region", "us-west-2", "optouts", "sync")
    finally:
        west.stop()
    assert "opt-out-list/Default: 0 numbers" in other.stderr and "0 removed" in other.stderr
    assert listed(run)[OPTED_OUT[0]]["source"] == "aws-opt-out:" + DEFAULT_ARN


def test_optouts_sync_throttled_mid_list_resumes_where_it_stopped(simulator: Any) -> None:
    """A throttle after the first page goes on from the second page: nothing twice, nothing lost."""
    from campaign.aws.sms import ClientSettings, make_client

    for number in OPTED_OUT:
        simulator.opt_out(number)
    client = make_client(ClientSettings(endpoint_url=simulator.url))
    waits: list[float] = []
    pages = []
    for page in opted_out_numbers(client, "Default", sleep=waits.append):
        pages.append(page)
        if len(pages) == 1:
            simulator.throttle_describes(1)
    assert waits == [1.0]
    assert [len(p) for p in pages] == [100, 100, 50]
    assert sorted(n for p in pages for n in p) == sorted(OPTED_OUT)


def test_optouts_sync_gives_up_after_repeated_throttles(simulator: Any) -> None:
    from campaign.aws.sms import OPT_OUT_MAX_WAITS, ClientSettings, make_client

    simulator.opt_out(OPTED_OUT[0])
    simulator.throttle_describes(OPT_OUT_MAX_WAITS + 1)
    client = make_client(ClientSettings(endpoint_url=simulator.url))
    waits: list[float] = []
    with pytest.raises(OptOutListError, match="still throttled after 8 waits"):
        list(opted_out_numbers(client, "Default", sleep=waits.append))
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_optouts_sync_of_an_unknown_list_is_one_line(run: Cli, simulator: Any) -> None:
    result = run(
        "--endpoint-url", simulator.url, "optouts", "sync", "--opt-out-list", "nope", code=1
    )
    assert result.stderr.startswith("Error: opt-out list 'nope' not found in this account")
    assert len(result.stderr.strip().splitlines()) == 1


def test_optouts_sync_of_an_empty_list_name(run: Cli, simulator: Any) -> None:
    """Was botocore's parameter validation over two lines."""
    from campaign.aws.sms import ClientSettings, make_client

    result = run("--endpoint-url", simulator.url, "optouts", "sync", "--opt-out-list", " ", code=2)
    assert "--opt-out-list': empty: name the list, e.g. Default" in result.stderr
    client = make_client(ClientSettings(endpoint_url=simulator.url))
    with pytest.raises(OptOutListError) as caught:
        list(opted_out_numbers(client, ""))
    assert "\n" not in str(caught.value) and "valid min length: 1" in str(caught.value)
