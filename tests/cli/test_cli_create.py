"""`campaign create`: every option checked against the API's limits before anything is stored."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result

from campaign.domain import Campaign
from campaign.ledger import Ledger
from campaign.ledger.engine import open_ledger_engine
from tests.helpers import SAMPLES, Cli, write_csv

ORIGIN = "+12065550100"


# Each test runs on SQLite (a copy of a ledger migrated once, see conftest) and on PostgreSQL.
pytestmark = pytest.mark.usefixtures("sqlite_or_postgres_url")


def stored(db_url: str, name: str) -> Campaign:
    return Ledger(open_ledger_engine(db_url)).get_campaign(name)


def one_error_line(result: Result) -> str:
    """The single `Error: ...` line on stderr (and nothing on stdout)."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in result.output
    assert result.stdout == ""
    return lines[0]


def campaign_names(run: Cli) -> list[str]:
    return [c["campaign"] for c in run.json("list", "--json")]


def test_create_stores_every_option(run: Cli, db_url: str) -> None:
    result = run(
        "create",
        "spring",
        "--origination-identity",
        "arn:aws:sms-voice:us-east-1:111122223333:pool/pool-abc_1",
        "--message",
        "Hi {First Name|there}, {{20%}} off. Reply STOP to opt out",
        "--message-type",
        "transactional",
        "--configuration-set",
        "events/prod-1",
        "--max-price",
        "0.05",
        "--ttl",
        "3600",
        "--keyword",
        "JOIN NOW",
        "--protect-configuration-id",
        "protect-0123",
        "--context",
        "team=growth",
        "--context",
        "wave=2",
        "--context",
        "note=a=b",  # only the first "=" splits
        "--country-parameter",
        "IN_ENTITY_ID=1101",
        "--country-parameter",
        "IN_TEMPLATE_ID=T-42",
        "--message-feedback",
        "--gsm-safe",
    )
    assert "Created campaign 'spring'" in result.stderr
    assert "first name" in result.stderr  # the columns the message uses
    c = stored(db_url, "spring")
    assert c.template == "Hi {First Name|there}, {{20%}} off. Reply STOP to opt out"
    assert c.origination_identity == "arn:aws:sms-voice:us-east-1:111122223333:pool/pool-abc_1"
    assert c.message_type == "TRANSACTIONAL"
    assert c.configuration_set == "events/prod-1"
    assert c.max_price == "0.05"
    assert c.ttl == 3600
    assert c.keyword == "JOIN NOW"
    assert c.protect_configuration_id == "protect-0123"
    assert dict(c.context) == {"team": "growth", "wave": "2", "note": "a=b"}
    assert dict(c.country_parameters) == {"IN_ENTITY_ID": "1101", "IN_TEMPLATE_ID": "T-42"}
    assert c.message_feedback is True
    assert c.gsm_safe is True
    status = run.json("status", "spring", "--json")
    assert status["max_price"] == "0.05"
    assert status["message_type"] == "TRANSACTIONAL"
    assert status["recipients"] == 0


def test_defaults_and_message_file(run: Cli, db_url: str, tmp_path: Path) -> None:
    # A message file saved by Notepad: a byte order mark and a final line break, neither sent.
    message = tmp_path / "msg.txt"
    message.write_bytes("\ufeffHi {first_name|there}!\r\n".encode())
    run("create", "plain", "-o", ORIGIN, "--message-file", str(message))
    c = stored(db_url, "plain")
    assert c.template == "Hi {first_name|there}!"
    assert c.message_type == "PROMOTIONAL"
    assert (c.max_price, c.ttl, c.keyword, c.configuration_set) == (None, None, None, None)
    assert dict(c.context) == {} and dict(c.country_parameters) == {}
    assert c.message_feedback is False and c.gsm_safe is False
    [item] = run.json("list", "--json")
    assert item["campaign"] == "plain"
    assert item["message_type"] == "PROMOTIONAL"
    assert item["origination_identity"] == ORIGIN


BAD_OPTIONS = [
    # MaxPrice: 2-8 characters matching [0-9]{0,2}\.[0-9]{1,5}
    pytest.param(["--max-price", "1"], "--max-price '1'", id="max-price without a point"),
    pytest.param(["--max-price", "100.0"], "--max-price", id="max-price over 99.99999"),
    pytest.param(["--max-price", "0.123456"], "--max-price", id="max-price with 6 decimals"),
    pytest.param(["--max-price", "$0.05"], "--max-price", id="max-price with a dollar sign"),
    pytest.param(["--max-price", "."], "--max-price", id="max-price of a lone point"),
    pytest.param(["--max-price", "0,05"], "--max-price", id="max-price with a decimal comma"),
    # TimeToLive: 5-259200 seconds
    pytest.param(["--ttl", "4"], "--ttl 4 is out of range", id="ttl below 5"),
    pytest.param(["--ttl", "259201"], "--ttl 259201 is out of range", id="ttl above 72 hours"),
    pytest.param(["--ttl", "-1"], "--ttl -1 is out of range", id="negative ttl"),
    # Context: 5 entries at the service, 2 kept by the tool; values without outer whitespace
    pytest.param(
        ["--context", "a=1", "--context", "b=2", "--context", "c=3", "--context", "d=4"],
        "at most 3 entries",
        id="four user context entries",
    ),
    pytest.param(["--context", "team= growth"], "whitespace", id="context value leading space"),
    pytest.param(["--context", "team=growth\t"], "whitespace", id="context value trailing tab"),
    pytest.param(["--context", "team="], "1-800 characters", id="empty context value"),
    pytest.param(["--context", "team=" + "x" * 801], "1-800", id="context value of 801 chars"),
    pytest.param(["--context", "growth"], "must be KEY=VALUE", id="context without ="),
    pytest.param(["--context", "my team=x"], "no spaces", id="context key with a space"),
    pytest.param(["--context", "k" * 101 + "=x"], "1-100", id="context key of 101 chars"),
    pytest.param(["--context", "campaign=x"], "reserved", id="context key the tool uses"),
    pytest.param(
        ["--context", "a=1", "--context", "a=2"], "given twice", id="context key given twice"
    ),
    # Keyword: 1-30 characters, no line breaks
    pytest.param(["--keyword", "K" * 31], "--keyword", id="keyword of 31 chars"),
    pytest.param(["--keyword", "JOIN\nNOW"], "--keyword", id="keyword with a line break"),
    # DestinationCountryParameters: IN_ENTITY_ID / IN_TEMPLATE_ID, 1-64 non-space characters
    pytest.param(
        ["--country-parameter", "IN_FOO=1"], "IN_ENTITY_ID, IN_TEMPLATE_ID", id="unknown key"
    ),
    pytest.param(["--country-parameter", "in_entity_id=1"], "'in_entity_id'", id="lower-case key"),
    pytest.param(
        ["--country-parameter", "IN_ENTITY_ID=1 2"], "no spaces", id="country value with space"
    ),
    pytest.param(
        ["--country-parameter", "IN_TEMPLATE_ID=" + "9" * 65], "1-64", id="country value 65 chars"
    ),
    # OriginationIdentity, ConfigurationSetName, ProtectConfigurationId patterns
    pytest.param(["-o", "+1 206 555 0100"], "--origination-identity", id="identity with spaces"),
    pytest.param(["-o", "x" * 257], "--origination-identity", id="identity of 257 chars"),
    pytest.param(["--configuration-set", "my set"], "--configuration-set", id="set with space"),
    pytest.param(
        ["--protect-configuration-id", "a b"], "--protect-configuration-id", id="protect id space"
    ),
]


@pytest.mark.parametrize(("args", "expected"), BAD_OPTIONS)
def test_bad_option_is_one_line_exit_1_and_nothing_stored(
    run: Cli, args: list[str], expected: str
) -> None:
    base = ["create", "spring", "-o", ORIGIN, "-m", "Hi {first_name|there}"]
    result = run(*base, *args, code=1)
    assert expected in one_error_line(result)
    assert campaign_names(run) == []


BAD_MESSAGES = [
    # the template: unbalanced braces and empty fields, found before anything is stored
    pytest.param("Hi {first_name, 20% off", "never closed", id="unclosed field"),
    pytest.param("Hi first_name}, 20% off", "closes no field", id="stray closing brace"),
    pytest.param("Hi {}!", "names no column", id="field without a column"),
    pytest.param("Hi {a{b}}", "do not nest", id="nested field"),
    # a static body over the service's MessageBody limits (1600 GSM-7 / 630 UCS-2 characters)
    pytest.param("x" * 1601, "1601 GSM-7 characters", id="1601 GSM-7 chars"),
    pytest.param("€" * 801, "1602 GSM-7 characters", id="801 euro signs are 1602 septets"),
    pytest.param("ë" * 631, "631 UCS-2 characters", id="631 UCS-2 chars"),
    pytest.param("\U0001f600" * 316, "632 UCS-2 characters", id="316 emoji are 632 units"),
    pytest.param("{name} " + "x" * 1601, "without its fields", id="too long before any field"),
    # nothing to send
    pytest.param("", "empty", id="empty message"),
    pytest.param("   ", "whitespace", id="only whitespace"),
]


@pytest.mark.parametrize(("message", "expected"), BAD_MESSAGES)
def test_bad_message_is_one_line_exit_1_and_nothing_stored(
    run: Cli, message: str, expected: str
) -> None:
    result = run("create", "spring", "-o", ORIGIN, "-m", message, code=1)
    line = one_error_line(result)
    assert expected in line
    assert "message: message" not in line  # says it once
    assert campaign_names(run) == []


EDGE_VALUES = [
    # the largest and smallest values the service takes are stored as given
    pytest.param(["--max-price", "99.99999"], id="max-price at its maximum"),
    pytest.param(["--max-price", ".0075"], id="max-price without a leading digit"),
    pytest.param(["--ttl", "5"], id="ttl at its minimum"),
    pytest.param(["--ttl", "259200"], id="ttl at 72 hours"),
    pytest.param(["--context", "a=1", "--context", "b=2", "--context", "c=3"], id="3 contexts"),
    pytest.param(["--keyword", "K" * 30], id="keyword of 30 chars"),
    pytest.param(["-m", "x" * 1600], id="1600 GSM-7 chars"),
    pytest.param(["-m", "ë" * 630], id="630 UCS-2 chars"),
    pytest.param(["-m", "{body}" + "x" * 1590], id="fields: the rest is checked per row"),
]


@pytest.mark.parametrize("args", EDGE_VALUES)
def test_values_at_the_limits_are_accepted(run: Cli, args: list[str]) -> None:
    base = ["create", "edge", "-o", ORIGIN]
    if "-m" not in args:
        base += ["-m", "Hi"]
    result = run(*base, *args)
    assert "Created campaign 'edge'" in result.stderr
    assert campaign_names(run) == ["edge"]


def test_duplicate_name_is_refused_and_the_first_is_kept(run: Cli, db_url: str) -> None:
    run("create", "spring", "-o", ORIGIN, "-m", "first")
    result = run("create", "spring", "-o", ORIGIN, "-m", "second", code=1)
    assert one_error_line(result) == "Error: a campaign named 'spring' already exists"
    assert campaign_names(run) == ["spring"]
    assert stored(db_url, "spring").template == "first"


USAGE_ERRORS = [
    # Click's own checks: exit 2 with the usage
    pytest.param(["spring", "-m", "Hi"], "--origination-identity", id="no origination identity"),
    pytest.param(["spring", "-o", ORIGIN], "exactly one of", id="no message"),
    pytest.param(
        ["spring", "-o", ORIGIN, "-m", "Hi", "--message-file", "msg.txt"],
        "exactly one of",
        id="both message and message file",
    ),
    pytest.param(
        ["spring", "-o", ORIGIN, "--message-file", "missing.txt"],
        "does not exist",
        id="message file missing",
    ),
    pytest.param(["spring", "-o", ORIGIN, "-m", "Hi", "--ttl", "1h"], "--ttl", id="ttl not int"),
    pytest.param(
        ["spring", "-o", ORIGIN, "-m", "Hi", "--message-type", "BULK"],
        "--message-type",
        id="unknown message type",
    ),
    pytest.param(["-o", ORIGIN, "-m", "Hi"], "NAME", id="no name"),
]


@pytest.mark.parametrize(("args", "expected"), USAGE_ERRORS)
def test_usage_errors_exit_2_and_store_nothing(
    run: Cli, tmp_path: Path, args: list[str], expected: str
) -> None:
    (tmp_path / "msg.txt").write_text("Hi")
    result = run("create", *args, code=2)
    assert "create [OPTIONS] NAME" in result.stderr
    assert expected in result.stderr
    assert campaign_names(run) == []


def test_message_file_that_is_not_utf8(run: Cli, tmp_path: Path) -> None:
    message = tmp_path / "msg.txt"
    message.write_bytes("Café’s sale".encode("cp1252"))
    result = run("create", "spring", "-o", ORIGIN, "--message-file", str(message), code=1)
    assert "is not UTF-8 text" in one_error_line(result)
    assert campaign_names(run) == []


def test_message_file_with_a_nul_is_one_line_on_every_ledger(run: Cli, tmp_path: Path) -> None:
    # PostgreSQL's text cannot hold NUL: it once gave the generic database line there.
    message = tmp_path / "msg.txt"
    message.write_bytes(b"Hi {first_name}\nSale\x00today")
    result = run("create", "spring", "-o", ORIGIN, "--message-file", str(message), code=1)
    assert "message has a NUL character (line 2)" in one_error_line(result)
    assert campaign_names(run) == []


def test_recipients_are_imported_right_away(run: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "r.csv", "first_name,phone\nAva,(206) 555-0100\nLiam,bad\n")
    result = run(
        "create",
        "spring",
        "-o",
        ORIGIN,
        "-m",
        "Hi {first_name}",
        "--recipients",
        str(csv),
        "--default-region",
        "US",
    )
    assert "Imported 2 rows" in result.stderr
    counts = run.json("status", "spring", "--json")["counts"]
    assert (counts["pending"], counts["invalid"]) == (1, 1)


def test_default_region_without_recipients_is_a_usage_error(run: Cli) -> None:
    # It would be silently ignored: the region belongs to an import.
    result = run("create", "spring", "-o", ORIGIN, "-m", "Hi", "--default-region", "US", code=2)
    assert "--default-region goes with --recipients" in result.stderr
    assert run.json("list", "--json") == []


def test_failed_recipients_import_says_the_campaign_exists(run: Cli, tmp_path: Path) -> None:
    csv = write_csv(tmp_path / "r.csv", "name,phone\nAva,+12065550100\n")
    result = run(
        "create", "spring", "-o", ORIGIN, "-m", "Hi {first_name}", "--recipients", str(csv), code=1
    )
    created, window, line = result.stderr.strip().splitlines()
    assert created.startswith("Created campaign 'spring'")
    assert window.startswith("Sending window: 08:00-20:00 every day in CA, US;")
    assert line.startswith("Error: the message uses {first_name} but r.csv has no column")
    assert line.endswith(
        "campaign 'spring' was created without these recipients: "
        "fix the file, then run `campaign import spring FILE`"
    )
    assert run.json("status", "spring", "--json")["recipients"] == 0


def test_help_has_an_example(run: Cli) -> None:
    result = run("create", "--help")
    assert "Example:" in result.stdout
    assert "--max-price" in result.stdout


def test_sample_message_is_accepted(run: Cli) -> None:
    run("create", "sample", "-o", ORIGIN, "--message-file", str(SAMPLES / "message.txt"))
    assert campaign_names(run) == ["sample"]
